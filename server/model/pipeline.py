"""The pipeline wrapper (`LayeredModel`) and its loader (`load_model`): the real diffusers
`QwenImageLayeredPipeline`, from `tiny`, a local directory, or a hub id.

What the pipeline accepts (diffusers 0.42, `pipeline_qwenimage_layered.py`): `resolution` must be one
of its two buckets, 640 or 1024 (it asserts this); the input image is resized to about
resolution x resolution at its own aspect ratio (sides rounded down to a multiple of
2 x the VAE's scale factor), so any input size works and the output layers have the resized size.
The input must be RGBA. Without a prompt the pipeline captions the image with its text encoder first.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from server.model.compat import allow_processor_without_torchvision
from server.model.tiny import LOADLAB_FILE, TINY, build_tiny, tiny_model_dir

RESOLUTION_BUCKETS = (640, 1024)
MIN_LAYERS, MAX_LAYERS = 1, 10
REAL_MODEL_STEPS = 50

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


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
    allow_processor_without_torchvision()
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
