"""Files the harness writes and reads: the live telemetry CSV, the summary JSON, atomic writes.

File layout of one run with ``--out run.csv`` (or ``run.parquet``):

- ``run.csv``: one row per sample in :data:`HARNESS_COLUMNS` (the twin's telemetry schema plus
  ``tokens`` and ``phase``), appended and flushed row by row while the run goes, so that
  :func:`twin.harness.follow.follow` can tail it.
- ``run.parquet``: the same rows, written once at the end (only when ``--out`` ends in
  ``.parquet``).
- ``run.meta.json``: what is known before the first sample (device, energy source and its
  note, batch, sampling rate), written atomically before the CSV is created, so that a follower
  can label the power it reads (measured or estimated) while the run goes.
- ``run.summary.json``: the run summary, written once at the end. Its presence marks the run as
  finished.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from twin.errors import TraceFormatError
from twin.results import json_safe
from twin.workload._parse import MAX_COUNT, MISSING_TEXTS, Source, read_csv, record_lines
from twin.workload.schema import HARNESS_EXTRA_COLUMNS, TELEMETRY_COLUMNS
from twin.workload.telemetry import PLAUSIBLE_RANGES

#: Column order of every harness telemetry file.
HARNESS_COLUMNS: tuple[str, ...] = TELEMETRY_COLUMNS + HARNESS_EXTRA_COLUMNS
#: Phases a harness row can carry.
PHASES: tuple[str, ...] = ("idle", "prefill", "decode")

_INT_COLUMNS = ("gpu_index",)
_STR_COLUMNS = ("phase",)
FLOAT_COLUMNS: tuple[str, ...] = tuple(c for c in HARNESS_COLUMNS if c not in _INT_COLUMNS + _STR_COLUMNS)


def summary_path(out: Path | str) -> Path:
    """Return the summary path of a run written to ``out`` (``run.csv`` -> ``run.summary.json``)."""
    out = Path(out)
    return out.with_name(out.stem + ".summary.json")


def meta_path(out: Path | str) -> Path:
    """Return the metadata path of a run written to ``out`` (``run.csv`` -> ``run.meta.json``)."""
    out = Path(out)
    return out.with_name(out.stem + ".meta.json")


def live_csv_path(out: Path | str) -> Path:
    """Return the CSV a run appends to while it goes (``out`` itself unless it is Parquet)."""
    out = Path(out)
    return out.with_suffix(".csv") if out.suffix == ".parquet" else out


@contextmanager
def _atomic_handle(path: Path, mode: str) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with _atomic_handle(Path(path), "w") as fh:
        fh.write(text)


def atomic_write_frame(path: Path | str, frame: pd.DataFrame) -> None:
    """Write ``frame`` as Parquet (``.parquet``) or CSV (anything else), atomically."""
    path = Path(path)
    if path.suffix == ".parquet":
        with _atomic_handle(path, "wb") as fh:
            frame.to_parquet(fh, index=False)
    else:
        with _atomic_handle(path, "w") as fh:
            frame.to_csv(fh, index=False)


def write_json(path: Path | str, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically; non-finite floats become ``null``."""
    atomic_write_text(path, json.dumps(json_safe(data), indent=2, sort_keys=True) + "\n")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


class LiveCsvWriter:
    """Append harness rows to a CSV, one flushed line per row, so a follower can tail it.

    Parameters
    ----------
    path : Path
        File to create (replaced if it exists).
    columns : tuple of str
        Column order; every row must have exactly these keys.
    """

    def __init__(self, path: Path | str, columns: tuple[str, ...] = HARNESS_COLUMNS) -> None:
        self.path = Path(path)
        self.columns = columns
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", newline="")
        self._lock = threading.Lock()
        self.rows: list[dict[str, Any]] = []
        self._write_line(",".join(columns))

    def _write_line(self, line: str) -> None:
        self._fh.write(line + "\n")
        self._fh.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (keys = ``columns``) and flush it to the file."""
        missing = set(self.columns) - set(row)
        if missing:
            raise ValueError(f"row lacks columns {sorted(missing)}")
        with self._lock:
            self.rows.append(dict(row))
            self._write_line(",".join(_format(row[c]) for c in self.columns))

    def frame(self) -> pd.DataFrame:
        """Every row written so far, as a frame with the schema's dtypes."""
        with self._lock:
            rows = list(self.rows)
        return coerce_frame(pd.DataFrame(rows, columns=list(self.columns)))

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


def coerce_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast harness columns to the schema's dtypes (float64, int64 ``gpu_index``, str ``phase``)."""
    out = frame.copy()
    for col in FLOAT_COLUMNS:
        out[col] = pd.to_numeric(out[col], errors="raise").astype("float64")
    out["gpu_index"] = out["gpu_index"].astype("int64")
    out["phase"] = out["phase"].astype(str)
    return out


