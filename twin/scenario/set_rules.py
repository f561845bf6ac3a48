"""What follows a ``--set``: the rules the CLI, sweeps and the dashboard's ``twin run`` line share.

What follows a ``--set`` (:func:`follow_sets`, used by ``twin run``/``twin validate`` and by
every sweep's ``overrides`` and points; :func:`load_with_sets`). A rule fills in only what the
sets do not give themselves, and never replaces a value they give:

* ``fleet.rows``, ``fleet.racks_per_row``, ``fleet.servers_per_rack`` (or ``fleet`` whole)
  changing the number of servers: :func:`~twin.scenario.edits.resize_fleet`. Each pool whose ``servers`` the sets do
  not give scales with the servers, and its request rate (``requests_per_s``, or a trace's
  ``rate_scale``) follows its servers, unless the sets give the rate. The transformer and UPS
  are not resized: a fleet they cannot carry is refused by ``twin validate``. (``twin follow
  --mirror --gpus N`` resizes otherwise: :func:`twin.harness.mirror.scale_fleet` scales the site
  ratings and replaces the workloads.)
* ``fleet.accelerator`` (another name): the base's calibrated ``fleet.accelerator_file`` is
  dropped (before, the file silently won over the name).
* ``power.generator.FIELD`` where the base has no generator: ``power.generator.rated_w`` is the
  transformer stage's ``rated_w`` x ``count`` after the sets (before: an error).
* ``power.ups.battery.runtime_s`` on a battery sized by ``energy_j`` (or the other way round):
  the other size is dropped (before: "give exactly one of").

Decisions:

* The fleet rule changes what ``--set fleet.rows=N`` gave before (the pools kept their servers:
  an error below them, idle servers above, at the same request rate). It is the what-if a fleet
  size asks for, and the dashboard's; to keep the old result give the pools' sizes too, e.g.
  ``--set workloads.0.servers=96``.
* A pool's rate follows its servers only where the fleet rule sized the pool: ``--set
  workloads.0.servers=48`` alone keeps the rate, as before.
* The dashboard's other rules are UI conveniences and do not apply to ``--set``, which keeps
  what it gave before: a utility outage brings no battery or generator (the dashboard offers them
  switched on; ``--set power.ups.battery.runtime_s=300 --set power.generator.start_delay_s=10``
  gives the same ones); ``--set workloads.N.model`` keeps the pool's ``precision`` (the
  dashboard, without a precision widget, serves the model's own); ``--set events=[...]``
  replaces the scenario's events (the dashboard appends one, :func:`~twin.scenario.edits.add_fault`).
* :func:`twin.load_scenario` applies overrides as given (scripts and tests that pin every field
  rely on it); :func:`load_with_sets` is what ``--set`` does. A base that is invalid on its own
  gets its sets as given: there is nothing valid to follow from.

:func:`sets_between` goes the other way: the ``--set`` overrides that turn a scenario into an
edited one, under these rules (the dashboard's cache key and its ``twin run`` line).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twin.errors import ScenarioError
from twin.scenario.edits import resize_fleet, scaled_pool_servers
from twin.scenario.facility_schema import Fleet
from twin.scenario.loader import load_scenario
from twin.scenario.schema import PathError, Scenario, set_dotted
from twin.scenario.values import Data, diff, value_at


def _given(path: str, keys: Collection[str]) -> bool:
    """Whether the sets give ``path``: the key itself or a mapping above it."""
    return any(path == k or path.startswith(k + ".") for k in keys)


def _touches(path: str, keys: Collection[str]) -> bool:
    """Whether a key gives ``path``, a mapping above it, or a field below it."""
    return _given(path, keys) or any(k.startswith(path + ".") for k in keys)


def _pool_size(workload: Any) -> int | None:
    """The ``servers`` a workload mapping gives: None for the rest of the fleet, 0 for no valid size."""
    n = workload.get("servers") if isinstance(workload, dict) else 0
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n) or n <= 0 or n != int(n):
        return 0
    return int(n)


def _fleet_rule(base: Scenario, data: Data, keys: Collection[str]) -> Data:
    if not _touches("fleet", keys) or "workloads" in keys:
        return {}
    try:
        fleet = Fleet.model_validate(data["fleet"])
    except ValidationError:
        return {}  # the loader names the bad value
    if fleet.n_servers == base.fleet.n_servers or len(data["workloads"]) != len(base.workloads):
        return {}
    given = [i for i in range(len(base.workloads)) if _given(f"workloads.{i}.servers", keys)]
    if len(given) == len(base.workloads):
        return {}  # the sets size every pool
    keep = {i: _pool_size(data["workloads"][i]) for i in given}
    if any(n == 0 for n in keep.values()):
        return {}  # the loader names the bad size
    scaled_pool_servers(base, fleet.n_servers, keep)  # pools that cannot fit: the rule's own problem
    shape = {"rows": fleet.rows, "racks_per_row": fleet.racks_per_row, "servers_per_rack": fleet.servers_per_rack}
    try:
        resized = resize_fleet(base, **shape, keep=keep)
    except ScenarioError:
        return {}  # the loader reports the sets as given (a fleet too large for the run, ...)
    out = {k: v for k, v in diff(base, resized).items() if not k.startswith("fleet.")}
    for i in range(len(base.workloads)):  # a rate the sets give wins over the one that follows
        rates = [f"workloads.{i}.arrivals.requests_per_s", f"workloads.{i}.arrivals.rate_scale"]
        if any(_touches(r, keys) for r in rates):
            out = {k: v for k, v in out.items() if k not in rates}
    return out


def _accelerator_rule(base: Scenario, data: Data, keys: Collection[str]) -> Data:
    if base.fleet.accelerator_file is None or _given("fleet.accelerator_file", keys) or "fleet" in keys:
        return {}
    if "fleet.accelerator" in keys and data["fleet"].get("accelerator") != base.fleet.accelerator:
        return {"fleet.accelerator_file": None}
    return {}


def _generator_rule(base: Scenario, data: Data, keys: Collection[str]) -> Data:
    if base.power.generator is not None or _given("power.generator.rated_w", keys):
        return {}
    if not any(k.startswith("power.generator.") for k in keys):
        return {}
    tr = data["power"]["transformer"]
    try:
        return {"power.generator.rated_w": float(tr["rated_w"]) * int(tr["count"])}
    except (TypeError, ValueError, KeyError):
        return {}  # the loader names the bad transformer value


def _battery_rule(base: Scenario, data: Data, keys: Collection[str]) -> Data:
    bat = base.power.ups.battery
    if bat is None:
        return {}
    for given, other in (("runtime_s", "energy_j"), ("energy_j", "runtime_s")):
        path = f"power.ups.battery.{given}"
        if path in keys and getattr(bat, other) is not None and not _given(f"power.ups.battery.{other}", keys):
            return {f"power.ups.battery.{other}": None}
    return {}


#: The ``--set`` rules, in the order they apply (module docstring): ``rule(base, data, keys)``
#: gives the overrides that follow, from the base, the sets applied to its fields and their keys.
SET_RULES: tuple[Callable[[Scenario, Data, Collection[str]], Data], ...] = (
    _fleet_rule,
    _accelerator_rule,
    _generator_rule,
    _battery_rule,
)


def follow_sets(base: Scenario, sets: Mapping[str, Any]) -> dict[str, Any]:
    """``sets`` (dotted path -> value) followed by the overrides that follow from them on ``base``.

    The rules are :data:`SET_RULES` (the table in the module docstring). What follows comes after
    the sets and never gives a path the sets give (or one below a mapping they give). Sets that do
    not apply to ``base`` (a bad path, a bad value) are returned as they are: the loader names the
    problem.

    Raises
    ------
    ScenarioError
        A fleet size the pools that follow it cannot fit, even at one server each (``fleet``).
    """
    data = base.model_dump(mode="python")
    try:
        for key, value in sets.items():
            set_dotted(data, key, copy.deepcopy(value))
    except PathError:
        return dict(sets)
    keys = list(sets)
    follows: Data = {}
    for rule in SET_RULES:
        follows |= rule(base, data, keys)
    return {**sets, **{k: v for k, v in follows.items() if not _given(k, keys)}}


def load_with_sets(source: str | Path | None, sets: Mapping[str, Any] | None = None) -> Scenario:
    """Load a scenario with ``--set`` overrides and what follows from them (:func:`follow_sets`).

    Raises
    ------
    ScenarioError
        As :func:`twin.scenario.load_scenario`; problems of an override carry no line.
    """
    if not sets:
        return load_scenario(source)
    try:
        base = load_scenario(source)
    except ScenarioError:  # valid only with the sets: nothing to follow from
        return load_scenario(source, dict(sets))
    return load_scenario(source, follow_sets(base, sets))


def sets_between(base: Scenario, edited: Scenario) -> dict[str, Any]:
    """The ``--set`` overrides (dotted path -> plain value, sorted) that turn ``base`` into ``edited``.

    Only what differs is given, field by field where that reads back (a rebuilt sub-model or a
    longer list whole). A value a ``--set`` rule would change (:func:`follow_sets`) is pinned at
    ``edited``'s, so ``load_with_sets`` and ``load_scenario`` of the overrides both give ``edited``.
    """
    out = diff(base, edited)
    for path in follow_sets(base, out).keys() - out.keys():
        out[path] = value_at(edited, path)
    return dict(sorted(out.items()))


__all__ = ["SET_RULES", "follow_sets", "load_with_sets", "sets_between"]
