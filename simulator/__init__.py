"""SimPy model of the decomposer service: local GPU queue, Vertex AI replicas with an autoscaler,
hybrid fallback; monthly workloads and closed-loop (Locust-like) stages; billing.

`python -m simulator --help`.
"""
