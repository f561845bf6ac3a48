"""The result of a run: KPIs and time series, with a Parquet/JSON round trip.

An output folder always holds one whole run. :meth:`Result.save` writes every file into a
temporary sibling folder, then swaps it in (the old folder renamed aside, the new one renamed in,
the old one removed), so a crash never leaves a new time series beside an old summary and never
loses a finished run. Single files are written atomically too (:func:`atomic_write`).

Undefined values are null, never a made-up number: a ratio with nothing to divide by (PUE with no
IT load, energy per token with no tokens) is NaN in memory, null in Parquet and in JSON (``NaN``
is not JSON: :func:`to_json` refuses it), and ``n/a`` where it is shown (:func:`fmt_value`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from twin.errors import InvalidInputError
from twin.kpis import POOL_KPIS, describe
from twin.ledger import IT_CATEGORIES, LOSS_CATEGORIES
from twin.units import J_PER_KWH, S_PER_HOUR

#: The files of one run's output folder (:meth:`Result.save`); ``report.png`` when asked for.
OUTPUT_FILES = (
    "summary.json", "timeseries.parquet", "ledger.parquet", "scenario.json", "events.csv", "jobs.csv",
    "latency.csv", "histogram.csv", "report.png",
)  # fmt: skip

#: How an undefined value is shown (CLI tables, report titles, dashboard cards).
MISSING = "n/a"


class OutputDirError(InvalidInputError):
    """The output location cannot take a run: a file, or a folder holding files that are not a run's."""


