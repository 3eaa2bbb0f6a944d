"""`python -m bench uploadflood`'s plumbing at small sizes (fast): its images, a short run against the
app under uvicorn in a thread (stand-in model), the report, the command line. The 30 x 15 MB figures
are the benchmark's to print, not a test's."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from bench import uploadflood
from bench.__main__ import main as bench_main
from server.settings import Settings
from tests.server_helpers import served_app


@pytest.fixture
def server(tmp_path):
    """(url, app) of the job app under uvicorn in a thread."""
    with served_app(Settings(data_dir=tmp_path, cache_ttl=0)) as (url, app):
        yield url, app


def test_noise_png_is_about_the_size_asked_and_its_variants_differ():
    png = uploadflood.noise_png(300_000, seed=1)
    assert 0.9 < len(png) / 300_000 < 1.1  # noise does not compress
    a, b = uploadflood.variant(png, 1), uploadflood.variant(png, 2)
    assert hashlib.sha256(a).digest() != hashlib.sha256(b).digest()
    for data in (a, b):
        im = Image.open(io.BytesIO(data))
        im.load()  # still a whole, valid PNG
        assert im.size == Image.open(io.BytesIO(png)).size


def test_a_small_flood_measures_every_phase(server):
    url, app = server
    result = uploadflood.run(uploads=3, mb=0.2, rounds=2, interval_s=0.01, idle_s=0.2, url=url)
    assert result["statuses"] == [200, 201]
    assert result["upload"]["count"] == 6 and result["rounds"] == 2
    for phase in ("idle", "flood"):
        s = result[phase]
        assert s["count"] >= 2 and 0 < s["p50"] <= s["p99"] <= s["max"]
        assert s["p99_mean"] is not None and s["p99_ci95"] is not None  # two rounds: an interval
    assert len(list(app.state.services.files.uploads.iterdir())) == 6  # each upload stored anew: other bytes
    text = uploadflood.report(result)
    assert "healthz idle" in text and "healthz flood" in text and "goal p99 <= 100 ms" in text


def test_report_of_one_round_has_no_interval():
    summary = {"count": 3, "p50": 0.002, "p99": 0.004, "max": 0.005, "p99_mean": 0.004, "p99_ci95": None}
    result = {"uploads": 30, "upload_bytes": 15 * uploadflood.MB, "width": 2289, "height": 2289, "rounds": 1,
              "statuses": [200, 201], "idle": summary, "flood": {**summary, "p99": 0.250}, "upload": summary}
    text = uploadflood.report(result)
    assert "(95 %)" not in text and "NOT met" in text and "15.0 MB" in text


def test_registered_in_bench_cli(capsys):
    with pytest.raises(SystemExit) as exit_:
        bench_main(["uploadflood", "--mb", "30", "--max-upload-mb", "20"])  # refused before any server starts
    assert exit_.value.code == 2 and "over the server's --max-upload-mb" in capsys.readouterr().err
