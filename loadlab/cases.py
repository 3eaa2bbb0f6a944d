"""The workload cases, mapped from the source article to what the pipeline accepts.

The article ran Small = 512 px / 3 layers, Medium = 1024 px / 5 layers, Large = 2048 px / 5 layers and
passed the pixel size as `resolution`. `QwenImageLayeredPipeline` asserts resolution in (640, 1024) and
resizes its input to about resolution^2, so the article's 512 and 2048 calls could not have run as
written. Our mapping keeps the article's upload sizes (what crosses the network) and uses the nearest
bucket the model accepts:

| case   | upload   | layers | resolution (bucket) |
|--------|----------|--------|---------------------|
| small  | 512 px   | 3      | 640                 |
| medium | 1024 px  | 5      | 1024                |
| large  | 2048 px  | 5      | 1024                |
| light  | 256 px   | 2      | 640   (quick runs, not in the article) |

Test images are plain white RGB, as in the article (its benchmark 1).
"""

from __future__ import annotations

from pathlib import Path

from loadlab.schema import Case

ARTICLE_CASES = {
    "small": Case(name="small", layers=3, resolution=640, image_px=512),
    "medium": Case(name="medium", layers=5, resolution=1024, image_px=1024),
    "large": Case(name="large", layers=5, resolution=1024, image_px=2048),
}
LIGHT_CASES = {"light": Case(name="light", layers=2, resolution=640, image_px=256)}
CASE_SETS = {"article": ARTICLE_CASES, "light": LIGHT_CASES, "small": {"small": ARTICLE_CASES["small"]}}
ALL_CASES = {**ARTICLE_CASES, **LIGHT_CASES}


def parse_cases(spec: str) -> list[Case]:
    """'article', 'light', 'small' (a set) or a comma list of case names such as 'small,medium'."""
    if spec in CASE_SETS:
        return list(CASE_SETS[spec].values())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_CASES]
    if unknown or not names:
        raise ValueError(f"unknown case(s) {unknown or spec!r}; choose from sets {sorted(CASE_SETS)} "
                         f"or cases {sorted(ALL_CASES)}")
    return [ALL_CASES[n] for n in names]


def test_image(case: Case, directory: str | Path, fmt: str = "PNG") -> Path:
    """A plain white RGB image of the case's upload size, written once and reused."""
    from PIL import Image

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"white_{case.image_px}.{fmt.lower()}"
    if not path.exists():
        Image.new("RGB", (case.image_px, case.image_px), (255, 255, 255)).save(path, fmt)
    return path
