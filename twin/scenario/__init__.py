"""Scenario schema (pydantic v2) and its YAML loader with located errors."""

from twin.scenario.loader import load_scenario, preset_names, preset_path, validate_mapping
from twin.scenario.schema import (
    Arrivals,
    Fleet,
    InferenceWorkload,
    PowerChain,
    Scenario,
    Site,
    Stage,
    TrainingWorkload,
)

__all__ = [
    "Arrivals",
    "Fleet",
    "InferenceWorkload",
    "PowerChain",
    "Scenario",
    "Site",
    "Stage",
    "TrainingWorkload",
    "load_scenario",
    "preset_names",
    "preset_path",
    "validate_mapping",
]
