"""The SimPy model of serving the decomposer: a local GPU queue, Vertex AI replicas, Ray Serve replicas
(autoscaling policies over one replica pool), a hybrid fallback; monthly workloads, traces, open- and
closed-loop replays of measured runs; billing. `python -m simulator --help`."""
