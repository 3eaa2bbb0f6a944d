"""The tiny, randomly initialised `QwenImageLayeredPipeline`, built offline the way diffusers' own
`QwenImageLayeredPipelineFastTests.get_dummy_components` builds it, and saved under the model cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

from server.model.compat import allow_processor_without_torchvision

TINY = "tiny"
TINY_SEED = 0
# Written beside the tiny model: inference defaults that keep a CPU call to seconds.
LOADLAB_FILE = "loadlab.json"


def cache_dir() -> Path:
    """Where built models live: $DECOMPOSER_CACHE, else the user's cache directory."""
    root = os.environ.get("DECOMPOSER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "decomposer-loadlab")
    return Path(root)


def tiny_model_dir() -> Path:
    return cache_dir() / "models" / f"tiny-qwen-image-layered-seed{TINY_SEED}"


def tiny_tokenizer():
    """A byte-level BPE vocabulary with no merges plus Qwen's special tokens, built in memory (diffusers'
    tests download hf-internal-testing's tiny tokenizer instead; nothing is downloaded here)."""
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


def get_dummy_components(seed: int = TINY_SEED) -> dict:
    """The pipeline's components, each from `torch.manual_seed(seed)`, as in diffusers'
    tests/pipelines/qwenimage/test_qwenimage_layered.py. Differences, each for a reason given inline:
    RGBA VAE with z_dim 8 and five downsamplings, layer-3D RoPE, an in-memory tokenizer, a zero lm_head."""
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    allow_processor_without_torchvision()
    tokenizer, vocab = tiny_tokenizer()

    # z_dim must differ from the 4 RGBA input channels, or the pipeline takes pixels for latents.
    z_dim = 8
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=z_dim * 4, out_channels=z_dim, num_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
        use_additional_t_cond=True, use_layer3d_rope=True,
    )

    # Five downsamplings (scale factor 32; the real VAE has 8) keep the transformer's token count
    # small at the 640/1024 buckets; the VAE still dominates a CPU call.
    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(
        base_dim=4, z_dim=z_dim, dim_mult=[1, 2, 4, 4, 4, 4], num_res_blocks=1,
        temperal_downsample=[False, True, True, True, True], input_channels=4,
        latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
    )

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

    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessorPil(), tokenizer=tokenizer)
    return {"transformer": transformer, "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(),
            "text_encoder": text_encoder, "tokenizer": tokenizer, "processor": processor}


def build_tiny(out_dir: Path | None = None, seed: int = TINY_SEED, progress: bool = True) -> Path:
    """Build the tiny pipeline offline, deterministically from `seed`, and save it to `out_dir`."""
    from diffusers import QwenImageLayeredPipeline
    from tqdm import tqdm

    out_dir = Path(out_dir or tiny_model_dir())
    with tqdm(total=2, desc="build tiny QwenImageLayeredPipeline", disable=not progress, unit="step") as steps:
        pipeline = QwenImageLayeredPipeline(**get_dummy_components(seed))
        steps.update()
        out_dir.mkdir(parents=True, exist_ok=True)
        pipeline.save_pretrained(out_dir)
        (out_dir / LOADLAB_FILE).write_text(json.dumps(
            {"kind": "tiny", "seed": seed, "num_inference_steps": 2,
             "note": "randomly initialised; layers are noise; for measuring the serving stack offline"},
            indent=2))
        steps.update()
    return out_dir