@dataclass
class Result:
    """What one simulation produced.

    Attributes
    ----------
    kpis : dict
        Scalar key figures, each declared with its unit and meaning in :data:`twin.kpis.REGISTRY`
        (most units are also in the key names: ``_j``, ``_kwh``, ``_w``, ``_c``, ``_h``, ``_kg``).
        Per-pool ones are ``<pool>_<column>``; :meth:`pool_frame` tables them.
    timeseries : pandas.DataFrame
        One row per report interval; mean powers ``_w``, token counts, temperatures ``_c``.
    ledger : pandas.DataFrame
        Energy per category and interval (``_j``), the metered input and the residual.
    scenario : dict
        The validated scenario that produced the result (JSON-able).
    seed : int
        The scenario seed; ``rng_state`` is the generator's state after the run.
    meta : dict
        Run facts: twin version, wall time, device counts.
    events : pandas.DataFrame
        Discrete events in time order: ``time_s``, ``event`` and a ``detail`` string (faults,
        repairs, power-source changes, load shed, rollbacks, thermal shutdowns, control windows).
    jobs : pandas.DataFrame or None
        One row per job of the pools whose job trace a scheduler queues (``None`` without one):
        ``pool``, ``job_id``, ``submit_s``, ``start_s``, ``end_s``, ``wait_s`` [s], ``gpus``,
        ``gpu_s_run`` (GPU-seconds within the run) and ``tokens_trained`` (the pool's training
        tokens shared out by GPU-seconds run). Times are from the run's start.
    """

    kpis: dict[str, float]
    timeseries: pd.DataFrame
    ledger: pd.DataFrame
    scenario: dict[str, Any]
    seed: int
    rng_state: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    events: pd.DataFrame = field(default_factory=lambda: events_frame([]))
    jobs: pd.DataFrame | None = None
    latency: pd.DataFrame | None = None
    latency_histogram: pd.DataFrame | None = None

    @property
    def pool_names(self) -> list[str]:
        """The pools (workloads), in scenario order."""
        return [str(w["name"]) for w in self.scenario.get("workloads", [])]

    @property
    def inlet_medium(self) -> str:
        """What ``inlet_temp_max_c`` measures: ``coolant`` (cold plates: liquid or hybrid) or ``air``."""
        return "air" if self.scenario.get("cooling", {}).get("type") == "air" else "coolant"

    def clock_time(self) -> pd.Series:
        """Each report interval's start as clock time: the scenario's ``start`` plus ``time_s`` (naive)."""
        return pd.Timestamp(self.scenario["start"]) + pd.to_timedelta(self.timeseries["time_s"], unit="s")

    def pool_frame(self) -> pd.DataFrame:
        """The per-pool KPIs as a tidy table: one row per pool, one column per per-pool KPI.

        Columns are ``pool``, ``kind`` (the workload kind), then every per-pool KPI of
        :data:`twin.kpis.POOL_KPIS` by its column name (``ttft_p99_s`` for ``<pool>_ttft_p99_s``),
        NaN where it does not apply to the pool (latency of a training pool). ``attrs["units"]``
        maps each KPI column to its unit.
        """
        kinds = [str(w.get("kind", "")) for w in self.scenario.get("workloads", [])]
        rows = [
            {"pool": pool, "kind": kind, **{c: self.kpis.get(k.key_for(pool), math.nan) for c, k in POOL_KPIS.items()}}
            for pool, kind in zip(self.pool_names, kinds, strict=True)
        ]
        frame = pd.DataFrame(rows, columns=["pool", "kind", *POOL_KPIS]).astype(dict.fromkeys(POOL_KPIS, "float64"))
        frame.attrs["units"] = {c: k.unit for c, k in POOL_KPIS.items()}
        return frame

    def summary(self) -> dict[str, Any]:
        """KPIs plus the run facts, as written to ``summary.json``.

        ``kpis`` lists the values in registry order (:data:`twin.kpis.REGISTRY`), ``units`` the
        unit of each. Raises :class:`twin.kpis.UnregisteredKpiError` for an undeclared KPI.
        """
        declared = describe(self.kpis, self.pool_names)
        return {
            "kpis": {key: self.kpis[key] for key in declared},
            "units": {key: kpi.unit for key, kpi in declared.items()},
            "scenario_name": self.scenario.get("name"),
            "seed": self.seed,
            "meta": self.meta,
        }

    def save(self, out_dir: str | Path, *, report: Callable[[Result, Path], object] | None = None) -> list[Path]:
        """Write the run's folder as one whole: all files or, on any failure, none of them.

        Parameters
        ----------
        out_dir : str or Path
            The folder: new, empty, or holding a former run (which is replaced). It must not be a
            file nor a folder holding other files (:func:`check_output_dir`).
        report : callable, optional
            ``report(result, path)`` renders ``report.png`` into the same folder before the swap
            (:func:`twin.report.write_report`; passed in, as the report layer sits above this one).

        Returns
        -------
        list of Path
            The files written: ``summary.json``, ``timeseries.parquet``, ``ledger.parquet``,
            ``scenario.json``, ``events.csv``, ``jobs.csv`` when a scheduler queued jobs,
            ``latency.csv`` and ``histogram.csv`` with a request-level replay, and ``report.png``
            when asked for.

        Raises
        ------
        OutputDirError
            ``out_dir`` is a file or a folder with other files (checked again just before the swap;
            the finished run is then kept in a temporary folder the error names).
        """
        out = _real(out_dir)
        check_output_dir(out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}-", suffix=".new", dir=out.parent))
        try:
            summary = {**self.summary(), "written_at": _now(), "rng_state": self.rng_state}
            write_parquet(self.timeseries, new / "timeseries.parquet")
            write_parquet(self.ledger, new / "ledger.parquet")
            (new / "scenario.json").write_text(to_json(self.scenario))
            self.events.to_csv(new / "events.csv", index=False)
            tables = {"jobs.csv": self.jobs, "latency.csv": self.latency, "histogram.csv": self.latency_histogram}
            for name, frame in tables.items():
                if frame is not None:
                    frame.to_csv(new / name, index=False)
            (new / "summary.json").write_text(to_json(summary))
            if report is not None:
                report(self, new / "report.png")
            new.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a results folder is not
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        names = [n for n in OUTPUT_FILES if (new / n).exists()]
        swap_in(new, out)
        return [out / n for n in names]

    @classmethod
    def load(cls, out_dir: str | Path) -> Result:
        """Read a result written by :meth:`save` (null KPIs come back as NaN)."""
        out = Path(out_dir)
        summary = json.loads((out / "summary.json").read_text())
        events = pd.read_csv(out / "events.csv", dtype={"detail": str}) if (out / "events.csv").exists() else None
        jobs_csv = out / "jobs.csv"
        jobs = pd.read_csv(jobs_csv, dtype={"pool": str, "job_id": str}) if jobs_csv.exists() else None
        latency, histogram = (
            pd.read_csv(out / n, dtype={"pool": str, "metric": str}) if (out / n).exists() else None
            for n in ("latency.csv", "histogram.csv")
        )
        return cls(
            kpis=kpis_from_json(summary["kpis"]),
            timeseries=pd.read_parquet(out / "timeseries.parquet"),
            ledger=pd.read_parquet(out / "ledger.parquet"),
            scenario=json.loads((out / "scenario.json").read_text()),
            seed=summary["seed"],
            rng_state=summary.get("rng_state", {}),
            meta=summary.get("meta", {}),
            events=events_frame([]) if events is None else events.fillna({"detail": ""}),
            jobs=jobs,
            latency=latency,
            latency_histogram=histogram,
        )


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The event log as a table: ``time_s``, ``event``, ``detail`` (``key=value`` pairs)."""

    def fmt(v: Any) -> str:
        return fmt_value(v, "{:.6g}") if isinstance(v, float) else str(v)

    rows = [
        {
            "time_s": float(e["time_s"]),
            "event": str(e["event"]),
            "detail": " ".join(f"{k}={fmt(v)}" for k, v in e.items() if k not in ("time_s", "event")),
        }
        for e in events
    ]
    return pd.DataFrame(rows, columns=["time_s", "event", "detail"]).astype(
        {"time_s": "float64", "event": "object", "detail": "object"}
    )


def compute_kpis(
    timeseries: pd.DataFrame, ledger: pd.DataFrame, pool_names: list[str], site: dict[str, Any], n_gpus: int
) -> dict[str, float]:
    """Key figures from the per-interval ledger and time series.

    A figure with nothing to measure is NaN (null in ``summary.json``), never 0 or an infinity:
    ratios over no energy, no tokens or no time; temperatures with no device up. ``pue`` (metered
    input over IT energy) is also NaN when the UPS battery delivered more over the run than it
    took back: the meter then missed part of what the facility drew and the ratio reads low,
    even below 1.
    """
    booked_cols = [c for c in ledger.columns if c.endswith("_j") and c not in ("metered_j", "residual_j")]
    e = {c[:-2]: float(ledger[c].sum()) for c in booked_cols}
    facility_j = float(ledger["metered_j"].sum())
    it_j = sum(e.get(c, 0.0) for c in IT_CATEGORIES)
    cooling_j = sum(v for k, v in e.items() if k.startswith("cooling"))
    losses_j = sum(e.get(c, 0.0) for c in LOSS_CATEGORIES)
    ts = timeseries
    tokens_out = float(ts["tokens_out"].sum())
    duration_s = float(ts["duration_s"].sum())
    k: dict[str, float] = {
        "duration_s": duration_s,
        "n_gpus": float(n_gpus),
        "facility_energy_j": facility_j,
        "facility_energy_kwh": facility_j / J_PER_KWH,
        "it_energy_j": it_j,
        "it_energy_kwh": it_j / J_PER_KWH,
        "cooling_energy_j": cooling_j,
        "conversion_loss_energy_j": losses_j,
    }
    k.update({f"energy_{name}_j": v for name, v in e.items()})
    k.update(
        {
            "tokens_out": tokens_out,
            "tokens_generated": float(ts["tokens_generated"].sum()),
            "tokens_prefill": float(ts["tokens_prefill"].sum()),
            "tokens_training": float(ts["tokens_training"].sum()),
            "tokens_per_kwh": tokens_out / (facility_j / J_PER_KWH) if facility_j > 0 else math.nan,
            "tokens_per_kwh_it": tokens_out / (it_j / J_PER_KWH) if it_j > 0 else math.nan,
            "j_per_token_facility": facility_j / tokens_out if tokens_out > 0 else float("nan"),
            "j_per_token_it": it_j / tokens_out if tokens_out > 0 else float("nan"),
            "pue": facility_j / it_j if it_j > 0 and facility_j > 0 and e.get("battery_net", 0.0) >= 0 else math.nan,
            "mean_facility_power_w": facility_j / duration_s if duration_s > 0 else math.nan,
            "peak_facility_power_w": _finite_max(ts["facility_peak_power_w"]),
            "mean_it_power_w": it_j / duration_s if duration_s > 0 else math.nan,
            "max_die_temp_c": _finite_max(ts["die_temp_max_c"]),
            "max_inlet_temp_c": _finite_max(ts["inlet_temp_max_c"]),
            "water_l": float(ts["water_l"].sum()),
            "wue_l_per_kwh": float(ts["water_l"].sum()) / (it_j / J_PER_KWH) if it_j > 0 else math.nan,
            "free_cooling_h": float((ts["free_cooling_fraction"] * ts["duration_s"]).sum()) / S_PER_HOUR,
            "unmet_heat_j": float((ts["unmet_heat_w"] * ts["duration_s"]).sum()),
            "min_servers_up": float(ts["servers_up"].min()) if len(ts) else math.nan,
            "throttled_gpu_h": float(ts["throttled_gpu_s"].sum()) / S_PER_HOUR,
            "capped_gpu_h": float(ts["capped_gpu_s"].sum()) / S_PER_HOUR,
            "ledger_residual_j": float(ledger["residual_j"].sum()),
            "ledger_max_abs_residual_j": float(ledger["residual_j"].abs().max()),
            "carbon_kg": facility_j / J_PER_KWH * site["carbon_intensity_g_per_kwh"] / 1000.0,
            "energy_cost": facility_j / J_PER_KWH * site["electricity_price_per_kwh"],
        }
    )
    for name in pool_names:  # run totals of the time series' per-pool columns
        for column in ("tokens_generated", "tokens_prefill", "tokens_training", "requests"):
            k[POOL_KPIS[column].key_for(name)] = float(ts[f"{name}_{column}"].sum())
        backlog = ts[f"{name}_backlog_tokens"]
        k[POOL_KPIS["backlog_tokens_end"].key_for(name)] = float(backlog.iloc[-1]) if len(ts) else math.nan
    return k


def _finite_max(column: pd.Series) -> float:
    """The largest finite value; NaN when there is none (no GPU up, no row)."""
    x = column.to_numpy(dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.max()) if x.size else math.nan


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o666 & ~_umask())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


# ----------------------------------------------------------------------------- undefined values


def json_safe(obj: Any) -> Any:
    """``obj`` with NumPy scalars and arrays as Python values and every NaN or infinity as ``None``."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):  # NumPy scalars (bool, int, float, str) as their Python values
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON: undefined numbers (NaN, infinities) are ``null``, never the invalid ``NaN``."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False, default=_json_default)


