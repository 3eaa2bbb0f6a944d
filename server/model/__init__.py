"""The model backend: the real diffusers `QwenImageLayeredPipeline` behind one loader.

Weights come from `tiny` (the default: a tiny random pipeline built offline into the cache), a local
directory holding a saved pipeline, or a hub id such as `Qwen/Qwen-Image-Layered`. `pipeline` holds the
wrapper and loader, `tiny` the builder, `compat` the transformers shim, `__main__` the CLI."""

from server.model.pipeline import (
    DTYPES,
    MAX_LAYERS,
    MIN_LAYERS,
    RESOLUTION_BUCKETS,
    LayeredModel,
    load_model,
    resolve_source,
)
from server.model.tiny import TINY, TINY_SEED, build_tiny, cache_dir, get_dummy_components, tiny_model_dir

__all__ = ["DTYPES", "MAX_LAYERS", "MIN_LAYERS", "RESOLUTION_BUCKETS", "TINY", "TINY_SEED", "LayeredModel",
           "build_tiny", "cache_dir", "get_dummy_components", "load_model", "resolve_source", "tiny_model_dir"]
