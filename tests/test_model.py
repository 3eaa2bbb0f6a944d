import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

from server import model as model_mod


def _weights_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.safetensors")):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_tiny_build_is_offline_and_deterministic(tmp_path, monkeypatch):
    # Any hub call would fail loudly: HF_HUB_OFFLINE is set in conftest.
    a = model_mod.build_tiny(tmp_path / "a", seed=0, progress=False)
    b = model_mod.build_tiny(tmp_path / "b", seed=0, progress=False)
    c = model_mod.build_tiny(tmp_path / "c", seed=1, progress=False)
    assert (a / "model_index.json").exists()
    assert _weights_digest(a) == _weights_digest(b)
    assert _weights_digest(a) != _weights_digest(c)
    # under 1 MB on disk: nothing downloaded, nothing big
    assert sum(p.stat().st_size for p in a.rglob("*") if p.is_file()) < 2_000_000


def test_reload_with_from_pretrained_is_the_real_class(tiny_model):
    from diffusers import QwenImageLayeredPipeline

    assert type(tiny_model.pipeline) is QwenImageLayeredPipeline
    assert tiny_model.kind == "tiny"
    assert tiny_model.num_inference_steps == 2
    assert set(tiny_model.pipeline.components) == {
        "scheduler", "vae", "text_encoder", "tokenizer", "processor", "transformer"}


def test_real_call_returns_rgba_layers(tiny_model):
    layers = tiny_model.decompose(Image.new("RGB", (300, 200), (255, 255, 255)), layers=3, resolution=640)
    assert len(layers) == 3
    assert all(layer.mode == "RGBA" for layer in layers)
    # resized to about 640^2 at the input's 3:2 aspect, sides a multiple of 64 (2 x VAE scale 32)
    w, h = layers[0].size
    assert w > h and w % 64 == 0 and h % 64 == 0
    assert abs(w * h - 640 * 640) / (640 * 640) < 0.2


def test_same_seed_same_layers(tiny_model):
    image = Image.new("RGB", (128, 128), (255, 255, 255))
    first = tiny_model.decompose(image, layers=1, resolution=640, seed=7)
    second = tiny_model.decompose(image, layers=1, resolution=640, seed=7)
    assert first[0].tobytes() == second[0].tobytes()


@pytest.mark.parametrize("layers,resolution", [(3, 512), (3, 2048), (0, 640), (11, 640)])
def test_out_of_range_is_rejected_before_the_pipeline(tiny_model, layers, resolution):
    with pytest.raises(ValueError, match="resolution|layers"):
        tiny_model.decompose(Image.new("RGB", (64, 64)), layers=layers, resolution=resolution)


def test_missing_path_is_a_clear_error_not_a_hub_lookup(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model_mod.resolve_source(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model_mod.resolve_source("./models/qwen")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        model_mod.resolve_source(str(empty))
    # an org/name id is passed through to from_pretrained untouched
    assert model_mod.resolve_source("Qwen/Qwen-Image-Layered") == "Qwen/Qwen-Image-Layered"


def test_batch_regroups_layers_per_image(tiny_model):
    images = [Image.new("RGB", (64, 64), (255, 255, 255)), Image.new("RGB", (64, 64), (0, 0, 0))]
    out = tiny_model.decompose_batch(images, layers=2, resolution=640, seeds=[0, 1])
    assert [len(item) for item in out] == [2, 2]


def test_dummy_components_are_the_pipeline_components():
    from diffusers import QwenImageLayeredPipeline

    components = model_mod.get_dummy_components(seed=0)
    assert set(components) == {"scheduler", "vae", "text_encoder", "tokenizer", "processor", "transformer"}
    assert type(QwenImageLayeredPipeline(**components)) is QwenImageLayeredPipeline


@pytest.mark.slow
def test_cli_build_tiny_then_decompose(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parent.parent
    built = subprocess.run([sys.executable, "-m", "server.model", "build-tiny", "--out", str(tmp_path / "tiny")],
                           capture_output=True, text=True, cwd=root, env=env, timeout=300)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "tiny" / "model_index.json").exists()
    Image.new("RGB", (96, 64), (200, 40, 40)).save(tmp_path / "in.png")
    done = subprocess.run([sys.executable, "-m", "server.model", "decompose", str(tmp_path / "in.png"), "--layers", "2",
                           "--resolution", "640", "--model", str(tmp_path / "tiny"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=root, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    layers = sorted((tmp_path / "out").glob("layer_*.png"))
    assert [p.name for p in layers] == ["layer_0.png", "layer_1.png"]
    assert all(Image.open(p).mode == "RGBA" for p in layers)
    missing = subprocess.run([sys.executable, "-m", "server.model", "decompose", str(tmp_path / "in.png"), "--model",
                              str(tmp_path / "nope")], capture_output=True, text=True, cwd=root, env=env, timeout=300)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