def read_harness(path: Path | str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a harness telemetry file (CSV or Parquet) and its summary.

    Parameters
    ----------
    path : Path or str
        The ``--out`` file of a run.

    Returns
    -------
    data : pandas.DataFrame
        Rows in :data:`HARNESS_COLUMNS` with the schema's dtypes.
    summary : dict
        The run summary (empty if the run has not finished: no summary file).

    Raises
    ------
    TraceFormatError
        If the file is empty, not UTF-8 text (CSV) or not Parquet, lacks a schema column, or
        holds a value that is not a number or is outside its physical range
        (:data:`twin.workload.telemetry.PLAUSIBLE_RANGES`; CSV errors name the line and the
        column); or if the summary is not a JSON object.
    """
    path = Path(path)
    if not path.exists():
        raise TraceFormatError(str(path), "no such file")
    if path.is_dir():
        raise TraceFormatError(str(path), "expected a harness file, got a directory")
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise TraceFormatError(str(path), f"not a readable Parquet file: {exc}") from exc
        _require_columns(path, frame)
        frame = parse_rows(path, frame[list(HARNESS_COLUMNS)], lambda i: None)  # the CSV's checks, no lines
    else:
        frame = _read_checked_csv(path)
    return frame, read_summary(path)


def _require_columns(path: Path, frame: pd.DataFrame) -> None:
    missing = [c for c in HARNESS_COLUMNS if c not in frame.columns]
    if missing:
        raise TraceFormatError(str(path), f"not a harness file: lacks columns {', '.join(missing)}", line=1)


def _read_checked_csv(path: Path) -> pd.DataFrame:
    """Read a harness CSV; errors name the file, the line and the column."""
    raw = read_csv(Source(path), dtype="str")
    _require_columns(path, raw)
    return parse_rows(path, raw, lambda i: record_lines(path, [i]).get(i))


def parse_rows(path: Path | str, raw: pd.DataFrame, line_of: Callable[[int], int | None]) -> pd.DataFrame:
    """Turn text cells of harness rows into the schema's dtypes, checking every value.

    Parameters
    ----------
    path : Path or str
        The file, for messages.
    raw : pandas.DataFrame
        The :data:`HARNESS_COLUMNS` as text or numbers (empty cells NaN).
    line_of : callable
        1-based line of the row at a 0-based position (called only on an error).

    Returns
    -------
    pandas.DataFrame
        The rows, as :func:`coerce_frame` gives them.

    Raises
    ------
    TraceFormatError
        At the first cell that is not a number (empty and ``nan`` mean "not measured" in the
        measurement columns), a ``gpu_index`` that is not a whole number in 0..2**31-1, or a
        measurement outside :data:`twin.workload.telemetry.PLAUSIBLE_RANGES`.
    """
    out: dict[str, Any] = {}
    for col in HARNESS_COLUMNS:
        cells = raw[col]
        if col in _STR_COLUMNS:
            out[col] = cells.fillna("").astype(str).str.strip()
            continue
        text = cells.astype("str").str.strip()
        missing = (cells.isna() | text.isin(MISSING_TEXTS)).to_numpy(dtype=bool)
        num = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if col == "gpu_index":
                what = f"a GPU index 0..{MAX_COUNT}"
                bad = missing | ~np.isfinite(num) | (num < 0) | (num != np.floor(num)) | (num > MAX_COUNT)
            else:
                lo, hi, span = PLAUSIBLE_RANGES.get(col, (-np.inf, np.inf, ""))
                what = f"a number in {span}" if span else "a finite number"
                bad = ~missing & (~np.isfinite(num) | (num < lo) | (num > hi * (1 + 1e-9)))
        if bad.any():
            i = int(np.argmax(bad))
            got = "an empty value" if missing[i] else repr(str(cells.iloc[i]))
            raise TraceFormatError(str(path), f"expected {what}, got {got}", line=line_of(i), field=col)
        out[col] = num.astype(np.int64) if col == "gpu_index" else num
    return coerce_frame(pd.DataFrame(out, index=raw.index))


def read_summary(path: Path | str) -> dict[str, Any]:
    """Return the summary of the run written to ``path`` (empty when it has none yet).

    Raises
    ------
    TraceFormatError
        The summary is not UTF-8 JSON holding an object (names its line where JSON says).
    """
    spath = summary_path(path)
    if not spath.exists():
        return {}
    try:
        summary = json.loads(spath.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TraceFormatError(str(spath), f"not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TraceFormatError(str(spath), f"expected a JSON object, got invalid JSON ({exc.msg})", exc.lineno) from exc
    except (OSError, RecursionError) as exc:
        raise TraceFormatError(str(spath), f"cannot read the summary: {exc}") from exc
    if not isinstance(summary, dict):
        raise TraceFormatError(str(spath), f"expected a JSON object, got {type(summary).__name__}", 1)
    return summary


__all__ = [
    "FLOAT_COLUMNS",
    "HARNESS_COLUMNS",
    "PHASES",
    "LiveCsvWriter",
    "atomic_write_frame",
    "atomic_write_text",
    "coerce_frame",
    "live_csv_path",
    "meta_path",
    "parse_rows",
    "read_harness",
    "read_summary",
    "summary_path",
    "write_json",
]
