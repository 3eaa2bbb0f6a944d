"""`make demo`: the main job end to end on the embedded tiny model, with progress.

Steps so far: build the tiny model, decompose one white test image through the real pipeline and
write its RGBA layers under reports/layers/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.cases import ARTICLE_CASES, test_image


def step(title: str):
    print(f"\n==> {title}", flush=True)
    return time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench demo", description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="output folder")
    parser.add_argument("--short", action="store_true", help="CI mode: fewer runs, shorter stages")
    args = parser.parse_args(argv)

    from server.model import build_tiny, load_model, tiny_model_dir

    started = step("build the tiny offline QwenImageLayeredPipeline")
    path = build_tiny(tiny_model_dir())
    print(f"built {path} in {time.perf_counter() - started:.2f} s")

    started = step("load it and decompose one image (real pipeline call)")
    model = load_model("tiny")
    case = ARTICLE_CASES["small"]
    image_path = test_image(case, args.reports / "images")
    from PIL import Image

    t0 = time.perf_counter()
    layers = model.decompose(Image.open(image_path), case.layers, case.resolution)
    call_s = time.perf_counter() - t0
    out = args.reports / "layers"
    out.mkdir(parents=True, exist_ok=True)
    for i, layer in enumerate(layers):
        layer.save(out / f"layer_{i}.png")
    print(f"load {model.load_s:.2f} s, call {call_s:.2f} s -> {len(layers)} RGBA layers in {out}/")
    return 0
