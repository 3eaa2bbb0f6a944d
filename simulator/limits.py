"""The bounds of the simulator's inputs, and why (the command line states each in its --help)."""

# The most requests one simulated run may hold (monthly x days / 30, plus bursts). Memory does not grow
# with the month (arrivals are drawn an hour at a time, latencies summarised in a bounded sample, a report
# keeps a bounded number of jobs) except for requests a deployment holds waiting. Time does grow: ~13 us a
# request here, so a deployment that keeps up takes ~2 minutes at the bound (measured: 131 s, 112 MB, 200
# local GPUs); one whose queue holds most of the month (1 local GPU at 10 M: 9.9 M waiting) ~10 minutes and
# ~1.9 GB. 10x the bench goal of a million requests a month in under a minute.
MAX_REQUESTS = 10_000_000
MAX_REQUESTS_WHY = "(~2 minutes of simulation per deployment that keeps up, more for an overloaded one)"
MAX_DAYS = 365.0             # a year of simulated time; the hour-of-week weights repeat beyond a week anyway
MAX_REPLICAS = 1000          # replicas of a pool (the min,max flags); the largest named scenario has 40
MAX_REPLICATIONS = 100       # a 95 % interval barely narrows beyond; each replication is a whole month more
MAX_VOLUMES = 20             # sweep volumes: each one is a run of every setting
MAX_SEED = 2**32 - 1
SCALE_TO_ZERO_PERIOD_S = (300.0, 28800.0)   # Vertex scale-to-zero preview: idle / least up time, s
