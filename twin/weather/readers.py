"""Weather file readers: NREL TMY3 CSV and EnergyPlus EPW, each to the standard frame.

Every reader returns ``(data, meta)``: ``data`` a :class:`pandas.DataFrame` with one row per
hour, sorted by ``time_s``, in the standard columns of :mod:`twin.weather` (its docstring gives
the table and the time convention; SI units; raw names and units stop here); ``meta`` a
:class:`~twin.workload.schema.TraceMeta`.

Missing values (TMY3 ``-9900``; EPW 99.9 / 999 / 999999 by field) are filled by linear
interpolation in time and counted per column in ``meta.extra["missing_filled"]``. A malformed
file raises :class:`~twin.errors.TraceFormatError` (an
:class:`~twin.errors.InvalidInputError`, so the CLI exits 2) naming the file, line and field;
numbers in messages are plain (``999.0``).

Encoding: files are read as UTF-8; a file that is not UTF-8 is read as Latin-1, since EPW
comment records from older tools carry Latin-1 characters (a degree sign) and every data field
is ASCII anyway. A gzip-compressed file (``.epw.gz``, ``.csv.gz``; known by its magic bytes) is
decompressed first. A file with NUL bytes is refused as binary, naming the line.

References
----------
.. [1] S. Wilcox and W. Marion, "Users Manual for TMY3 Data Sets," NREL, Golden, CO, USA,
   NREL/TP-581-43156, 2008.
.. [2] U.S. DOE, "EnergyPlus Weather File (EPW) Data Dictionary," in *EnergyPlus Auxiliary
   Programs*, ch. 2.9 (header records, field order, missing-value codes), energyplus.net.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from twin._types import BoolArray, FloatArray
from twin.errors import TraceFormatError
from twin.physics import psychrometrics as psy
from twin.units import S_PER_HOUR
from twin.weather.frame import (
    _DAYS_BEFORE_MONTH,
    _DAYS_IN_MONTH,
    _HOURS_PER_DAY,
    _READ_COLUMNS,
    _SI_UNIT,
    PLAUSIBLE_RANGES,
)
from twin.workload.schema import TraceMeta

#: TMY3 source column -> standard column, and the factor to SI ([1] Table 1-1).
TMY3_VARIABLE_MAP: dict[str, str] = {
    "Dry-bulb (C)": "dry_bulb_c",
    "Dew-point (C)": "dew_point_c",
    "RHum (%)": "rh",
    "Pressure (mbar)": "pressure_pa",
    "Wspd (m/s)": "wind_m_s",
}
_TMY3_TO_SI: dict[str, float] = {"rh": 0.01, "pressure_pa": 100.0}
_TMY3_DATE, _TMY3_TIME = "Date (MM/DD/YYYY)", "Time (HH:MM)"
#: TMY3 missing-value code ([1]).
TMY3_MISSING: float = -9900.0

#: EPW header record keywords, lines 1-8 ([2]).
EPW_HEADER: tuple[str, ...] = (
    "LOCATION",
    "DESIGN CONDITIONS",
    "TYPICAL/EXTREME PERIODS",
    "GROUND TEMPERATURES",
    "HOLIDAYS/DAYLIGHT SAVINGS",
    "COMMENTS 1",
    "COMMENTS 2",
    "DATA PERIODS",
)
#: EPW data field (0-based) of each standard column and its missing code (value >= code) ([2]).
EPW_FIELDS: dict[str, tuple[int, float, str]] = {
    "dry_bulb_c": (6, 99.9, "Dry Bulb Temperature"),
    "dew_point_c": (7, 99.9, "Dew Point Temperature"),
    "rh": (8, 999.0, "Relative Humidity"),
    "pressure_pa": (9, 999999.0, "Atmospheric Station Pressure"),
    "wind_m_s": (21, 999.0, "Wind Speed"),
}
_EPW_TIME_FIELDS: tuple[str, ...] = ("Year", "Month", "Day", "Hour")
_EPW_MIN_FIELDS = 22
_EPW_TO_SI: dict[str, float] = {"rh": 0.01}


#: First two bytes of a gzip member (RFC 1952 section 2.3.1).
_GZIP_MAGIC = b"\x1f\x8b"


# === shared parsing helpers ===================================================================


def _floats(values: Sequence[str], lines: Sequence[int], path: Path, field: str) -> FloatArray:
    """Parse strings to float64, naming the first bad line and the field on failure."""
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        for value, line in zip(values, lines, strict=True):
            try:
                float(value)
            except ValueError:
                raise TraceFormatError(str(path), f"{value!r} is not a number", line=line, field=field) from None
        raise


def _time_of_year_s(
    month: FloatArray, day: FloatArray, hour: FloatArray, lines: Sequence[int], path: Path
) -> tuple[FloatArray, BoolArray]:
    """Hour-starting seconds into a 365-day year, and the mask of rows kept (no 29 February)."""
    bad_month = ~((month >= 1) & (month <= 12) & (month == np.round(month)))
    month_i = np.clip(np.nan_to_num(month, nan=1.0), 1, 12).astype(np.int64)
    leap_day = (month_i == 2) & (day == 29)
    days = _DAYS_IN_MONTH[month_i - 1]
    bad_day = ~((day >= 1) & (day <= days) & (day == np.round(day))) & ~leap_day
    bad_hour = ~((hour >= 1) & (hour <= _HOURS_PER_DAY) & (hour == np.round(hour)))
    for mask, field, what in (
        (bad_month, "month", "1..12"),
        (bad_day, "day", "a day of the month"),
        (bad_hour, "hour", "1..24 (hour ending)"),
    ):
        if mask.any():
            i = int(np.argmax(mask))
            raise TraceFormatError(str(path), f"expected {what}", line=lines[i], field=field)
    keep = ~leap_day
    day_of_year = _DAYS_BEFORE_MONTH[month_i - 1] + day - 1
    time_s = ((day_of_year * _HOURS_PER_DAY) + hour - 1) * S_PER_HOUR
    kept_lines = np.asarray(lines)[keep]
    step = np.diff(time_s[keep])
    if (step <= 0).any():
        i = int(np.argmax(step <= 0)) + 1
        raise TraceFormatError(
            str(path),
            "rows are not in increasing time order",
            line=int(kept_lines[i]),
            field="time",
        )
    return time_s[keep], keep


def _finish(
    path: Path,
    fmt: str,
    time_s: FloatArray,
    values: dict[str, FloatArray],
    lines: Sequence[int],
    extra: dict[str, object],
) -> tuple[pd.DataFrame, TraceMeta]:
    """Check ranges, fill missing values, add wet-bulb, build the frame and the metadata."""
    filled: dict[str, int] = {}
    for col in _READ_COLUMNS:
        v = values[col]
        missing = np.isnan(v)
        lo, hi = PLAUSIBLE_RANGES[col]
        bad = ~missing & ((v < lo) | (v > hi))
        if bad.any():
            i = int(np.argmax(bad))
            raise TraceFormatError(
                str(path),
                f"expected {col} in {lo}..{hi} {_SI_UNIT[col]}, got {float(v[i])}",
                line=lines[i],
                field=col,
            )
        if missing.all():
            raise TraceFormatError(str(path), "every value is missing", field=col)
        if missing.any():
            v = v.copy()
            v[missing] = np.interp(time_s[missing], time_s[~missing], v[~missing])
            values[col] = v
        filled[col] = int(missing.sum())
    dew_point_c = np.minimum(values["dew_point_c"], values["dry_bulb_c"])
    frame = pd.DataFrame(
        {
            "time_s": time_s.astype(np.float64),
            "dry_bulb_c": values["dry_bulb_c"],
            "dew_point_c": dew_point_c,
            "rh": np.clip(values["rh"], 0.0, 1.0),
            "pressure_pa": values["pressure_pa"],
            "wind_m_s": values["wind_m_s"],
            "wet_bulb_c": psy.wet_bulb_c(values["dry_bulb_c"], dew_point_c, values["pressure_pa"]),
        }
    )
    extra = {
        **extra,
        "missing_filled": filled,
        "time_convention": "hour-starting, local standard time, 365-day year",
    }
    meta = TraceMeta(
        source=str(path),
        format=fmt,
        start=None,
        duration_s=float(time_s[-1] - time_s[0]) if len(time_s) else 0.0,
        extra=extra,
    )
    return frame, meta


def _read_rows(path: Path) -> list[list[str]]:
    """CSV records of a weather file: UTF-8, else Latin-1 (module docstring); binary raises."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TraceFormatError(str(path), f"cannot read the file: {exc}") from exc
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceFormatError(str(path), f"not a readable gzip file: {exc}") from exc
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise TraceFormatError(str(path), "not a text file: it holds NUL bytes (a binary file?)", line=line)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return list(reader)
    except csv.Error as exc:
        raise TraceFormatError(str(path), f"malformed CSV: {exc}", line=reader.line_num + 1) from exc


