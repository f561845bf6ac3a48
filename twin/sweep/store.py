"""A sweep's folder on disk: one file per finished or failed point, and the summary built from them.

Layout of ``DIR``::

    points/<key>.parquet      a finished point: its time series; the key, swept values, KPIs,
                              resolved scenario and run facts in the Parquet key-value metadata
                              (key ``twin.sweep``), so one rename makes a point finished
    points/<key>.error.json   a point whose run failed: the error and the worker's traceback
    summary.parquet, .csv     one row per point of the spec: swept values, status, error, every KPI
    sweep.json                the spec's points (index, key, values) as last run
    .lock                     held (flock) by the run writing to DIR

Every file is written atomically (:func:`twin.results.atomic_write`: a temporary file, then
``os.replace``). Only the process holding the lock writes, so a point's file is written once; a
run killed at any moment leaves finished points intact and at most stale ``.*.tmp`` files, which
the next run removes.

A point file counts as finished only if its footer reads and the key it records is the key it is
named by (:func:`point_problem`): a truncated file, or another point's file copied over it, is
``invalid``; the next run says so, removes it and computes the point again. Undefined values are
null: in the time series, the KPIs and every JSON record (:func:`twin.results.to_json`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from twin.errors import TwinError
from twin.results import atomic_write, atomic_write_text, kpis_from_json, parquet_table, to_json, write_parquet

if TYPE_CHECKING:
    from twin.sweep.spec import Sweep

#: Key of the point record in a point file's Parquet key-value metadata.
META_KEY = b"twin.sweep"

#: Status of a point in the summary (``invalid``: a point file that is unreadable or another point's).
OK, FAILED, PENDING, INVALID = "ok", "failed", "pending", "invalid"


class PointFileError(TwinError):
    """A point file that cannot be read, or that holds another point's result; names the file."""


def point_path(out: Path, key: str) -> Path:
    """The finished point's Parquet file."""
    return Path(out) / "points" / f"{key}.parquet"


def error_path(out: Path, key: str) -> Path:
    """The failed point's error record."""
    return Path(out) / "points" / f"{key}.error.json"


def write_point(out: Path, key: str, timeseries: pd.DataFrame, record: dict[str, Any]) -> Path:
    """Write a finished point atomically, then drop any error record a former run left for it."""
    table = parquet_table(timeseries)  # undefined values as Parquet nulls
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = to_json(record, indent=None).encode()
    table = table.replace_schema_metadata(meta)
    path = atomic_write(point_path(out, key), lambda p: pq.write_table(table, p))
    error_path(out, key).unlink(missing_ok=True)
    return path


def write_error(out: Path, key: str, record: dict[str, Any]) -> Path:
    """Write a failed point's error record atomically."""
    return atomic_write_text(error_path(out, key), to_json(record))


def read_record(path: Path, key: str | None = None) -> dict[str, Any]:
    """The point record of a point file (reads only the Parquet footer); null KPIs come back as NaN.

    Raises
    ------
    PointFileError
        The file is unreadable (truncated, not Parquet), has no point record, or records another
        key than ``key`` (when given).
    """
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise PointFileError(f"{path}: unreadable sweep point file ({type(exc).__name__}: {exc})") from None
    if META_KEY not in meta:
        raise PointFileError(f"{path}: not a sweep point file (no {META_KEY.decode()} metadata)")
    try:
        record: dict[str, Any] = json.loads(meta[META_KEY])
        stored = record.get("key")
    except (ValueError, AttributeError) as exc:
        raise PointFileError(f"{path}: unreadable point record ({type(exc).__name__}: {exc})") from None
    if key is not None and stored != key:
        raise PointFileError(f"{path}: holds the result of point {stored}, not of point {key}")
    if isinstance(record.get("kpis"), dict):
        record["kpis"] = kpis_from_json(record["kpis"])
    return record


def point_problem(out: Path, key: str) -> str | None:
    """Why the point's file does not count as finished; ``None`` when it does or there is none."""
    path = point_path(out, key)
    if not path.exists():
        return None
    try:
        read_record(path, key)
    except PointFileError as exc:
        return str(exc)
    return None


