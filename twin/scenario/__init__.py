"""Scenario schema (pydantic v2), its YAML loader with located errors, and the what-if edits (:mod:`.edits`)."""

from twin.scenario.facility_schema import Fleet, PowerChain, Site, Stage
from twin.scenario.loader import load_scenario, preset_names, preset_path, validate_mapping
from twin.scenario.schema import Scenario
from twin.scenario.workload_schema import (
    Arrivals,
    BurstyArrivals,
    InferenceWorkload,
    JobTrace,
    PoissonArrivals,
    TelemetryWorkload,
    TraceArrivals,
    TrainingWorkload,
)

__all__ = [
    "Arrivals",
    "BurstyArrivals",
    "Fleet",
    "InferenceWorkload",
    "JobTrace",
    "PoissonArrivals",
    "PowerChain",
    "Scenario",
    "Site",
    "Stage",
    "TelemetryWorkload",
    "TraceArrivals",
    "TrainingWorkload",
    "load_scenario",
    "preset_names",
    "preset_path",
    "validate_mapping",
]
