"""Resource statistics: bounded sample histories and the samplers that feed them.

The samplers read what other sources already produce (the host process scan, the guest walk,
container events) plus a few cgroup files; they never start a process or call Docker per tick.
"""
