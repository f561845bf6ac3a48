"""Sweep specs: a base scenario and the points to run, every point validated before anything runs.

A spec is a YAML file::

    name: facility-water-setpoint          # optional; default: the file's stem
    base: default                          # a preset name, or a scenario file relative to the spec
    overrides: {duration_s: 14400}         # dotted paths applied to every point
    points:                                # optional: a list of mappings of dotted paths
      - {weather.source: greensboro-nc}
      - {weather.source: sand-point-ak}
    grid:                                  # optional: every combination of these values
      cooling.liquid_class: [W17, W32, W45]

The points are every entry of ``points`` combined with every cell of ``grid`` (``points`` outer,
``grid`` inner, grid keys varying last-key-fastest); with only one of the two, it alone defines
them. Values are applied in the order overrides, then the point's entry, then the grid cell, each
with :func:`twin.scenario.schema.set_dotted`: a mapping value replaces the whole sub-tree. What
follows a value is what follows a ``twin run --set`` of it (:mod:`twin.scenario.edits`: the pools
and request rates follow a fleet size), on the base for ``overrides`` and on the base with the
overrides for a point.

Decision: an invalid point (a value the scenario schema rejects, a path that does not exist) makes
the whole spec invalid, and nothing runs; the :class:`~twin.errors.ScenarioError` names the spec
file, the point with its values, the field path and the spec line where the value is. Failures
that only show when a point runs (a corrupt weather file, a physically impossible plant) are
recorded per point by the runner and do not stop the others.

Decision: the sweep's name (``name:``, else the spec file's stem) names its folder
``sweeps/<name>``, so it must be one safe folder name (:data:`SWEEP_NAME`: letters, digits,
``-``, ``_`` and ``.``, not starting with ``.``): ``../..`` or an absolute path would write
outside the sweeps folder. A spec expands to at most :data:`MAX_POINTS` points (a grid of ten
keys of ten values would otherwise validate 10**10 scenarios before refusing nothing).

The key of a point is the SHA-256 of the canonical JSON of its fully resolved scenario (first 16
hex digits): the same scenario spelt differently (``500`` or ``500.0``, keys in another order,
from another spec) gets the same key, and any change to what the run depends on gets a new one.
Files the scenario names (a weather file) enter the key by path, not by content.

Relative file paths in a point's scenario (``weather.source: my.epw``) are relative to the spec's
folder, for values from the spec and from its base alike: the same rule as a scenario file's
``base:`` chain, where paths are relative to the file being loaded.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twin.errors import FieldProblem, ScenarioError
from twin.scenario.loader import preset_names, preset_path, read_yaml, validate_mapping
from twin.scenario.schema import PathError, Scenario, set_dotted
from twin.scenario.set_rules import follow_sets, load_with_sets

#: A dotted field path: ``cooling.liquid_class``, ``workloads.0.arrivals.requests_per_s``.
DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(\.(\d+|[A-Za-z_]\w*))*$")

#: Hex digits of the SHA-256 kept in a point's key (64 bits: no collision in any real sweep).
KEY_DIGITS = 16

#: Most problems listed in one error; the rest are counted.
MAX_PROBLEMS = 30

#: A sweep's name: one folder name (it names ``sweeps/<name>``), so never ``..``, a path or hidden.
SWEEP_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")

#: Most points one spec may expand to: each is validated before anything runs, and each is a run.
MAX_POINTS = 10_000


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a sweep folder, or None."""
    if SWEEP_NAME.fullmatch(name):
        return None
    return (
        f"must be one folder name of at most 100 letters, digits, '-', '_' and '.', not starting with '.' "
        f"(the sweep's folder is sweeps/<name>), got {name!r}"
    )