def load_point(out: str | Path, key: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A finished point's time series and record (``kpis``, ``values``, ``scenario``, ``meta``, ...).

    Raises
    ------
    PointFileError
        The file is unreadable or holds another point's result (:func:`read_record`).
    """
    path = point_path(Path(out), key)
    record = read_record(path, key)
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise PointFileError(f"{path}: unreadable sweep point file ({type(exc).__name__}: {exc})") from None
    return table.to_pandas(), record


def status(out: Path, key: str) -> str:
    """``ok``, ``invalid``, ``failed`` or ``pending``: what is on disk for the point."""
    if point_path(out, key).exists():
        return INVALID if point_problem(out, key) is not None else OK
    if error_path(out, key).exists():
        return FAILED
    return PENDING


def build_summary(sweep: Sweep, out: Path) -> pd.DataFrame:
    """One row per point of ``sweep``, in spec order, from the files in ``out``.

    Columns: ``point`` (index), ``key``, the swept paths, ``status``, ``error``, every KPI (in the
    order the first finished point lists them), then ``wall_time_s``, ``worker``, ``run_id``.
    """
    rows: list[dict[str, Any]] = []
    kpi_names: dict[str, None] = {}
    fields = sweep.fields
    for p in sweep.points:
        row: dict[str, Any] = {"point": p.index, "key": p.key}
        row.update({f: p.values.get(f) for f in fields})
        run: dict[str, Any] = {}
        kind = status(out, p.key)
        row["status"], row["error"] = kind, ""
        if kind == OK:
            record = read_record(point_path(out, p.key), p.key)
            kpi_names.update(dict.fromkeys(record["kpis"]))
            row.update(record["kpis"])
            run = record
        elif kind == INVALID:
            row["error"] = point_problem(out, p.key) or ""
        elif kind == FAILED:
            try:
                record = json.loads(error_path(out, p.key).read_text())
                row["error"] = f"{record['error_type']}: {record['error']}"
                run = record
            except (OSError, ValueError, KeyError, TypeError) as exc:
                row["error"] = f"{error_path(out, p.key)}: unreadable error record ({type(exc).__name__}: {exc})"
        row["wall_time_s"] = run.get("wall_time_s", math.nan)
        row["worker"] = run.get("worker", "")
        row["run_id"] = run.get("run_id", "")
        rows.append(row)
    columns = ["point", "key", *fields, "status", "error", *kpi_names, "wall_time_s", "worker", "run_id"]
    frame = pd.DataFrame(rows, columns=columns)
    for f in fields:
        frame[f] = _column(frame[f])
    return frame


def write_summary(frame: pd.DataFrame, out: Path) -> list[Path]:
    """Write ``summary.parquet`` and ``summary.csv`` atomically."""
    return [
        atomic_write(out / "summary.parquet", lambda p: write_parquet(frame, p)),
        atomic_write(out / "summary.csv", lambda p: frame.to_csv(p, index=False)),
    ]


def read_summary(out: str | Path) -> pd.DataFrame:
    """The summary a sweep wrote to ``out``."""
    return pd.read_parquet(Path(out) / "summary.parquet")


def write_manifest(sweep: Sweep, out: Path) -> Path:
    """``sweep.json``: the spec's name, source and points (index, key, values)."""
    manifest = {
        "name": sweep.name,
        "spec": str(sweep.source),
        "base": str(sweep.base_path),
        "fields": sweep.fields,
        "points": [{"point": p.index, "key": p.key, "values": p.values} for p in sweep.points],
    }
    return atomic_write_text(out / "sweep.json", to_json(manifest))


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` while writing; a second sweep on the same folder is refused.

    The lock is an ``flock``: the kernel releases it when the holder dies, even by SIGKILL, so a
    killed run never blocks the next one. Holding it, stale temporary files of a killed run are
    removed.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "points").mkdir(exist_ok=True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TwinError(f"{out}: another sweep is writing to this folder (it holds {out / '.lock'})") from None
        for stale in [*out.glob(".*.tmp"), *(out / "points").glob(".*.tmp")]:
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)


def _column(values: pd.Series) -> pd.Series:
    """A swept-value column Parquet can hold: scalars of one kind as they are, anything else as JSON."""
    kinds = {_kind(v) for v in values if v is not None}
    if len(kinds) <= 1 and kinds <= {"number", "str", "bool", "time"}:
        return values
    return values.map(lambda v: None if v is None else json.dumps(v, default=_json_default))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    if hasattr(value, "isoformat"):
        return "time"
    return "other"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)