def kpis_from_json(kpis: dict[str, Any]) -> dict[str, float]:
    """KPIs read from JSON: ``null`` (undefined) back to NaN, so every value is a float."""
    return {k: math.nan if v is None else v for k, v in kpis.items()}


def is_undefined(value: Any) -> bool:
    """``None``, NaN or an infinity: a value with nothing to show."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt_value(value: Any, fmt: str, missing: str = MISSING) -> str:
    """``fmt.format(value)``, or ``missing`` (``n/a``) when the value is undefined."""
    return missing if is_undefined(value) else fmt.format(value)


def null_undefined(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every infinity in its float columns replaced by NaN (written as null)."""
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    bad = [c for c in floats if np.isinf(frame[c].to_numpy()).any()]
    if not bad:
        return frame
    return frame.assign(**{c: frame[c].where(np.isfinite(frame[c])) for c in bad})


def parquet_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table in which every undefined float (NaN, infinity) is a real null."""
    return pa.Table.from_pandas(null_undefined(frame), preserve_index=False)  # from pandas: NaN -> null


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` with undefined floats as Parquet nulls (:func:`parquet_table`)."""
    pq.write_table(parquet_table(frame), path)
    return path


# ----------------------------------------------------------------------------- the output folder


@dataclass(frozen=True)
class PreviousRun:
    """The run an output folder holds, which a save into it replaces.

    Attributes
    ----------
    path : Path
        The folder.
    scenario_name : str or None
        The scenario of the run (``None`` when ``summary.json`` is missing or unreadable).
    written_at : str or None
        When it was written (``summary.json``'s ``written_at``, or its modification time).
    """

    path: Path
    scenario_name: str | None
    written_at: str | None

    def describe(self) -> str:
        """``replacing the run in out/ (scenario NAME, written TIME)``."""
        if self.written_at is None:
            return f"replacing the incomplete run in {self.path}/ (it has no readable summary.json)"
        scenario = "" if self.scenario_name is None else f"scenario {self.scenario_name}, "
        return f"replacing the run in {self.path}/ ({scenario}written {self.written_at})"