class SweepSpec(BaseModel):
    """The validated contents of a sweep spec file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="Name of the sweep (default: the spec file's stem).")
    description: str = ""
    base: str = Field(description="Preset name, or a scenario file relative to the spec file.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted paths applied to every point.")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict, description="Dotted path -> values; every combination."
    )
    points: list[dict[str, Any]] = Field(default_factory=list, description="Mappings of dotted path -> value.")

    @model_validator(mode="after")
    def _something_to_sweep(self) -> SweepSpec:
        if not self.grid and not self.points:
            raise ValueError("a sweep needs grid: (path -> list of values) or points: (list of mappings), or both")
        both = sorted({k for entry in self.points for k in entry} & set(self.grid))
        if both:
            raise ValueError(f"{', '.join(both)} is set both in grid and in points; set each path in one place")
        return self

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str | None) -> str | None:
        problem = None if name is None else _name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name


@dataclass(frozen=True)
class SweepPoint:
    """One scenario of a sweep.

    Attributes
    ----------
    index : int
        Position in the spec's expansion (0-based).
    values : dict
        The swept values of this point, dotted path -> value (the point entry, then the grid cell).
    scenario : Scenario
        The fully resolved, validated scenario.
    key : str
        Hash of the resolved scenario; names the point's files.
    """

    index: int
    values: dict[str, Any]
    scenario: Scenario
    key: str

    def label(self, width: int = 100) -> str:
        """``path=value, ...`` shortened to ``width`` characters."""
        return _label(self.values, width)


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: its spec, where it came from, and every point."""

    spec: SweepSpec
    source: Path
    name: str
    base_path: Path
    points: list[SweepPoint]

    @property
    def fields(self) -> list[str]:
        """The swept dotted paths, in the order they first appear."""
        seen: dict[str, None] = {}
        for p in self.points:
            seen.update(dict.fromkeys(p.values))
        return list(seen)


def _label(values: dict[str, Any], width: int = 100) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "(base)"
    return text if len(text) <= width else text[: width - 1] + "…"


