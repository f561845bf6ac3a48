"""Scenario sweeps: a spec of points over scenario fields, run on Dask, one result file per point.

>>> from twin.sweep import load_sweep, run_sweep  # doctest: +SKIP
>>> report = run_sweep(load_sweep("scenarios/sweeps/facility-water-setpoint.yaml"), "sweeps/fws")  # doctest: +SKIP
>>> report.summary[["cooling.liquid_class", "weather.source", "pue"]]  # doctest: +SKIP
"""

from twin.sweep.runner import SweepReport, run_point, run_sweep
from twin.sweep.spec import Sweep, SweepPoint, SweepSpec, load_sweep, scenario_key
from twin.sweep.store import build_summary, load_point, read_summary

__all__ = [
    "Sweep",
    "SweepPoint",
    "SweepReport",
    "SweepSpec",
    "build_summary",
    "load_point",
    "load_sweep",
    "read_summary",
    "run_point",
    "run_sweep",
    "scenario_key",
]
