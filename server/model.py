"""The model backend: the real diffusers `QwenImageLayeredPipeline`, from one loader.

Weights come from one of three sources, all through `QwenImageLayeredPipeline.from_pretrained`:
- `tiny` (the default): a tiny, randomly initialised pipeline built offline on first use, the way
  diffusers' own tests build their tiny Qwen-Image pipelines, saved with `save_pretrained` under the
  cache directory. Real classes and a real call; the layers it paints are noise.
- a local directory holding a saved pipeline;
- a hub id such as `Qwen/Qwen-Image-Layered` (needs the weights and, in practice, a GPU).

What the pipeline accepts (diffusers 0.42, `pipeline_qwenimage_layered.py`): `resolution` must be one
of its two buckets, 640 or 1024 (it asserts this); the input image is resized to about
resolution x resolution at its own aspect ratio (sides rounded down to a multiple of
2 x the VAE's scale factor), so any input size works and the output layers have the resized size.
The input must be RGBA. Without a prompt the pipeline captions the image with its text encoder first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RESOLUTION_BUCKETS = (640, 1024)
MIN_LAYERS, MAX_LAYERS = 1, 10
TINY = "tiny"
TINY_SEED = 0
# Written beside the tiny model: inference defaults that keep a CPU call to seconds.
LOADLAB_FILE = "loadlab.json"
REAL_MODEL_STEPS = 50

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def cache_dir() -> Path:
    """Where built models live: $DECOMPOSER_CACHE, else the user's cache directory."""
    root = os.environ.get("DECOMPOSER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "decomposer-loadlab")
    return Path(root)


def tiny_model_dir() -> Path:
    return cache_dir() / "models" / f"tiny-qwen-image-layered-seed{TINY_SEED}"


def _allow_processor_without_torchvision() -> None:
    """transformers 5's Qwen2VLProcessor insists on a video processor, and the video processor needs
    torchvision, which does not import beside this machine's CPU torch. The layered pipeline only
    captions still images, so when torchvision is absent the processor is limited to its image
    processor and tokenizer. This is the one place that workaround lives."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        return
    from transformers import Qwen2VLProcessor

    Qwen2VLProcessor.get_attributes = classmethod(lambda cls: ["image_processor", "tokenizer"])


def _tiny_tokenizer():
    """A byte-level BPE vocabulary with no merges plus Qwen's special tokens, built in memory."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    # End-of-text gets id 0: with the zeroed lm_head below, greedy captioning stops at once.
    vocab = {tok: i for i, tok in enumerate(specials)}
    for sym in bytes_to_unicode().values():
        vocab[sym] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    return tokenizer, vocab


def build_tiny(out_dir: Path | None = None, seed: int = TINY_SEED, progress: bool = True) -> Path:
    """Build the tiny pipeline offline, deterministically from `seed`, and save it to `out_dir`."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageLayeredPipeline,
        QwenImageTransformer2DModel,
    )
    from tqdm import tqdm
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    _allow_processor_without_torchvision()
    out_dir = Path(out_dir or tiny_model_dir())
    steps = tqdm(total=6, desc="build tiny QwenImageLayeredPipeline", disable=not progress, unit="part")

    tokenizer, vocab = _tiny_tokenizer()
    steps.update()

    # z_dim must differ from the 4 RGBA input channels, or the pipeline takes pixels for latents.
    z_dim = 8
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=z_dim * 4, out_channels=z_dim, num_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
        use_additional_t_cond=True, use_layer3d_rope=True,
    )
    steps.update()

    # Five downsamplings (scale factor 32; the real VAE has 8) keep the transformer's token count
    # small at the 640/1024 buckets; the VAE still dominates a CPU call.
    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(
        base_dim=4, z_dim=z_dim, dim_mult=[1, 2, 4, 4, 4, 4], num_res_blocks=1,
        temperal_downsample=[False, True, True, True, True], input_channels=4,
        latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
    )
    steps.update()

    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "rope_theta": 1000000.0, "vocab_size": len(vocab),
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "bos_token_id": None, "eos_token_id": vocab["<|endoftext|>"],
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                       "out_hidden_size": 16},
        hidden_size=16, vocab_size=len(vocab),
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"],
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        bos_token_id=None, eos_token_id=vocab["<|endoftext|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    # A random language model captions every image with all 512 tokens of noise, seconds of CPU
    # that the real captioner does not spend. A zero lm_head makes every logit equal, so greedy
    # decoding picks id 0, end-of-text: captioning still runs the vision tower and one prefill.
    # The prompt embeddings come from hidden states, not from lm_head, so they stay random.
    with torch.no_grad():
        text_encoder.lm_head.weight.zero_()
    text_encoder.generation_config.bos_token_id = None
    text_encoder.generation_config.eos_token_id = vocab["<|endoftext|>"]
    text_encoder.generation_config.pad_token_id = vocab["<|endoftext|>"]
    steps.update()

    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessorPil(), tokenizer=tokenizer)
    pipeline = QwenImageLayeredPipeline(
        transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder, tokenizer=tokenizer, processor=processor,
    )
    steps.update()

    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(out_dir)
    (out_dir / LOADLAB_FILE).write_text(json.dumps(
        {"kind": "tiny", "seed": seed, "num_inference_steps": 2,
         "note": "randomly initialised; layers are noise; for measuring the serving stack offline"},
        indent=2))
    steps.update()
    steps.close()
    return out_dir


def resolve_source(source: str | None) -> str:
    """Turn `--model` into what `from_pretrained` takes. A path that does not exist is an error here,
    never a hub lookup; only an `org/name` id goes to the hub."""
    if not source or source == TINY:
        path = tiny_model_dir()
        if not (path / "model_index.json").exists():
            build_tiny(path, progress=sys.stderr.isatty())
        return str(path)
    expanded = os.path.expanduser(source)
    if os.path.isdir(expanded):
        if not os.path.exists(os.path.join(expanded, "model_index.json")):
            raise FileNotFoundError(f"{source!r} is a directory but holds no saved pipeline (model_index.json)")
        return expanded
    if source.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        raise FileNotFoundError(f"model path {source!r} does not exist (a hub id looks like 'org/name')")
    return source


@dataclass
class LayeredModel:
    """A loaded pipeline on its device, plus the inference defaults that go with its weights."""

    pipeline: object
    source: str
    device: str
    dtype: str
    num_inference_steps: int
    load_s: float
    kind: str

    @property
    def resolution_buckets(self) -> tuple[int, ...]:
        return RESOLUTION_BUCKETS

    def check(self, layers: int, resolution: int) -> None:
        if resolution not in RESOLUTION_BUCKETS:
            raise ValueError(f"resolution must be one of {list(RESOLUTION_BUCKETS)} "
                             f"(QwenImageLayeredPipeline's buckets), got {resolution}")
        if not MIN_LAYERS <= layers <= MAX_LAYERS:
            raise ValueError(f"layers must be between {MIN_LAYERS} and {MAX_LAYERS}, got {layers}")

    def decompose(self, image, layers: int, resolution: int, seed: int = 0) -> list:
        """One image -> `layers` RGBA PIL images."""
        return self.decompose_batch([image], layers, resolution, [seed])[0]

    def decompose_batch(self, images: list, layers: int, resolution: int, seeds: list[int]) -> list[list]:
        """Several images with the same (layers, resolution) in one pipeline call. Each image is
        captioned on its own first, because the pipeline captions only the first of a batch."""
        import torch

        self.check(layers, resolution)
        rgba = [im.convert("RGBA") for im in images]
        kwargs = {}
        if len(rgba) > 1:
            kwargs["prompt"] = [self._caption(im, resolution) for im in rgba]
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        with torch.inference_mode():
            out = self.pipeline(
                image=rgba if len(rgba) > 1 else rgba[0],
                layers=layers, resolution=resolution, num_inference_steps=self.num_inference_steps,
                generator=generators if len(generators) > 1 else generators[0],
                # The article calls the pipeline without a negative prompt, so no classifier-free
                # guidance runs; 1.0 says so and spares the pipeline's warning on every call.
                true_cfg_scale=1.0, **kwargs,
            )
        # diffusers 0.42 slices a batch's output by layers + 1 after dropping the input frame, so for
        # batches > 1 the groups are wrong; regroup the flat list by `layers`.
        flat = [im for item in out.images for im in item]
        if len(flat) != len(rgba) * layers:
            raise RuntimeError(f"pipeline returned {len(flat)} layers for {len(rgba)} x {layers}")
        return [flat[i * layers:(i + 1) * layers] for i in range(len(rgba))]

    def _caption(self, image, resolution: int) -> str:
        from diffusers.pipelines.qwenimage.pipeline_qwenimage_layered import calculate_dimensions

        width, height = calculate_dimensions(resolution * resolution, image.size[0] / image.size[1])
        resized = self.pipeline.image_processor.resize(image, height, width)
        return self.pipeline.get_image_caption(resized, use_en_prompt=False, device=self.pipeline._execution_device)


def load_model(source: str | None = TINY, device: str = "cpu", dtype: str = "float32",
               num_inference_steps: int | None = None, progress: bool = False) -> LayeredModel:
    """Load the pipeline once and move it to `device`/`dtype` once; `load_s` is the measured time."""
    import torch
    from diffusers import QwenImageLayeredPipeline

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(set(DTYPES.values()))}, got {dtype!r}")
    _allow_processor_without_torchvision()
    started = time.perf_counter()
    resolved = resolve_source(source)
    torch_dtype = getattr(torch, DTYPES[dtype])
    pipeline = QwenImageLayeredPipeline.from_pretrained(resolved, dtype=torch_dtype)
    pipeline.to(device)
    pipeline.set_progress_bar_config(disable=not progress)
    extra = {}
    marker = Path(resolved) / LOADLAB_FILE
    if marker.exists():
        extra = json.loads(marker.read_text())
    steps = num_inference_steps or extra.get("num_inference_steps") or REAL_MODEL_STEPS
    return LayeredModel(pipeline=pipeline, source=resolved, device=device, dtype=DTYPES[dtype],
                        num_inference_steps=int(steps), load_s=time.perf_counter() - started,
                        kind=extra.get("kind", "pretrained"))


def _main(argv: list[str] | None = None) -> int:
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
    raise SystemExit(_main())
