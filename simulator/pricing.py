"""Prices, in one table with source and date. Override with `--price KEY=VALUE` or `--prices FILE.json`.

| key                      | default | unit        | source (date)                                                        |
|--------------------------|---------|-------------|----------------------------------------------------------------------|
| machine_per_hour         | 0.219   | $/h         | n1-standard-4 on Vertex AI prediction, us-central1; secondary sources quoted in issue #6 (2026-11), not checked against the live list |
| accelerator_per_hour     | 0.40    | $/h         | NVIDIA T4 on Vertex AI prediction, us-central1; same secondary sources (2026-11) |
| article_gpu_per_hour     | 0.45    | $/h         | the source article's figure (benchmark 4)                            |
| spot_discount            | 0.70    | fraction    | the source article ("spot VMs at 70% off")                           |
| local_fixed_per_month    | 80.0    | $/month/GPU | the source article (power, depreciation of the RTX 3090 box)         |
| billing_granularity_s    | 30      | s           | Vertex AI prediction node-hours are billed in 30 s increments (docs)  |
"""

from __future__ import annotations

import json
import math
from pathlib import Path

PRICES_DATE = "2026-11"
DEFAULT_PRICES: dict[str, float] = {
    "machine_per_hour": 0.219,
    "accelerator_per_hour": 0.40,
    "article_gpu_per_hour": 0.45,
    "spot_discount": 0.70,
    "local_fixed_per_month": 80.0,
    "billing_granularity_s": 30.0,
}
SOURCES = {
    "machine_per_hour": "n1-standard-4, Vertex AI prediction us-central1, secondary sources (issue #6)",
    "accelerator_per_hour": "NVIDIA T4, Vertex AI prediction us-central1, secondary sources (issue #6)",
    "article_gpu_per_hour": "source article, benchmark 4",
    "spot_discount": "source article, benchmark 4 (70% off)",
    "local_fixed_per_month": "source article, benchmark 4 ($80/month fixed)",
    "billing_granularity_s": "Vertex AI pricing: 30-second increments",
}


def load_prices(path: str | None = None, overrides: list[str] | None = None) -> dict[str, float]:
    """Defaults, then a JSON file {key: value}, then KEY=VALUE overrides. ValueError on bad input."""
    prices = dict(DEFAULT_PRICES)
    if path:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read prices file {path}: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"prices file {path} must hold a JSON object")
        for key, value in data.items():
            _set(prices, key, value)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--price expects KEY=VALUE, got {item!r}")
        _set(prices, key.strip(), value)
    return prices


def _set(prices: dict[str, float], key: str, value) -> None:
    if key not in DEFAULT_PRICES:
        raise ValueError(f"unknown price {key!r}; known: {', '.join(DEFAULT_PRICES)}")
    try:
        prices[key] = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"price {key} must be a number, got {value!r}") from None
    if prices[key] < 0:
        raise ValueError(f"price {key} must be >= 0")


def replica_price_per_hour(prices: dict[str, float], spot: bool = False) -> float:
    """Machine + accelerator, per replica-hour, with the spot discount when spot."""
    base = prices["machine_per_hour"] + prices["accelerator_per_hour"]
    return base * (1 - prices["spot_discount"]) if spot else base


def billed_seconds(uptime_s: float, granularity_s: float) -> float:
    """Up time rounded up to the billing increment (a tiny epsilon absorbs float noise)."""
    if granularity_s <= 0:
        return uptime_s
    return math.ceil(uptime_s / granularity_s - 1e-9) * granularity_s


def article_naive_cost(monthly_requests: int, gpu_s_per_request: float = 30.0, price_per_hour: float = 0.45,
                       cache_hit_ratio: float = 0.0, spot_discount: float = 0.0) -> dict[str, float]:
    """The article's arithmetic: busy GPU-seconds only. 10,000 x 30 s = 83.3 h x $0.45 = $37.50;
    with 20% cache hits and spot 70% off: 8,000 x 30 s = 66.7 h x $0.135 = $9."""
    calls = monthly_requests * (1 - cache_hit_ratio)
    hours = calls * gpu_s_per_request / 3600
    price = price_per_hour * (1 - spot_discount)
    return {"calls": calls, "gpu_hours": hours, "price_per_hour": price, "monthly": hours * price,
            "per_request": hours * price / monthly_requests if monthly_requests else 0.0}
