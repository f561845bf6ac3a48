"""The scenario schema: every input of one simulation, validated and typed.

Units are in the field names. A scenario is frozen once loaded; build variants with
:meth:`Scenario.with_updates` (dotted paths), which re-validates.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from twin.scenario.facility_schema import CoolingSpec, Fleet, PlantCooling, PowerChain, Site, Weather
from twin.scenario.faults import Controls, FaultEvent, Reliability
from twin.scenario.resources import size_problem
from twin.scenario.strict import Float, Int, StrictModel
from twin.scenario.workload_schema import InferenceWorkload, RequestLevel, Workload


class Scenario(StrictModel):
    """Everything one simulation needs."""

    name: str = "scenario"
    description: str = ""
    seed: Int = Field(42, ge=0)
    start: datetime = Field(datetime(2024, 7, 15), description="Wall-clock time of t = 0 (local).")
    duration_s: Float = Field(86400.0, gt=0)
    step_s: Float = Field(1.0, gt=0, description="Physics tick: resolution of time-varying inputs.")
    report_interval_s: Float = Field(60.0, gt=0)
    site: Site = Site()
    fleet: Fleet = Fleet()
    power: PowerChain = PowerChain()
    cooling: CoolingSpec = PlantCooling()
    weather: Weather = Weather()
    workloads: list[Workload] = Field(default_factory=list)
    events: list[FaultEvent] = Field(default_factory=list, description="Scheduled faults (twin.scenario.faults).")
    reliability: Reliability = Reliability()
    controls: Controls = Controls()
    request_level: RequestLevel | None = Field(
        None, description="Replay a sample of each inference pool request by request after the run (None: off)."
    )
    source_dir: Path | None = Field(None, exclude=True, description="Folder of the scenario file.")
    source_file: Path | None = Field(None, exclude=True, description="The scenario file (errors name it).")

    @model_validator(mode="after")
    def _times_and_pools(self) -> Scenario:
        ratio = self.report_interval_s / self.step_s
        if not math.isfinite(ratio) or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"report_interval_s ({self.report_interval_s}) must be a whole multiple of step_s ({self.step_s})"
            )
        taken = sum(w.servers or 0 for w in self.workloads)
        if taken > self.fleet.n_servers:
            raise ValueError(f"workloads ask for {taken} servers but the fleet has {self.fleet.n_servers}")
        names = [w.name for w in self.workloads]
        if len(set(names)) != len(names):
            raise ValueError(f"workload names must be unique, got {names}")
        rl = self.request_level
        if rl is not None and not any(isinstance(w, InferenceWorkload) for w in self.workloads):
            raise ValueError("request_level replays inference workloads, and the scenario has none")
        if rl is not None and rl.start_s is not None and rl.start_s >= self.duration_s:
            raise ValueError(f"request_level.start_s ({rl.start_s:g} s) is not before the end ({self.duration_s:g} s)")
        too_big = size_problem(self)  # the fleet, tick and memory limits (twin.scenario.resources)
        if too_big is not None:
            raise ValueError(too_big)
        return self

    @property
    def source_name(self) -> str:
        """What errors call this scenario: its file, else its name."""
        return str(self.source_file) if self.source_file is not None else f"scenario {self.name!r}"

    def with_updates(self, updates: dict[str, Any]) -> Scenario:
        """Return a validated copy with dotted-path fields replaced, e.g. ``{"fleet.rows": 2}``."""
        data = self.model_dump(mode="python")
        for path, value in updates.items():
            set_dotted(data, path, value)
        data["source_dir"] = self.source_dir
        data["source_file"] = self.source_file
        return Scenario.model_validate(data)


#: A list index in a dotted path (ASCII digits; no sign).
_INDEX = re.compile(r"[0-9]+")


class PathError(ValueError):
    """A dotted path that does not lead to a field :func:`set_dotted` can set."""


def set_dotted(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[a][b][0][c] = value`` for ``path = "a.b.0.c"``.

    Missing mappings on the way are created (a missing list only where the next key is an index,
    and then it is empty). List indices are ``0 .. len - 1``: negative indices and indices past
    the end are refused rather than editing the last entry or appending.

    Raises
    ------
    PathError
        An empty key, a non-integer or out-of-range index, or a path that goes through a value.
    """
    keys = path.split(".")
    if not all(keys):
        raise PathError(f"{path!r} has an empty key; expected a dotted field path like fleet.rows")
    node: Any = data
    for i, key in enumerate(keys):
        here = ".".join(keys[:i]) or "the scenario"
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not _INDEX.fullmatch(key):
                raise PathError(f"{here} is a list: expected an index 0 to {len(node) - 1}, got {key!r}")
            index = int(key)
            if index >= len(node):
                valid = f"indices 0 to {len(node) - 1}" if node else "no entries"
                raise PathError(f"{here} has {valid}, so there is no index {index}; set the whole list instead")
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if key not in node or node[key] is None:
                    node[key] = [] if _INDEX.fullmatch(keys[i + 1]) else {}
                node = node[key]
        else:
            shown = repr(node) if len(repr(node)) <= 40 else repr(node)[:39] + "…"
            raise PathError(f"{here} is a value ({shown}), not a mapping or list: it has no field {key!r}")
