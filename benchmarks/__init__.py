"""Performance suite of the twin (not timed tests): ``python -m benchmarks``; see ``benchmarks/run.py``."""
