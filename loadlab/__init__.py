"""The shared core: report schema, statistics, workload cases and the source article's quoted figures.

It imports nothing of server/, clients/, bench/, simulator/ or locustfiles/."""
