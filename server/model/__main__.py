"""`python -m server.model`: build the tiny offline pipeline, or decompose one image into RGBA layers.

`build-tiny [--out DIR] [--seed N]`; `decompose IMAGE [--layers N] [--resolution 640|1024] [--model ...]`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from server.model.pipeline import DTYPES, RESOLUTION_BUCKETS, load_model
from server.model.tiny import TINY, TINY_SEED, build_tiny, tiny_model_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.model", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-tiny", help="build the tiny offline pipeline into the cache")
    build.add_argument("--out", type=Path, default=None, help=f"target directory (default {tiny_model_dir()})")
    build.add_argument("--seed", type=int, default=TINY_SEED, help="weight seed (default %(default)s)")
    dec = sub.add_parser("decompose", help="decompose one image and write its layers as PNGs")
    dec.add_argument("image", type=Path)
    dec.add_argument("--layers", type=int, default=3)
    dec.add_argument("--resolution", type=int, default=640, choices=RESOLUTION_BUCKETS)
    dec.add_argument("--model", default=TINY, help="'tiny', a local path, or a hub id (default tiny)")
    dec.add_argument("--device", default="cpu")
    dec.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    dec.add_argument("--steps", type=int, default=None, help="inference steps (default: the model's)")
    dec.add_argument("--out", type=Path, default=Path("reports/layers"))
    args = parser.parse_args(argv)

    if args.command == "build-tiny":
        started = time.perf_counter()
        path = build_tiny(args.out, seed=args.seed)
        print(f"built tiny model in {time.perf_counter() - started:.2f} s -> {path}")
        return 0

    from PIL import Image

    try:
        model = load_model(args.model, args.device, args.dtype, args.steps, progress=True)
        image = Image.open(args.image)
        image.load()
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"loaded {model.source} ({model.kind}) on {model.device}/{model.dtype} in {model.load_s:.2f} s")
    started = time.perf_counter()
    layers = model.decompose(image, args.layers, args.resolution)
    call_s = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    for i, layer in enumerate(layers):
        layer.save(args.out / f"layer_{i}.png")
    print(f"decomposed {args.image} into {len(layers)} RGBA layers of {layers[0].size} in {call_s:.2f} s "
          f"({model.num_inference_steps} steps) -> {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