def _data_rows(
    rows: list[list[str]], first_line: int, min_fields: int, path: Path, field: str
) -> tuple[list[list[str]], list[int]]:
    """Non-blank data rows and their 1-based line numbers; short rows raise."""
    data, lines = [], []
    for offset, row in enumerate(rows):
        if not any(cell.strip() for cell in row):
            continue
        line = first_line + offset
        if len(row) < min_fields:
            raise TraceFormatError(str(path), f"row has {len(row)} fields, expected at least {min_fields}", line, field)
        data.append(row)
        lines.append(line)
    if not data:
        raise TraceFormatError(str(path), "no data rows", line=first_line)
    return data, lines


# === TMY3 =====================================================================================


def read_tmy3(path: str | Path) -> tuple[pd.DataFrame, TraceMeta]:
    """Read an NREL TMY3 CSV file.

    Parameters
    ----------
    path : str or pathlib.Path
        File with the TMY3 layout: line 1 the site header (USAF id, name, state, UTC offset,
        latitude, longitude, elevation), line 2 the column names, then hourly rows.

    Returns
    -------
    data : pandas.DataFrame
        The standard weather columns (module docstring); pressure mbar -> Pa, RH % -> 0..1.
    meta : TraceMeta
        ``format="tmy3"``; ``extra`` holds the site (``usaf``, ``name``, ``state``,
        ``utc_offset_h``, ``latitude``, ``longitude``, ``elevation_m``), ``source_years``,
        ``missing_filled`` (count per column) and ``dropped_feb29``.

    Raises
    ------
    twin.errors.TraceFormatError
        Naming the file, the line and the field of the first problem.

    References
    ----------
    .. [1] Wilcox & Marion, "Users Manual for TMY3 Data Sets," NREL/TP-581-43156, 2008.
    """
    path = Path(path)
    rows = _read_rows(path)
    if len(rows) < 3:
        raise TraceFormatError(str(path), "expected a site line, a header line and data rows")
    site = rows[0]
    site_fields = ("usaf", "name", "state", "utc_offset_h", "latitude", "longitude", "elevation_m")
    if len(site) < len(site_fields):
        raise TraceFormatError(str(path), f"site line has {len(site)} fields, expected {len(site_fields)}", line=1)
    extra: dict[str, object] = {}
    for key, text in zip(site_fields, site, strict=False):
        if key in ("usaf", "name", "state"):
            extra[key] = text.strip()
        else:
            extra[key] = float(_floats([text], [1], path, key)[0])
    header = [name.strip() for name in rows[1]]
    index: dict[str, int] = {}
    for name in (_TMY3_DATE, _TMY3_TIME, *TMY3_VARIABLE_MAP):
        if name not in header:
            raise TraceFormatError(str(path), "column is missing", line=2, field=name)
        index[name] = header.index(name)
    data, lines = _data_rows(rows[2:], 3, max(index.values()) + 1, path, "row")

    month, day, year, hour = (np.empty(len(data)) for _ in range(4))
    for i, (row, line) in enumerate(zip(data, lines, strict=True)):
        date, clock = row[index[_TMY3_DATE]], row[index[_TMY3_TIME]]
        try:
            month[i], day[i], year[i] = (int(p) for p in date.split("/"))
        except (ValueError, OverflowError):
            raise TraceFormatError(str(path), f"{date!r} is not MM/DD/YYYY", line, _TMY3_DATE) from None
        hh, _, mm = clock.partition(":")
        if not (hh.strip().isascii() and hh.strip().isdigit() and mm.strip() == "00"):
            raise TraceFormatError(str(path), f"{clock!r} is not HH:00", line, _TMY3_TIME)
        hour[i] = int(hh)
    time_s, keep = _time_of_year_s(month, day, hour, lines, path)

    values: dict[str, FloatArray] = {}
    for source, col in TMY3_VARIABLE_MAP.items():
        raw = _floats([row[index[source]] for row in data], lines, path, source)
        raw = np.where(raw == TMY3_MISSING, np.nan, raw) * _TMY3_TO_SI.get(col, 1.0)
        values[col] = raw[keep]
    extra["source_years"] = sorted({int(y) for y in year})
    extra["dropped_feb29"] = int((~keep).sum())
    return _finish(path, "tmy3", time_s, values, [ln for ln, k in zip(lines, keep, strict=True) if k], extra)