def scenario_key(scenario: Scenario) -> str:
    """Stable key of a scenario: SHA-256 of its canonical JSON, first :data:`KEY_DIGITS` hex digits."""
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_DIGITS]


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep spec and resolve and validate every point.

    Raises
    ------
    ScenarioError
        The spec is invalid, its base does not load, or a point is not a valid scenario; every
        problem names the field path, the point and the spec line.
    """
    path = Path(path)
    data, lines = _read_yaml(path)
    spec: SweepSpec = validate_mapping(data, str(path), lines, model=SweepSpec)
    name = spec.name or path.stem
    if spec.name is None and _name_problem(name) is not None:
        raise ScenarioError(str(path), [FieldProblem("name", f"the file name gives none: {_name_problem(name)}")])
    _check_paths(spec, path, lines)
    n_points = max(len(spec.points), 1) * math.prod(len(v) for v in spec.grid.values())
    if n_points > MAX_POINTS:
        raise ScenarioError(
            str(path),
            [FieldProblem("(spec)", f"{n_points:,} points; a sweep has at most {MAX_POINTS:,} (split it)")],
        )
    base_path = _resolve_base(spec.base, path, lines)
    base = _load_base(base_path, spec, path, lines)
    base_data = base.model_dump(mode="python")
    entries = spec.points or [{}]
    cells = [dict(zip(spec.grid, combo, strict=True)) for combo in itertools.product(*spec.grid.values())]
    points: list[SweepPoint] = []
    problems: list[FieldProblem] = []
    for i, (j, cell) in enumerate(itertools.product(range(len(entries)), cells)):
        values = {**entries[j], **cell}
        origin = {k: ("points", str(j), k) for k in entries[j]} | {k: ("grid", k) for k in cell}
        try:
            scenario = _resolve_point(base, base_data, path.parent.resolve(), values, str(path))
        except ScenarioError as exc:
            problems += [
                FieldProblem(
                    p.field, f"point {i} ({_label(values)}): {p.message}", _origin_line(p.field, origin, lines)
                )
                for p in exc.problems
            ]
            continue
        points.append(SweepPoint(i, values, scenario, scenario_key(scenario)))
    if problems:
        if len(problems) > MAX_PROBLEMS:
            more = FieldProblem("(spec)", f"... and {len(problems) - MAX_PROBLEMS} more problems")
            problems = [*problems[:MAX_PROBLEMS], more]
        raise ScenarioError(str(path), problems)
    _check_unique(points, path)
    return Sweep(spec=spec, source=path, name=name, base_path=base_path, points=points)


def _check_paths(spec: SweepSpec, path: Path, lines: dict[tuple[str, ...], int]) -> None:
    where: list[tuple[str, ...]] = [("overrides", k) for k in spec.overrides]
    where += [("grid", k) for k in spec.grid]
    where += [("points", str(i), k) for i, entry in enumerate(spec.points) for k in entry]
    problems = [
        FieldProblem(".".join(w[:-1]), f"{w[-1]!r} is not a dotted field path like cooling.liquid_class", lines.get(w))
        for w in where
        if not DOTTED_PATH.match(w[-1])
    ]
    if problems:
        raise ScenarioError(str(path), problems)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    if not path.is_file():
        raise ScenarioError(str(path), [FieldProblem("(file)", "no such sweep spec file")])
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise ScenarioError(str(path), [FieldProblem("(top level)", f"expected a mapping, got {got}", 1)])
    return data, lines


def _resolve_base(base: str, spec_path: Path, lines: dict[tuple[str, ...], int]) -> Path:
    candidate = spec_path.parent / base
    if candidate.is_file():
        return candidate
    if preset_path(base).is_file():
        return preset_path(base)
    raise ScenarioError(
        str(spec_path),
        [
            FieldProblem(
                "base",
                f"no scenario file {str(candidate)!r} and no preset {base!r}; presets are {', '.join(preset_names())}",
                lines.get(("base",)),
            )
        ],
    )


def _load_base(base_path: Path, spec: SweepSpec, spec_path: Path, lines: dict[tuple[str, ...], int]) -> Scenario:
    """The base scenario with the spec's overrides (it must be a valid scenario itself)."""
    try:
        return load_with_sets(base_path, spec.overrides)
    except ScenarioError as exc:
        origin = {k: ("overrides", k) for k in spec.overrides}
        problems = [
            FieldProblem(
                p.field, f"base {exc.source} with the overrides: {p.message}", _origin_line(p.field, origin, lines)
            )
            for p in exc.problems
        ]
        raise ScenarioError(str(spec_path), problems) from None


def _resolve_point(
    base: Scenario, base_data: dict[str, Any], source_dir: Path | None, values: dict[str, Any], source: str
) -> Scenario:
    """The point's scenario: ``values`` and what follows from them (:func:`follow_sets`) on the base."""
    data = copy.deepcopy(base_data)
    for field, value in follow_sets(base, values).items():
        try:
            set_dotted(data, field, copy.deepcopy(value))
        except PathError as exc:
            raise ScenarioError(source, [FieldProblem(field, f"no such field path in the scenario: {exc}")]) from None
    data["source_dir"] = source_dir
    data["source_file"] = Path(source)  # facility errors of the point name the spec
    scenario: Scenario = validate_mapping(data, source)
    return scenario


def _origin_line(field: str, origin: Mapping[str, tuple[str, ...]], lines: dict[tuple[str, ...], int]) -> int | None:
    """Spec line of the value that set ``field`` (or a parent or child of it), else of the first value."""
    for path, where in origin.items():
        if field == path or field.startswith(path + ".") or path.startswith(field + "."):
            return lines.get(where)
    return next((lines.get(where) for where in origin.values()), None)


def _check_unique(points: list[SweepPoint], path: Path) -> None:
    first: dict[str, SweepPoint] = {}
    problems = []
    for p in points:
        if p.key in first:
            other = first[p.key]
            problems.append(
                FieldProblem(
                    "(points)",
                    f"point {p.index} ({p.label()}) is the same scenario as point {other.index} ({other.label()})",
                )
            )
        else:
            first[p.key] = p
    if problems:
        raise ScenarioError(str(path), problems)
