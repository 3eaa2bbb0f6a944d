"""The source article's figures, quoted (shared/seed/digest.md). Every number here is "quoted from the
article", never a measurement of ours; the report labels them so."""

SOURCE = "Qwen-Image-Layered cloud migration (7/10): performance benchmark (poster-decomposer)"

# Benchmark 1: single request, 5 runs per case: (mean_s, std_s).
SINGLE = {
    "local-3090": {"small": (12.3, 0.5), "medium": (28.7, 1.2), "large": (67.4, 2.8)},
    "vertex-t4": {"small": (15.1, 0.8), "medium": (34.2, 1.5), "large": (82.3, 3.2)},
}

# Benchmark 2: cold start with min replicas 0, Medium case (1024 px, 5 layers).
COLDSTART_S = {"instance_start": 127.0, "model_load": 43.0, "inference": 34.0}
WARM_S = 34.0

# Benchmark 3: N requests sent at once (Medium case), polled every 1 s: (succeeded, mean_s).
CONCURRENCY = {
    "local": {1: (1, 28.7), 5: (5, 142.3), 10: (10, 285.1), 20: (8, None)},
    "vertex": {1: (1, 34.2), 5: (5, 38.1), 10: (10, 41.7), 20: (20, 47.3)},
}
CONCURRENCY_NOTE = {"local": {20: "8/20 succeeded, GPU out-of-memory errors"},
                    "vertex": {10: "3 instances", 5: "scaling starts"}}

# Benchmark 4: 10,000 requests/month.
COST = {
    "monthly_requests": 10_000,
    "local_fixed_per_month": 80.0,
    "vertex_naive": {"gpu_s_per_request": 30.0, "price_per_hour": 0.45, "monthly": 37.50},
    "vertex_optimized": {"cache_hit_ratio": 0.20, "spot_discount": 0.70, "price_per_hour": 0.135,
                         "monthly": 9.0},
}

# The article's recommended settings.
RECOMMENDED = {"business_hours": (9, 18), "business_min_max": (1, 3), "night_min_max": (0, 1),
               "spot": True, "cache_ttl_s": 86400, "batch_size": 3}
