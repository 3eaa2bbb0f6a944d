"""Prices: `PRICE_TABLE`, the one table of every price input with its unit, source and date (all model
inputs, none measured here). Override with `--price KEY=VALUE` or `--prices FILE.json`; billing rules
(replica-hours rounded to the billing increment, the article's busy-time arithmetic) below."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PriceInput:
    value: float
    unit: str
    source: str
    date: str      # when the source was read (or the article's date for its own figures)


PRICE_TABLE: dict[str, PriceInput] = {
    "machine_per_hour": PriceInput(0.219, "$/h", "n1-standard-4 on Vertex AI prediction, us-central1; secondary "
                                   "sources, not checked against the live price list", "2026-11"),
    "accelerator_per_hour": PriceInput(0.40, "$/h", "NVIDIA T4 on Vertex AI prediction, us-central1; same secondary "
                                       "sources", "2026-11"),
    "article_gpu_per_hour": PriceInput(0.45, "$/h", "the source article, benchmark 4", "article"),
    "spot_discount": PriceInput(0.70, "fraction", "the source article, benchmark 4 (\"spot VMs at 70% off\")",
                                "article"),
    "local_fixed_per_month": PriceInput(80.0, "$/month/GPU", "the source article, benchmark 4 (power, "
                                        "depreciation of the RTX 3090 box)", "article"),
    "billing_granularity_s": PriceInput(30.0, "s", "Vertex AI prediction node-hours are billed in 30 s increments, "
                                        "as of 2026-11 per cloud.google.com/vertex-ai/pricing (the stored copies "
                                        "searched offline on 2026-12-02 did not show the sentence): a model input",
                                        "2026-11"),
    "gpu_node_per_hour": PriceInput(0.54, "$/h", "a GPU node for a Ray Serve replica (GKE/Compute Engine "
                                    "n1-standard-4 ~$0.19/h + NVIDIA T4 ~$0.35/h, us-central1 on-demand list "
                                    "prices as quoted by secondary sources; not checked against the live price "
                                    "list): a model input", "2026-11"),
    "node_min_billed_s": PriceInput(60.0, "s", "Compute Engine bills vCPUs, GPUs and memory for at least 1 minute, "
                                    "then per second (cloud.google.com/compute/vm-instance-pricing, billing model)",
                                    "2026-11"),
    "ray_head_per_hour": PriceInput(0.19, "$/h", "the Ray head node, no GPU: Compute Engine n1-standard-4 "
                                    "us-central1 on-demand ~$0.19/h (the machine part of gpu_node_per_hour, same "
                                    "secondary sources, not checked against the live price list): a model input",
                                    "2026-11"),
    "egress_per_gib": PriceInput(0.12, "$/GiB", "Premium Tier internet data transfer out to North America, "
                                 "1 GiB to 1,024 GiB tier (cloud.google.com/vpc/network-pricing, as transcribed "
                                 "2026-09-20 by api-evangelist/google-cloud-vpc; the free first GiB and the cheaper "
                                 "tiers above 1 TiB are not modelled): a model input", "2026-09-20"),
    "result_bytes_per_px": PriceInput(1.244, "B/px", "bytes of a result layer PNG per pixel: measured on "
                                      "reports/layers/layer_{0,1,2}.png of the demo (n=3, 640x640 RGBA from the tiny "
                                      "offline model, 509-518 KB each; the job server's zip stores them uncompressed); "
                                      "a real model's layers of natural images may compress better", "2026-12-02"),
}
DEFAULT_PRICES: dict[str, float] = {key: p.value for key, p in PRICE_TABLE.items()}


def price_sources(prices: dict[str, float]) -> dict[str, dict]:
    """The prices a run used, each with its unit and source ("given on the command line" when overridden)."""
    out = {}
    for key, value in prices.items():
        entry = PRICE_TABLE[key]
        given = value != entry.value
        out[key] = {"value": value, "unit": entry.unit, "source": "given by the user" if given else entry.source,
                    "date": None if given else entry.date}
    return out


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
    if not 0 <= prices[key] < math.inf:     # NaN too
        raise ValueError(f"price {key} must be a finite number >= 0, got {value!r}")


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
