"""Shared machinery of the trace readers: reading, vectorised field checks, located errors.

The standard frames the readers build from the parsed fields are in :mod:`twin.workload._frames`.

Every field is parsed for the whole column at once with pandas. Only when a bad value is found
is the file scanned a second time (with :mod:`csv`, or line by line for JSON lines) to turn the
row's position into its 1-based line number, so good files never pay for a Python loop over rows.

Positions are the 0-based record numbers pandas gives the data rows in file order; blank lines
are skipped, as pandas skips them, and the header is record ``-1``.

Bounds every reader applies, whatever the format (hostile or corrupt files end in a
:class:`~twin.errors.TraceFormatError`, never in a wrapped cast or an infinite time):

- integer fields (GPU indices, GPU counts) are whole numbers in ``0 ..`` :data:`MAX_COUNT`;
  a reader may pass a tighter ``maximum`` (token counts: ``MAX_TOKENS_PER_REQUEST`` of
  :mod:`twin.workload.requests`);
- numbers are finite after unit conversion (``1e305 MHz`` is an error, not ``inf`` Hz);
- times are within :data:`MAX_ABS_TIME_S` of 0 after unit conversion;
- files must be UTF-8 text; the error names the line of the first byte that is not.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from twin._types import FloatArray, IntArray
from twin.errors import TraceFormatError

PathLike = str | Path

#: Cell texts that mean "no value" in telemetry; any text in square brackets (nvidia-smi's
#: ``[N/A]``, ``[Not Supported]``, ``[Unknown Error]``) means the same.
MISSING_TEXTS: frozenset[str] = frozenset({"", "N/A", "NA", "n/a", "nan", "NaN", "None", "null"})

#: Largest value of an integer field (GPU index, GPU count, scaled count): the int32 range, so
#: that every count fits the integer types used downstream and no cast can wrap.
MAX_COUNT: int = 2**31 - 1
#: Largest magnitude of a time or duration [s] after unit conversion, about 31,700 years. Epoch
#: seconds (1.7e9 s), and epoch milliseconds or nanoseconds read with their unit, fit with room;
#: a larger value is a corrupt cell or a wrong unit (epoch ms read as seconds is 1.7e12 s). The
#: bound also keeps differences of two times finite and float64 times exact to about 0.1 ms.
MAX_ABS_TIME_S: float = 1e12

_NUMBER_UNIT = re.compile(r"^(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>\S.*)?$")
_BRACKETED = r"^\[.*\]$"
_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"
#: Formats tried, in order, for timestamps that ISO 8601 parsing rejects.
_FALLBACK_TIME_FORMATS: tuple[str, ...] = (
    "%Y/%m/%d %H:%M:%S.%f",
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %H:%M:%S.%f",
    "%m/%d/%Y %H:%M:%S",
)


# --------------------------------------------------------------------------- locating errors


def _is_blank(row: Sequence[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def record_lines(
    path: PathLike, positions: Iterable[int], *, jsonl: bool = False, header: bool = True
) -> dict[int, int]:
    """Map record positions to 1-based line numbers in the file.

    Parameters
    ----------
    path : str or Path
        The trace file.
    positions : iterable of int
        0-based data-record positions in file order (as pandas numbers rows); ``-1`` is the
        header.
    jsonl : bool
        The file is JSON lines (one record per non-blank line, no header).
    header : bool
        The first non-blank CSV record is a header.

    Returns
    -------
    dict of int to int
        Line of the first line of each requested record (records not found are left out).
    """
    wanted = set(positions)
    found: dict[int, int] = {}
    if not wanted:
        return found
    last = max(wanted)
    record = -1 if (header and not jsonl) else 0
    with Path(path).open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        if jsonl:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if record in wanted:
                    found[record] = line_no
                if record >= last:
                    break
                record += 1
            return found
        reader = csv.reader(fh)
        previous_end = 0
        for row in reader:
            start = previous_end + 1
            previous_end = reader.line_num
            if _is_blank(row):
                continue
            if record in wanted:
                found[record] = start
            if record >= last:
                break
            record += 1
    return found


def fail(
    path: PathLike,
    position: int | None,
    field: str | None,
    message: str,
    *,
    jsonl: bool = False,
    header: bool = True,
) -> NoReturn:
    """Raise :class:`TraceFormatError` for the record at ``position`` (``None``: whole file)."""
    line = None
    if position is not None:
        line = record_lines(path, [position], jsonl=jsonl, header=header).get(position)
    raise TraceFormatError(str(path), message, line=line, field=field)


def not_utf8(path: PathLike, detail: object = None) -> TraceFormatError:
    """Return the error for a file that is not UTF-8 text, naming the line of the first bad byte.

    The file is read again as bytes (only on this error path) to find the byte and its line.
    """
    try:
        data = Path(path).read_bytes()
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        return TraceFormatError(
            str(path),
            f"not UTF-8 text: byte 0x{data[bad.start]:02x} cannot be decoded (a binary file, or "
            "another encoding; save it as UTF-8)",
            line=line,
        )
    except OSError as exc:
        return TraceFormatError(str(path), f"cannot read the file: {exc}")
    return TraceFormatError(str(path), f"not UTF-8 text: {detail}")


def describe(value: object) -> str:
    """Return how a raw cell is quoted in an error message."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "an empty value"
    return repr(str(value))


