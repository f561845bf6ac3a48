"""Mirror a measured device across a simulated fleet: facility energy against measured tokens.

Every GPU of a scenario's fleet is made to draw what the one measured device drew, interval by
interval, and the twin's own engine (power chain losses, cooling plant, weather, energy ledger)
turns that into facility power; the tokens are the device's measured tokens times the number of
mirrored GPUs. It works on a finished harness file and, through :func:`follow_mirror`, on one
that is still being written (each update re-simulates from ``t = 0`` with every sample so far).

How a run is mirrored (:func:`mirror_frame`)
--------------------------------------------
1. **Measured intervals** (:func:`twin.harness.intervals.device_intervals`): the harness samples
   are cut into report intervals of ``interval_s`` (1 s by default), complete intervals only. The device's energy in
   each is the difference of its cumulative energy column (the NVML or RAPL counter, or the
   labelled estimate) interpolated linearly at the interval edges, so the mirrored energy is the
   metered energy, not a power sample; its mean power is that energy over the interval. Tokens
   are cut the same way from the cumulative token count (tokens of a sampling period are spread
   evenly over it).
2. **Scenario** (:func:`mirror_scenario`): the scenario's workloads are replaced by one
   telemetry-replay pool over every server (``kind: telemetry``, ``signal: power``, no offsets,
   no loop) reading those interval powers from a small CSV in the twin's telemetry schema
   (format ``harness``); tick and report interval are ``interval_s``, the duration the complete
   intervals. The replay inverts power through the fleet accelerator's linear model at boost
   clock, ``busy = (P - P_idle) / (P_max - P_idle)``, so each simulated GPU draws exactly the
   measured power as long as it lies in ``[P_idle, P_max]``: the range of the scenario's
   accelerator is therefore widened to include every measured value (``fleet.accelerator_overrides``;
   a CPU run on an H100 fleet gets ``P_idle`` = the CPU's lowest power). The same ``busy`` drives
   the servers' non-GPU power, ``other_idle + (other_max - other_idle) * busy`` (modelled from the
   scenario's server entry, not measured).
3. **Simulation**: :func:`twin.simulate` on that scenario. The result's ledger balances as for
   any run. Where the simulation changed the mirrored power (a power cap in the scenario, thermal
   throttling, a server down) the interval's ``mirror_exact`` is False.
4. **Tokens**: ``tokens = device_tokens * gpus`` with ``gpus`` the fleet's GPUs in servers that
   are up (the fleet size when nothing failed). These are measured tokens scaled by the GPU count,
   not tokens the twin's serving model computed.

Device power from a CPU run (``energy_source: estimated``) is a model, and every frame carries
``device_power_estimated``; the CLI prints the label on every line.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import FieldProblem, ScenarioError
from twin.harness.intervals import MEASURED_SOURCES, DeviceSource, device_intervals, device_source, write_replay
from twin.harness.io import live_csv_path, read_harness, summary_path
from twin.scenario.loader import validate_mapping
from twin.scenario.schema import Scenario
from twin.units import J_PER_KWH

#: Name of the replay pool in a mirror scenario.
MIRROR_POOL = "mirror"
#: Relative tolerance of ``mirror_exact`` (simulated GPU power against measured power x GPUs).
EXACT_RTOL = 1e-6


def scale_fleet(scenario: Scenario, n_gpus: int) -> Scenario:
    """The scenario's facility design resized to ``n_gpus`` accelerators.

    The server and rack shapes stay; the fleet becomes one row of whole racks (or one rack of
    ``n_gpus / gpus_per_server`` servers when that is fewer than a rack). Site-level ratings that
    do not scale by themselves, the transformer and UPS ``rated_w`` and the other facility load,
    are scaled by the ratio of servers, so the design's loading stays the same. PDUs (per rack),
    PSUs (per server) and the cooling plant (sized on the nameplate heat) follow the fleet.
    The workloads are dropped (they were sized for the old fleet; :func:`mirror_scenario`
    replaces them).

    Raises
    ------
    ScenarioError
        If ``n_gpus`` is not a whole number of servers, or of racks when above one rack.
    """
    fleet = scenario.fleet
    gps, spr = fleet.gpus_per_server, fleet.servers_per_rack
    if n_gpus < 1 or n_gpus % gps:
        raise ScenarioError(
            "--gpus", [FieldProblem("fleet", f"{n_gpus} GPUs is not a whole number of {gps}-GPU servers")]
        )
    servers = n_gpus // gps
    if servers <= spr:
        shape = {"rows": 1, "racks_per_row": 1, "servers_per_rack": servers}
    elif servers % spr == 0:
        shape = {"rows": 1, "racks_per_row": servers // spr}
    else:
        raise ScenarioError(
            "--gpus",
            [
                FieldProblem(
                    "fleet", f"{servers} servers is not a whole number of {spr}-server racks ({gps * spr} GPUs)"
                )
            ],
        )
    ratio = servers / fleet.n_servers
    data = scenario.model_dump(mode="python")
    data["fleet"].update(shape)
    data["workloads"] = []  # sized for the old fleet; a mirror replaces them anyway
    for stage in ("transformer", "ups"):
        data["power"][stage]["rated_w"] *= ratio
    data["site"]["other_facility_power_w"] *= ratio
    data["source_dir"] = scenario.source_dir
    return validate_mapping(data, f"{scenario.name} scaled to {n_gpus} GPUs")


def mirror_scenario(
    scenario: Scenario,
    replay_path: Path | str,
    duration_s: float,
    interval_s: float,
    power_range_w: tuple[float, float],
) -> Scenario:
    """The scenario with its workloads replaced by one pool replaying ``replay_path`` on all servers.

    Parameters
    ----------
    scenario : Scenario
        The facility to mirror onto (its fleet, power chain, cooling, weather and start).
    replay_path : Path or str
        Telemetry CSV (format ``harness``) with the device power per interval.
    duration_s, interval_s : float
        Run length and tick = report interval. [s]
    power_range_w : (float, float)
        Lowest and highest measured interval power; the accelerator's idle and maximum power
        are widened to include them. [W]

    Returns
    -------
    Scenario
        Validated; ``name`` is ``mirror-<scenario name>``.
    """
    from twin.facility import build_facility

    data = scenario.model_dump(mode="python")
    data.update(
        name=f"mirror-{scenario.name}",
        duration_s=float(duration_s),
        step_s=float(interval_s),
        report_interval_s=float(interval_s),
        workloads=[
            {
                "kind": "telemetry",
                "name": MIRROR_POOL,
                "path": str(Path(replay_path).resolve()),
                "format": "harness",
                "signal": "power",
                "loop": False,
                "offsets": False,
                "mem_activity_per_busy": 1.0,
                "sm_activity_per_busy": 1.0,
            }
        ],
        source_dir=scenario.source_dir,
    )
    source = f"mirror of {scenario.name}"
    acc = build_facility(validate_mapping(data, source)).accelerator
    lo, hi = power_range_w
    overrides = dict(data["fleet"].get("accelerator_overrides") or {})
    overrides["idle_power_w"] = float(min(acc.idle_power_w, lo))
    overrides["full_power_w"] = float(max(acc.full_power_w, hi))
    overrides["max_power_w"] = float(max(acc.max_power_w, hi))  # the power limit lets the measured peak through
    if overrides["full_power_w"] <= overrides["idle_power_w"]:
        overrides["full_power_w"] = overrides["idle_power_w"] + 1.0  # a flat trace: any span inverts it
    data["fleet"]["accelerator_overrides"] = overrides
    return validate_mapping(data, source)


@dataclass
class MirrorResult:
    """One mirror of the samples received so far.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per report interval, see :func:`mirror_frame`.
    kpis : dict
        Totals over the run: ``duration_s``, ``gpus``, ``device_energy_j``, ``device_tokens``,
        ``device_mean_power_w``, ``device_tokens_per_s``, ``tokens``, ``facility_energy_j``,
        ``facility_energy_kwh``, ``it_energy_j``, ``pue``, ``tokens_per_kwh``,
        ``j_per_token_facility``, ``j_per_token_it``, ``mean_facility_power_w``,
        ``ledger_residual_j``, ``intervals_not_exact``.
    source : DeviceSource
        Where the device power came from.
    result : twin.results.Result
        The simulation (time series, ledger, the twin's own KPIs, in which ``tokens_out`` is 0:
        the mirrored tokens are booked here, not by the serving model).
    scenario : Scenario
        The mirror scenario that ran.
    finished : bool
        The harness run had written its summary when this mirror was made.
    """

    frame: pd.DataFrame
    kpis: dict[str, float]
    source: DeviceSource
    result: Any
    scenario: Scenario
    finished: bool = False
    notes: list[str] = field(default_factory=list)


def _mirror_intervals(intervals: pd.DataFrame, scenario: Scenario, source: DeviceSource, workdir: Path) -> MirrorResult:
    from twin.simulation import simulate

    interval_s = float(intervals["duration_s"].iloc[0])
    replay = workdir / "mirror-replay.csv"
    write_replay(replay, intervals)
    power = intervals["device_power_w"].to_numpy(dtype=np.float64)
    sc = mirror_scenario(
        scenario, replay, interval_s * len(intervals), interval_s, (float(power.min()), float(power.max()))
    )
    result = simulate(sc)
    ts, ledger = result.timeseries, result.ledger
    n = len(ts)
    if n != len(intervals):
        raise RuntimeError(f"mirror: {n} simulated intervals for {len(intervals)} measured")  # pragma: no cover
    gps = sc.fleet.gpus_per_server
    n_gpus = sc.fleet.n_gpus
    gpus = ts["servers_up"].to_numpy(dtype=np.float64) * gps
    dev = intervals.reset_index(drop=True)
    tokens = dev["device_tokens"].to_numpy() * gpus
    fac_j = ledger["metered_j"].to_numpy(dtype=np.float64)
    it_j = (ledger["accelerators_j"] + ledger["server_other_j"]).to_numpy(dtype=np.float64)
    dur = ts["duration_s"].to_numpy(dtype=np.float64)
    gpu_w = ts["accelerators_power_w"].to_numpy(dtype=np.float64)
    exact = (
        (ts["throttled_gpu_s"].to_numpy() == 0)
        & (ts["capped_gpu_s"].to_numpy() == 0)
        & (gpus == n_gpus)
        & np.isclose(gpu_w, dev["device_power_w"].to_numpy() * n_gpus, rtol=EXACT_RTOL, atol=0.0)
    )
    cum_fac, cum_it, cum_tok = np.cumsum(fac_j), np.cumsum(it_j), np.cumsum(tokens)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame = pd.DataFrame(
            {
                "time_s": ts["time_s"].to_numpy(),
                "duration_s": dur,
                "device_power_w": dev["device_power_w"].to_numpy(),
                "device_energy_j": dev["device_energy_j"].to_numpy(),
                "device_tokens": dev["device_tokens"].to_numpy(),
                "device_tokens_per_s": dev["device_tokens_per_s"].to_numpy(),
                "device_power_estimated": source.energy_source == "estimated",
                "device_power_measured": source.measured,
                "gpus": gpus,
                "tokens": tokens,
                "tokens_per_s": tokens / dur,
                "facility_power_w": ts["facility_power_w"].to_numpy(),
                "it_power_w": ts["it_power_w"].to_numpy(),
                "accelerators_power_w": gpu_w,
                "server_other_power_w": ts["server_other_power_w"].to_numpy(),
                "cooling_power_w": ts["cooling_power_w"].to_numpy(),
                "losses_power_w": ts["losses_power_w"].to_numpy(),
                "pue": ts["pue"].to_numpy(),
                "facility_energy_j": fac_j,
                "it_energy_j": it_j,
                "tokens_per_kwh": np.where(fac_j > 0, tokens / (fac_j / J_PER_KWH), np.nan),
                "j_per_token_facility": np.where(tokens > 0, fac_j / tokens, np.nan),
                "facility_energy_total_j": cum_fac,
                "it_energy_total_j": cum_it,
                "tokens_total": cum_tok,
                "tokens_per_kwh_total": np.where(cum_fac > 0, cum_tok / (cum_fac / J_PER_KWH), np.nan),
                "j_per_token_facility_total": np.where(cum_tok > 0, cum_fac / cum_tok, np.nan),
                "mirror_exact": exact,
            }
        )
    fac, it, tok = float(cum_fac[-1]), float(cum_it[-1]), float(cum_tok[-1])
    duration = float(dur.sum())
    dev_j = float(dev["device_energy_j"].sum())
    dev_tok = float(dev["device_tokens"].sum())
    kpis = {
        "duration_s": duration,
        "gpus": float(n_gpus),
        "device_energy_j": dev_j,
        "device_tokens": dev_tok,
        "device_mean_power_w": dev_j / duration,
        "device_tokens_per_s": dev_tok / duration,
        "tokens": tok,
        "tokens_per_s": tok / duration,
        "facility_energy_j": fac,
        "facility_energy_kwh": fac / J_PER_KWH,
        "it_energy_j": it,
        "pue": fac / it if it > 0 else math.nan,
        "tokens_per_kwh": tok / (fac / J_PER_KWH) if fac > 0 else math.nan,
        "j_per_token_facility": fac / tok if tok > 0 else math.nan,
        "j_per_token_it": it / tok if tok > 0 else math.nan,
        "mean_facility_power_w": fac / duration,
        "ledger_residual_j": float(result.kpis["ledger_residual_j"]),
        "intervals_not_exact": float(np.count_nonzero(~exact)),
    }
    acc = sc.fleet.accelerator_overrides.given()
    servers = f"{sc.fleet.n_servers} server{'s' if sc.fleet.n_servers != 1 else ''}"
    notes = [
        f"{n_gpus} GPUs ({servers} of {gps}) each draw the device's measured power "
        f"(accelerator range {acc['idle_power_w']:.4g}-{acc['max_power_w']:.4g} W); tokens are the "
        f"device's measured tokens x {n_gpus}",
    ]
    if not exact.all():
        notes.append(
            f"{int(np.count_nonzero(~exact))} interval(s) not an exact mirror: the simulation capped, "
            "throttled or lost GPUs there (see mirror_exact)"
        )
    return MirrorResult(frame=frame, kpis=kpis, source=source, result=result, scenario=sc, notes=notes)


#: Fields of a harness summary that :func:`reconcile` reads.
RECONCILE_FIELDS = ("tokens", "energy_j", "duration_s", "idle_s", "idle_power_w")


def reconcile(kpis: Mapping[str, float], summary: Mapping[str, Any], interval_s: float) -> str | None:
    """Why a mirror's device totals differ from the harness summary of the same run.

    The summary counts the load window only; the mirror counts whole ``interval_s`` intervals
    from the first sample, so it adds the idle baseline (no tokens) and leaves out what came
    after its last whole interval. None when the summary lacks a :data:`RECONCILE_FIELDS` field.

    >>> k = {"duration_s": 7.0, "device_tokens": 598.0, "device_energy_j": 28.57}
    >>> s = {"tokens": 608, "energy_j": 24.11, "duration_s": 5.09, "idle_s": 2.0, "idle_power_w": 2.54}
    >>> print(reconcile(k, s, 1.0))  # doctest: +NORMALIZE_WHITESPACE
    the harness summary counts its 5.09 s load window (608 tokens, 24.11 J); the mirror counts whole
    1 s intervals from the first sample (7 s: 598 tokens, 28.57 J): it adds the 2 s idle baseline
    (about 5.08 J at 2.54 W) and leaves out the 0.09 s after its last whole interval (10 tokens,
    about 0.62 J)
    """
    if any(summary.get(f) is None for f in RECONCILE_FIELDS):
        return None
    idle_s, idle_w = float(summary["idle_s"]), float(summary["idle_power_w"])
    idle_j = idle_s * idle_w if math.isfinite(idle_w) else 0.0
    tail_s = max(0.0, idle_s + float(summary["duration_s"]) - float(kpis["duration_s"]))
    tail_tok = float(summary["tokens"]) - float(kpis["device_tokens"])
    tail_j = float(summary["energy_j"]) + idle_j - float(kpis["device_energy_j"])
    return (
        f"the harness summary counts its {float(summary['duration_s']):.3g} s load window "
        f"({float(summary['tokens']):.0f} tokens, {float(summary['energy_j']):.4g} J); the mirror counts whole "
        f"{interval_s:g} s intervals from the first sample ({float(kpis['duration_s']):g} s: "
        f"{float(kpis['device_tokens']):.0f} tokens, {float(kpis['device_energy_j']):.4g} J): it adds the "
        f"{idle_s:g} s idle baseline (about {idle_j:.3g} J at {idle_w:.3g} W) and leaves out the {tail_s:.2g} s "
        f"after its last whole interval ({tail_tok:.0f} tokens, about {tail_j:.3g} J)"
    )


def mirror_frame(
    samples: pd.DataFrame,
    scenario: Scenario | str | Path = "default",
    *,
    overrides: Mapping[str, Any] | None = None,
    gpus: int | None = None,
    interval_s: float = 1.0,
    source: DeviceSource | None = None,
    workdir: Path | str | None = None,
) -> MirrorResult | None:
    """Mirror measured harness samples across a scenario's fleet and simulate the facility.

    Parameters
    ----------
    samples : pandas.DataFrame
        Harness rows (a finished run from :func:`~twin.harness.io.read_harness`, or the rows
        received so far from :func:`~twin.harness.follow.follow`).
    scenario : Scenario, str or Path
        The facility: a loaded scenario, a preset name or a YAML file.
    overrides : mapping, optional
        Dotted-path values applied when ``scenario`` is a name or path (``--set``).
    gpus : int, optional
        Resize the facility to this many GPUs (:func:`scale_fleet`); default: the scenario's fleet.
    interval_s : float
        Report interval and tick of the mirror. [s]
    source : DeviceSource, optional
        Where the device power came from (default ``unknown``: not known to be measured).
    workdir : Path or str, optional
        Folder for the replay CSV (a temporary folder by default).

    Returns
    -------
    MirrorResult or None
        None while no interval is complete. ``frame`` has one row per interval: ``time_s``
        (start), ``duration_s``; the measured device: ``device_power_w``, ``device_energy_j``,
        ``device_tokens``, ``device_tokens_per_s``, ``device_power_estimated``,
        ``device_power_measured``; the mirrored fleet: ``gpus``, ``tokens``, ``tokens_per_s``,
        ``facility_power_w``, ``it_power_w``, ``accelerators_power_w``,
        ``server_other_power_w``, ``cooling_power_w``, ``losses_power_w``, ``pue``,
        ``facility_energy_j``, ``it_energy_j``, ``tokens_per_kwh``, ``j_per_token_facility``;
        running totals ``facility_energy_total_j``, ``it_energy_total_j``, ``tokens_total``,
        ``tokens_per_kwh_total``, ``j_per_token_facility_total``; and ``mirror_exact``.

    Raises
    ------
    ScenarioError
        If the scenario (or ``gpus``) is invalid.
    TraceFormatError
        If the samples hold several devices or no energy and no power.
    """
    sc = _as_scenario(scenario, overrides)
    if gpus is not None:
        sc = scale_fleet(sc, gpus)
    intervals = device_intervals(samples, interval_s)
    if intervals.empty:
        return None
    src = source or DeviceSource()
    if workdir is not None:
        return _mirror_intervals(intervals, sc, src, Path(workdir))
    with tempfile.TemporaryDirectory(prefix="twin-mirror-") as tmp:
        return _mirror_intervals(intervals, sc, src, Path(tmp))


def _as_scenario(scenario: Scenario | str | Path, overrides: Mapping[str, Any] | None) -> Scenario:
    if isinstance(scenario, Scenario):
        if not overrides:
            return scenario
        from twin.scenario.schema import set_dotted

        data = scenario.model_dump(mode="python")
        for key, value in overrides.items():
            set_dotted(data, key, value)
        data["source_dir"] = scenario.source_dir
        return validate_mapping(data, f"{scenario.name} with overrides")
    from twin.scenario import load_scenario

    return load_scenario(scenario, dict(overrides or {}))


def mirror_file(
    path: Path | str,
    scenario: Scenario | str | Path = "default",
    **kwargs: Any,
) -> MirrorResult | None:
    """Mirror a harness file as it stands (finished or not); see :func:`mirror_frame`."""
    samples, summary = read_harness(path)
    result = mirror_frame(samples, scenario, source=device_source(path), **kwargs)
    if result is not None:
        result.finished = bool(summary)
    return result


def follow_mirror(
    path: Path | str,
    scenario: Scenario | str | Path = "default",
    *,
    overrides: Mapping[str, Any] | None = None,
    gpus: int | None = None,
    interval_s: float = 1.0,
    poll_s: float = 0.5,
    stop: Callable[[], bool] | None = None,
    wait_s: float | None = None,
) -> Iterator[MirrorResult]:
    """Mirror a running harness live: one :class:`MirrorResult` per poll that completed an interval.

    Follows ``path`` with :func:`twin.harness.follow.follow` (it need not exist yet) and, each
    time new samples complete one or more intervals, re-simulates the mirror from ``t = 0`` over
    every sample so far. Ends once the harness has written its summary and every row is read (the
    last result then has ``finished``), or when ``stop()`` returns True.

    Parameters
    ----------
    path : Path or str
        The harness ``--out`` file.
    scenario, overrides, gpus, interval_s
        As in :func:`mirror_frame`.
    poll_s : float
        Seconds between looks at the file.
    stop : callable, optional
        Checked at every poll.
    wait_s : float, optional
        Longest wait for the file to appear [s] (see :func:`twin.harness.follow.follow`).

    Yields
    ------
    MirrorResult
        The mirror of everything received so far; ``frame`` grows by the new intervals.
    """
    from twin.harness.follow import follow

    sc = _as_scenario(scenario, overrides)
    if gpus is not None:
        sc = scale_fleet(sc, gpus)
    parts: list[pd.DataFrame] = []
    done = summary_path(live_csv_path(path))
    shown = 0
    last: MirrorResult | None = None
    with tempfile.TemporaryDirectory(prefix="twin-mirror-") as tmp:
        for new in follow(path, poll_s=poll_s, stop=stop, wait_s=wait_s):
            parts.append(new)
            samples = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            parts = [samples]
            finished = done.exists()
            n = math.floor(float(samples["time_s"].iloc[-1] - samples["time_s"].iloc[0]) / interval_s + 1e-9)
            if n <= shown and not finished:
                continue
            result = mirror_frame(samples, sc, interval_s=interval_s, source=device_source(path), workdir=tmp)
            if result is None:
                continue
            result.finished = finished
            shown = len(result.frame)
            last = result
            yield result
    if last is not None and not last.finished and done.exists():
        last.finished = True  # the summary came after the last rows: nothing new to simulate
        yield last


__all__ = [
    "EXACT_RTOL",
    "MEASURED_SOURCES",
    "MIRROR_POOL",
    "RECONCILE_FIELDS",
    "DeviceSource",
    "MirrorResult",
    "device_intervals",
    "device_source",
    "follow_mirror",
    "mirror_file",
    "mirror_frame",
    "mirror_scenario",
    "reconcile",
    "scale_fleet",
]
