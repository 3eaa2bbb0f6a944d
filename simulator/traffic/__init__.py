"""Real traffic: a production request log read (`read`), its times parsed (`times`), cut to a window and
scaled (`window`), described (`profile`), the workload model fitted to it (`fit`), and the commands
`python -m simulator trace import|fit` (`commands`) that write it as an arrival trace (loadlab/trace.py)."""
