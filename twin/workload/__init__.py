"""Workloads: trace readers into one schema, synthetic generators, fluid arrivals."""