class Source:
    """A trace file being read: its path and how its records map to lines.

    Parameters
    ----------
    path : str or Path
        The file.
    jsonl : bool
        JSON lines instead of CSV.
    header : bool
        The CSV file has a header record.
    """

    def __init__(self, path: PathLike, *, jsonl: bool = False, header: bool = True) -> None:
        self.path = path
        self.jsonl = jsonl
        self.header = header

    def fail(self, position: int | None, field: str | None, message: str) -> NoReturn:
        """Raise a located :class:`TraceFormatError` (see :func:`fail`)."""
        fail(self.path, position, field, message, jsonl=self.jsonl, header=self.header)

    def fail_first(
        self,
        bad: np.ndarray | pd.Series,
        raw: pd.Series,
        field: str,
        expected: str,
        positions: np.ndarray | None = None,
    ) -> None:
        """Raise for the first row where ``bad`` is true, quoting the raw value; else return."""
        bad_arr = np.asarray(bad, dtype=bool)
        if not bad_arr.any():
            return
        i = int(np.argmax(bad_arr))
        pos = int(positions[i]) if positions is not None else i
        self.fail(pos, field, f"expected {expected}, got {describe(raw.iloc[i])}")


# --------------------------------------------------------------------------- reading files


def read_csv(source: Source, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV file with pandas, turning parser failures into located errors.

    Blank lines are skipped. Only empty cells are missing values (``NA`` stays text), so a bad
    cell is reported as written.
    """
    path = source.path
    try:
        frame = pd.read_csv(
            path,
            encoding="utf-8-sig",
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=True,
            **kwargs,
        )
    except pd.errors.EmptyDataError:
        source.fail(None, None, "expected a CSV header and rows, got an empty file")
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise TraceFormatError(str(path), f"malformed CSV: {exc}", line=line) from exc
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from exc
    except OSError as exc:
        raise TraceFormatError(str(path), f"cannot read the file: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_jsonl(source: Source) -> pd.DataFrame:
    """Read a JSON-lines file; a malformed line raises an error naming that line.

    When pandas cannot read the file, it is read again line by line with :mod:`json`: a line that
    is not a JSON object raises, and a file whose every line is an object but that pandas refused
    (an integer beyond 64 bits, say) is built from those objects, so that the field checks name
    the bad value and its line.
    """
    path = source.path
    try:
        frame = pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from exc
    except OSError as exc:
        raise TraceFormatError(str(path), f"cannot read the file: {exc}") from exc
    except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError) as exc:
        # pandas fails in many ways on hostile lines (a bare number is a TypeError); the strict
        # second reading below says which line is wrong.
        records: list[dict[str, Any]] = []
        with Path(path).open(encoding="utf-8", errors="replace") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as bad:
                    reason = bad.msg if isinstance(bad, json.JSONDecodeError) else "nested too deeply"
                    raise TraceFormatError(
                        str(path),
                        f"expected a JSON object, got invalid JSON ({reason})",
                        line=line_no,
                    ) from exc
                if not isinstance(obj, dict):
                    raise TraceFormatError(
                        str(path), f"expected a JSON object, got {type(obj).__name__}", line=line_no
                    ) from exc
                records.append(obj)
        try:
            frame = pd.DataFrame.from_records(records)
        except (ValueError, TypeError) as again:
            raise TraceFormatError(str(path), f"could not read JSON lines: {exc}") from again
    frame.columns = [str(c) for c in frame.columns]
    return frame


def require_columns(source: Source, frame: pd.DataFrame, required: Iterable[str], what: str) -> None:
    """Raise, naming the header line, when a required column is missing."""
    for name in required:
        if name not in frame.columns:
            found = ", ".join(repr(c) for c in frame.columns)
            source.fail(0 if source.jsonl else -1, name, f"missing {what} column; found {found}")


def pick_columns(frame: pd.DataFrame, variable_map: Mapping[str, str]) -> dict[str, str]:
    """Choose, for each standard name, the first source column of ``variable_map`` present.

    Source names are matched case-insensitively after stripping a bracketed unit, so
    ``power.draw [W]`` matches ``power.draw``.
    """
    by_key: dict[str, str] = {}
    for col in frame.columns:
        by_key.setdefault(strip_unit(col)[0].lower(), col)
    chosen: dict[str, str] = {}
    for source_name, standard in variable_map.items():
        found = by_key.get(source_name.lower())
        if found is not None and standard not in chosen:
            chosen[standard] = found
    return chosen


def strip_unit(name: str) -> tuple[str, str | None]:
    """Split ``'power.draw [W]'`` into ``('power.draw', 'W')``."""
    match = re.fullmatch(r"\s*(.*?)\s*\[([^\]]*)\]\s*", name)
    if match:
        return match.group(1), match.group(2).strip()
    return name.strip(), None


# --------------------------------------------------------------------------- vectorised fields


def _text(raw: pd.Series) -> pd.Series:
    return raw.astype("str").str.strip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric_dtype(raw: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype)


def regex_groups(text: pd.Series, pattern: str) -> dict[str, pd.Series]:
    """Extract the named groups of ``pattern`` from every cell, vectorised with pyarrow.

    Cells that do not match give NaN in every group; an optional group that did not take part
    gives ``""``. (pandas' ``str.extract`` loops in Python; ``pyarrow.compute.extract_regex``
    does not. ``pattern`` uses RE2 syntax.)
    """
    arr = pa.array(text, type=pa.string(), from_pandas=True)
    matched = pc.extract_regex(arr, pattern)
    out = {}
    for name in re.compile(pattern).groupindex:
        values = pc.struct_field(matched, name).to_numpy(zero_copy_only=False)
        out[name] = pd.Series(values, index=text.index, dtype="str")
    return out


def _number_and_unit(text: pd.Series) -> tuple[FloatArray, pd.Series]:
    parts = regex_groups(text, _NUMBER_UNIT.pattern)
    num = pd.to_numeric(parts["num"], errors="coerce").to_numpy(dtype=np.float64)
    return num, parts["unit"].fillna("")


def nonneg_ints(
    source: Source,
    raw: pd.Series,
    field: str,
    positions: np.ndarray | None = None,
    *,
    maximum: int = MAX_COUNT,
    what: str = "",
) -> IntArray:
    """Parse a column of counts; raise at the first missing, negative, non-integer or too large value.

    Parameters
    ----------
    source, raw, field, positions
        As in :func:`numbers`.
    maximum : int
        Largest value accepted (default :data:`MAX_COUNT`, at most ``2**53`` so that every
        accepted value is exact in float64 and fits int64).
    what : str
        What the bound is, for the message (``"tokens per request"``).

    Returns
    -------
    numpy.ndarray of int64
        The counts, each in ``0 .. maximum``.
    """
    expected = f"a non-negative integer (at most {maximum}{' ' + what if what else ''})"
    # Every value goes through float64: the bound (<= 2**53) makes the final cast exact, and a
    # uint64 or a 26-digit integer is compared before any cast can wrap it.
    if _numeric_dtype(raw):
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        num = pd.to_numeric(_text(raw), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(num) | (num < 0) | (num != np.floor(num)) | (num > maximum)
    source.fail_first(bad, raw, field, expected, positions)
    return num.astype(np.int64)


def counts(
    source: Source,
    raw: pd.Series,
    field: str,
    *,
    factor: float = 1.0,
    positions: np.ndarray | None = None,
    maximum: int = MAX_COUNT,
) -> IntArray:
    """Parse a column of counts, optionally scaled (``factor=1000`` for thousands).

    A scaled value must still be a non-negative integer (to 1e-9 relative) of at most
    ``maximum``; the error quotes the raw cell.
    """
    if factor == 1.0:
        return nonneg_ints(source, raw, field, positions, maximum=maximum)
    expected = f"a non-negative count (x {factor:g} an integer, at most {maximum})"
    values = numbers(source, raw, field, factor=factor, positions=positions, expected=expected)
    rounded = np.rint(values)
    bad = (values < 0) | (np.abs(values - rounded) > 1e-9 * np.maximum(1.0, np.abs(values))) | (rounded > maximum)
    source.fail_first(bad, raw, field, expected, positions)
    return rounded.astype(np.int64)


def numbers(
    source: Source,
    raw: pd.Series,
    field: str,
    *,
    units: Mapping[str, float] | None = None,
    factor: float = 1.0,
    allow_missing: bool = False,
    positions: np.ndarray | None = None,
    expected: str = "a number",
) -> FloatArray:
    """Parse a numeric column, optionally with a unit after each value, to SI.

    Parameters
    ----------
    source : Source
        The file, for error messages.
    raw : pandas.Series
        Raw cells.
    field : str
        Source column name.
    units : mapping of str to float, optional
        Unit suffixes allowed after a value and the factor each converts to SI
        (``{"W": 1.0, "mW": 1e-3}``). ``None`` allows no suffix.
    factor : float
        Factor applied to values written without a unit.
    allow_missing : bool
        Empty cells, :data:`MISSING_TEXTS` and bracketed texts (``[N/A]``) become NaN instead
        of raising.
    positions : numpy.ndarray, optional
        Record position of each row (default: the row number).
    expected : str
        What a good value looks like, for the error message.

    Returns
    -------
    numpy.ndarray of float64
        Values in SI units; NaN where missing.
    """
    if _numeric_dtype(raw):
        with np.errstate(over="ignore", invalid="ignore"):
            values = raw.to_numpy(dtype=np.float64, na_value=np.nan) * factor
        missing = np.isnan(raw.to_numpy(dtype=np.float64, na_value=np.nan))
        bad = ~np.isfinite(values) & ~missing
        if not allow_missing:
            bad |= missing
        source.fail_first(bad, raw, field, expected, positions)
        return values
    text = _text(raw)
    missing = (raw.isna() | text.isin(MISSING_TEXTS) | text.str.match(_BRACKETED)).to_numpy(dtype=bool)
    num, unit = _number_and_unit(text)
    if units is None:
        unit_ok = (unit == "").to_numpy(dtype=bool)
        scale = np.full(len(raw), factor)
    else:
        unit_ok = (unit.isin(list(units)) | (unit == "")).to_numpy(dtype=bool)
        scale = unit.map(dict(units)).astype("float64").fillna(factor).to_numpy(dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        values = num * scale
    # Finite after conversion: 1e305 MHz is as bad as 'inf'.
    bad = ~missing & (~np.isfinite(values) | ~unit_ok)
    if not allow_missing:
        bad |= missing
    if units is not None:
        expected = f"{expected} (units: {', '.join(units)})"
    source.fail_first(bad, raw, field, expected, positions)
    values[missing] = np.nan
    return values


def check_range(
    source: Source,
    values: FloatArray,
    raw: pd.Series,
    field: str,
    lo: float,
    hi: float,
    expected: str,
    positions: np.ndarray | None = None,
) -> None:
    """Raise at the first value (NaN excepted) outside ``lo .. hi``, quoting the raw cell.

    ``hi`` gets a relative tolerance of 1e-9, so that ``100 %`` read as ``100 * 0.01`` passes.
    """
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(v) & ((v < lo) | (v > hi + 1e-9 * max(1.0, abs(hi))))
    source.fail_first(bad, raw, field, expected, positions)


def _check_time(source: Source, values: FloatArray, raw: pd.Series, field: str, positions: np.ndarray | None) -> None:
    limit = f"a time within {MAX_ABS_TIME_S:.0e} s of 0 (about 31,700 years; a wrong time unit?)"
    check_range(source, values, raw, field, -MAX_ABS_TIME_S, MAX_ABS_TIME_S, limit, positions)


class TimeOrigin(NamedTuple):
    """Wall-clock time of ``t = 0`` for a column of date-time text.

    Attributes
    ----------
    timestamp : pandas.Timestamp
        The origin, timezone-aware (UTC).
    aware : bool
        The source text carried a UTC offset; otherwise it was local or unspecified time.
    """

    timestamp: pd.Timestamp
    aware: bool

    def to_datetime(self) -> datetime:
        """Return the origin as a :class:`datetime` (naive when the source had no offset)."""
        start = self.timestamp.to_pydatetime()
        return start if self.aware else start.replace(tzinfo=None)


def times(
    source: Source,
    raw: pd.Series,
    field: str,
    *,
    time_format: str | None = None,
    numeric_unit_s: float = 1.0,
    origin: TimeOrigin | None = None,
    numeric_only: bool = False,
    positions: np.ndarray | None = None,
) -> tuple[FloatArray, TimeOrigin | None]:
    """Parse a time column given as numbers or as date-time text.

    The first value decides the kind of column. Numbers are multiplied by ``numeric_unit_s``
    and returned as they are. Date-time text is
    parsed as ISO 8601 (any number of fractional digits, optional UTC offset), then by
    ``time_format`` or a few common layouts (``2024/05/01 12:00:00.123``), and returned as
    seconds after ``origin`` (default: the earliest time), computed from integer nanoseconds
    so that no digit is lost to a large epoch offset. With ``numeric_only`` text is an error.

    Returns
    -------
    seconds : numpy.ndarray of float64
        Times [s].
    origin : TimeOrigin or None
        Wall-clock time of 0 s for date-time text, else None.
    """
    if len(raw) == 0:
        return np.empty(0), origin
    expected_num = "a time in seconds" if numeric_unit_s == 1.0 else f"a time in units of {numeric_unit_s:g} s"
    if _numeric_dtype(raw):
        values = numbers(source, raw, field, factor=numeric_unit_s, expected=expected_num, positions=positions)
        _check_time(source, values, raw, field, positions)
        return values, None
    text = _text(raw)
    # The first value decides whether the column holds numbers or date-time text.
    present = raw.notna().to_numpy(dtype=bool)
    first = str(text.iloc[int(np.argmax(present))]) if present.any() else ""
    if numeric_only or not present.any() or _is_number(first):
        values = numbers(source, raw, field, factor=numeric_unit_s, expected=expected_num, positions=positions)
        _check_time(source, values, raw, field, positions)
        return values, None
    expected = f"a timestamp like {time_format!r}" if time_format else "a date-time timestamp"
    missing = raw.isna().to_numpy(dtype=bool)
    if time_format is not None:
        parsed = pd.to_datetime(text, format=time_format, utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        for fmt in _FALLBACK_TIME_FORMATS:
            left = parsed.isna() & ~raw.isna()
            if not left.any():
                break
            parsed = parsed.where(~left, pd.to_datetime(text.where(left), format=fmt, utc=True, errors="coerce"))
    source.fail_first(parsed.isna().to_numpy(dtype=bool) | missing, raw, field, expected, positions)
    if origin is None:
        aware = bool(text.str.contains(_TZ_SUFFIX, regex=True).any())
        origin = TimeOrigin(parsed.min(), aware)
    seconds = np.asarray((parsed - origin.timestamp) / pd.Timedelta(seconds=1), dtype=np.float64)
    return seconds, origin