def check_output_dir(out_dir: str | Path) -> PreviousRun | None:
    """Check that a run can be saved to ``out_dir``, before it is simulated.

    Returns
    -------
    PreviousRun or None
        The run the folder holds (a save replaces it), or ``None`` when it is new or empty.

    Raises
    ------
    OutputDirError
        ``out_dir`` or a folder above it is a file; it is a folder holding anything but a run's
        files (it is never wiped); it is the current folder or above it; or the folder it would be
        made in is not writable.

    Notes
    -----
    A save killed between its two renames (:func:`swap_in`) left the former run renamed aside: it
    is renamed back first, and temporary folders of saves that died are removed.
    """
    _tidy_siblings(_real(out_dir))
    return _check(Path(out_dir))


def _check(shown: Path) -> PreviousRun | None:
    out = _real(shown)
    here = Path(os.path.realpath(os.curdir))
    if out == Path(out.anchor) or here.is_relative_to(out):
        raise OutputDirError(f"{shown}: cannot write a run over the current folder or one above it; name a subfolder")
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{shown} is a file, not a folder: give --out a folder (new, empty or a former run's)")
    if not out.exists():
        ancestor = out.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise OutputDirError(f"{shown}: cannot make the folder, {ancestor} is a file")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputDirError(f"{shown}: cannot make the folder, {ancestor} is not writable")
        return None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputDirError(f"{shown}: cannot replace it, its parent folder {out.parent} is not writable")
    entries = sorted(p.name for p in out.iterdir())
    other = [n for n in entries if n not in OUTPUT_FILES and not _stale_tmp(n)]
    if other:
        listed = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise OutputDirError(
            f"{shown} is a folder that holds files that are not a twin run's ({listed}): refusing to replace it; "
            "give --out a new or empty folder, or a former run's"
        )
    if not any(n in OUTPUT_FILES for n in entries):
        return None
    return _previous_run(shown, out)


def _previous_run(shown: Path, out: Path) -> PreviousRun:
    path = out / "summary.json"
    try:
        summary = json.loads(path.read_text())
        name = summary.get("scenario_name")
        when = summary.get("written_at")
        if when is None:
            when = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        return PreviousRun(shown, None if name is None else str(name), str(when))
    except (OSError, ValueError, AttributeError):
        return PreviousRun(shown, None, None)


def swap_in(new: Path, out: Path) -> None:
    """Make the complete folder ``new`` the folder ``out``; any former ``out`` is removed after.

    The former folder is renamed aside, ``new`` renamed in, then the former one removed: ``out``
    never holds parts of two runs. If this process dies between the two renames, ``out`` is
    missing for a moment and the next save restores the former run (:func:`_tidy_siblings`).
    """
    try:
        _check(out)  # again: the folder may have changed while the run was simulated
    except OutputDirError as exc:
        raise OutputDirError(f"{exc} (the finished run is kept in {new})") from None
    if not out.exists():
        new.rename(out)
        return
    old = out.parent / f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.old"
    out.rename(old)
    try:
        new.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _tidy_siblings(out: Path) -> None:
    """Clear what saves that died left beside ``out``; restore a run they had renamed aside."""
    if not out.parent.is_dir():
        return
    for path in sorted(out.parent.iterdir(), key=_mtime, reverse=True):
        kind = _sibling_kind(path.name, out.name)
        if kind is None or _alive(kind[1]):
            continue
        if kind[0] == "old" and not out.exists():
            path.rename(out)  # the newest run renamed aside by a save killed before it renamed the new one in
        else:
            shutil.rmtree(path, ignore_errors=True)


def _sibling_kind(name: str, out_name: str) -> tuple[str, int] | None:
    """``("new" | "old", pid)`` for a save's temporary folder beside ``out_name``, else ``None``."""
    prefix = f".{out_name}."
    for kind in ("new", "old"):
        if name.startswith(prefix) and name.endswith(f".{kind}"):
            pid = name[len(prefix) : -len(kind) - 1].split("-", 1)[0]
            return (kind, int(pid)) if pid.isdigit() else None
    return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mtime(path: Path) -> float:
    with contextlib.suppress(OSError):
        return path.stat().st_mtime
    return 0.0


def _stale_tmp(name: str) -> bool:
    """A temporary file :func:`atomic_write` left behind when killed (``.NAME.XXXX.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def _real(out_dir: str | Path) -> Path:
    """The absolute, symlink-free path: a save replaces the folder a link points to, not the link."""
    return Path(os.path.realpath(out_dir))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
