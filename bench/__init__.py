"""Measurements that are not Locust runs, the Locust runner, and the report schema and statistics
that everything else reads."""
