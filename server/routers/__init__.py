"""One router per resource: files, jobs, health, vertex, faults (tests only)."""
