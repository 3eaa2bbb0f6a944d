"""The one transformers/torchvision compatibility shim the layered pipeline needs on this machine."""

from __future__ import annotations

import importlib.util


def allow_processor_without_torchvision() -> None:
    """transformers 5's Qwen2VLProcessor insists on a video processor, and the video processor needs
    torchvision, which does not import beside this machine's CPU torch. The layered pipeline only
    captions still images, so when torchvision is absent the processor is limited to its image
    processor and tokenizer."""
    if importlib.util.find_spec("torchvision") is not None:
        return
    from transformers import Qwen2VLProcessor

    Qwen2VLProcessor.get_attributes = classmethod(lambda cls: ["image_processor", "tokenizer"])