# === EPW ======================================================================================


def read_epw(path: str | Path) -> tuple[pd.DataFrame, TraceMeta]:
    """Read an EnergyPlus EPW weather file (hourly records).

    Parameters
    ----------
    path : str or pathlib.Path
        File in the published EPW layout: 8 header records (LOCATION, DESIGN CONDITIONS,
        TYPICAL/EXTREME PERIODS, GROUND TEMPERATURES, HOLIDAYS/DAYLIGHT SAVINGS, COMMENTS 1,
        COMMENTS 2, DATA PERIODS), then comma-separated rows: year, month, day, hour (1-24,
        hour ending), minute, data source flags, dry-bulb [C], dew point [C], RH [%], station
        pressure [Pa], ..., wind speed [m/s] (field 22), ...

    Returns
    -------
    data : pandas.DataFrame
        The standard weather columns (module docstring).
    meta : TraceMeta
        ``format="epw"``; ``extra`` holds the LOCATION record (``city``, ``state``,
        ``country``, ``data_source``, ``wmo``, ``latitude``, ``longitude``, ``utc_offset_h``,
        ``elevation_m``), ``source_years``, ``missing_filled`` and ``dropped_feb29``.

    Raises
    ------
    twin.errors.TraceFormatError
        Naming the file, the line and the field of the first problem; also for sub-hourly files
        (more than one record per hour), which are not supported.

    References
    ----------
    .. [1] EnergyPlus Auxiliary Programs, "EnergyPlus Weather File (EPW) Data Dictionary".
    """
    path = Path(path)
    rows = _read_rows(path)
    if len(rows) <= len(EPW_HEADER):
        raise TraceFormatError(str(path), f"expected {len(EPW_HEADER)} header records and data")
    for line, (keyword, row) in enumerate(zip(EPW_HEADER, rows, strict=False), start=1):
        if not row or row[0].strip().upper() != keyword:
            raise TraceFormatError(str(path), f"expected the {keyword} record", line, keyword)
    location = rows[0]
    loc_fields = ("city", "state", "country", "data_source", "wmo")
    num_fields = ("latitude", "longitude", "utc_offset_h", "elevation_m")
    if len(location) < 1 + len(loc_fields) + len(num_fields):
        raise TraceFormatError(str(path), "LOCATION record has too few fields", 1, "LOCATION")
    extra: dict[str, object] = {k: v.strip() for k, v in zip(loc_fields, location[1:6], strict=True)}
    for key, text in zip(num_fields, location[6:10], strict=True):
        extra[key] = float(_floats([text], [1], path, key)[0])
    periods = rows[len(EPW_HEADER) - 1]
    per_hour = _floats(periods[2:3] or ["nan"], [len(EPW_HEADER)], path, "records per hour")
    if per_hour[0] != 1.0:
        raise TraceFormatError(str(path), "only hourly files (1 record per hour) are supported", 8, "records per hour")

    first = len(EPW_HEADER) + 1
    data, lines = _data_rows(rows[len(EPW_HEADER) :], first, _EPW_MIN_FIELDS, path, "row")
    year, month, day, hour = (
        _floats([row[i] for row in data], lines, path, name) for i, name in enumerate(_EPW_TIME_FIELDS)
    )
    bad_year = ~(np.isfinite(year) & (year == np.round(year)))
    if bad_year.any():
        i = int(np.argmax(bad_year))
        raise TraceFormatError(str(path), f"expected a whole year, got {float(year[i])}", lines[i], "Year")
    time_s, keep = _time_of_year_s(month, day, hour, lines, path)
    values: dict[str, FloatArray] = {}
    for col, (field, missing_code, name) in EPW_FIELDS.items():
        raw = _floats([row[field] for row in data], lines, path, name)
        raw = np.where(raw >= missing_code, np.nan, raw) * _EPW_TO_SI.get(col, 1.0)
        values[col] = raw[keep]
    extra["source_years"] = sorted({int(y) for y in year})
    extra["dropped_feb29"] = int((~keep).sum())
    return _finish(path, "epw", time_s, values, [ln for ln, k in zip(lines, keep, strict=True) if k], extra)


def read_weather_file(path: str | Path) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a weather file: EPW if its name ends ``.epw`` or ``.epw.gz``, else TMY3 CSV."""
    path = Path(path)
    return read_epw(path) if path.name.lower().endswith((".epw", ".epw.gz")) else read_tmy3(path)
