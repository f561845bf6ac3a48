"""Weather boundary series: TMY3 and EPW readers, synthetic profiles, lookup at simulation times.

Every reader returns ``(data, meta)``: ``data`` is a :class:`pandas.DataFrame` with one row per
hour, sorted by ``time_s``, and the standard columns below (SI units; raw names and units stop
here); ``meta`` a :class:`~twin.workload.schema.TraceMeta`.

=================  =======  ===============================================================
column             dtype    meaning
=================  =======  ===============================================================
``time_s``         float64  start of the hour, seconds after 1 January 00:00 local standard
                            time of a 365-day year [s]
``dry_bulb_c``     float64  dry-bulb temperature [C]
``dew_point_c``    float64  dew-point temperature [C], at most the dry-bulb
``rh``             float64  relative humidity, 0..1
``pressure_pa``    float64  station pressure [Pa]
``wind_m_s``       float64  wind speed [m/s]
``wet_bulb_c``     float64  thermodynamic wet-bulb [C], computed (ASHRAE 2017 ch. 1)
=================  =======  ===============================================================

Time convention: TMY3 and EPW stamp each value at the *end* of its hour (01:00 ... 24:00). The
row stamped ``h:00`` on day ``d`` becomes the hour starting ``h - 1``, i.e.
``time_s = ((day_of_year - 1) * 24 + h - 1) * 3600``, so ``time_s`` runs 0 ... 8759 h. Day of year
uses a 365-day calendar whatever the source year (typical years mix years); 29 February rows are
dropped and counted in ``meta.extra``.

Missing values (TMY3 ``-9900``; EPW 99.9 / 999 / 999999 by field) are filled by linear
interpolation in time and counted per column in ``meta.extra["missing_filled"]``. A malformed
file raises :class:`~twin.errors.TraceFormatError` (an
:class:`~twin.errors.InvalidInputError`, so the CLI exits 2) naming the file, line and field;
numbers in messages are plain (``999.0``).

Encoding: files are read as UTF-8; a file that is not UTF-8 is read as Latin-1, since EPW
comment records from older tools carry Latin-1 characters (a degree sign) and every data field
is ASCII anyway. A gzip-compressed file (``.epw.gz``, ``.csv.gz``; known by its magic bytes) is
decompressed first. A file with NUL bytes is refused as binary, naming the line.

Coverage: a file that is not a whole year covers only its own hours. :func:`require_coverage`
refuses a run whose span (start + duration, on the 365-day calendar) reaches outside them,
naming the span the file covers and the span the run needs; a whole-year record wraps from
31 December to 1 January as a typical year does.

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
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from twin._types import BoolArray, FloatArray, Numeric
from twin.errors import TraceFormatError, UnknownNameError
from twin.physics import psychrometrics as psy
from twin.units import S_PER_HOUR, STANDARD_PRESSURE_PA
from twin.workload.schema import TraceMeta

#: Standard weather columns, in order.
WEATHER_COLUMNS: tuple[str, ...] = (
    "time_s",
    "dry_bulb_c",
    "dew_point_c",
    "rh",
    "pressure_pa",
    "wind_m_s",
    "wet_bulb_c",
)
#: Columns read from a file (wet-bulb is computed).
_READ_COLUMNS: tuple[str, ...] = ("dry_bulb_c", "dew_point_c", "rh", "pressure_pa", "wind_m_s")
#: Values outside these ranges are reported as corrupt rather than used [SI units].
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "dry_bulb_c": (-90.0, 65.0),
    "dew_point_c": (-100.0, 40.0),
    "rh": (0.0, 1.05),
    "pressure_pa": (30e3, 110e3),
    "wind_m_s": (0.0, 120.0),
}
_SI_UNIT: dict[str, str] = {
    "dry_bulb_c": "C",
    "dew_point_c": "C",
    "rh": "(0..1)",
    "pressure_pa": "Pa",
    "wind_m_s": "m/s",
}

#: Days per month of a 365-day year, and the day of year before each month.
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_DAYS_BEFORE_MONTH = np.concatenate(([0], np.cumsum(_DAYS_IN_MONTH)[:-1]))
_HOURS_PER_DAY = 24
_HOURS_PER_YEAR = 365 * _HOURS_PER_DAY
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: Packaged weather files (``twin/data/weather``, see its SOURCE.md).
DATA_DIR = Path(__file__).parent / "data" / "weather"
BUILTIN_WEATHER: dict[str, str] = {
    "greensboro-nc": "723170TYA_Greensboro_NC.csv",
    "sand-point-ak": "703165TY_Sand_Point_AK.csv",
    "phoenix-az": "USA_AZ_Phoenix-Sky.Harbor.Intl.AP.722780_TMY3.epw.gz",
    "miami-fl": "USA_FL_Miami.Intl.AP.722020_TMY3.epw.gz",
    "san-francisco-ca": "USA_CA_San.Francisco.Intl.AP.724940_TMY3.epw.gz",
}
#: Climate of each packaged file (SOURCE.md), as the dashboard labels it.
BUILTIN_CLIMATES: dict[str, str] = {
    "greensboro-nc": "humid subtropical",
    "sand-point-ak": "cold maritime",
    "phoenix-az": "hot desert (hot-dry)",
    "miami-fl": "tropical monsoon (hot-humid)",
    "san-francisco-ca": "cool-summer Mediterranean (mild)",
}

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


# === packaged and synthetic weather ==========================================================


def builtin_weather_names() -> list[str]:
    """Names of the packaged weather files."""
    return sorted(BUILTIN_WEATHER)


def read_weather_file(path: str | Path) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a weather file: EPW if its name ends ``.epw`` or ``.epw.gz``, else TMY3 CSV."""
    path = Path(path)
    return read_epw(path) if path.name.lower().endswith((".epw", ".epw.gz")) else read_tmy3(path)


def builtin_weather(name: str) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a packaged typical year by name (:data:`BUILTIN_WEATHER`, e.g. ``"phoenix-az"``)."""
    if name not in BUILTIN_WEATHER:
        raise UnknownNameError("weather", name, builtin_weather_names())
    return read_weather_file(DATA_DIR / BUILTIN_WEATHER[name])


def _constant_profile(hours: int, options: dict[str, float]) -> tuple[FloatArray, FloatArray]:
    """Constant dry-bulb and wet-bulb; the dew point follows from them."""
    dry = np.full(hours, options["dry_bulb_c"])
    wet = options["wet_bulb_c"]
    if wet > options["dry_bulb_c"]:
        raise ValueError(f"wet_bulb_c {wet} is above dry_bulb_c {options['dry_bulb_c']}")
    w = psy.humidity_ratio_from_wet_bulb(dry, wet, options["pressure_pa"])
    if (w < 0.0).any():
        raise ValueError(f"wet_bulb_c {wet} is below the driest possible air at {dry[0]} C")
    return dry, psy.dew_point_c(psy.vapor_pressure_from_humidity_ratio_pa(w, options["pressure_pa"]))


def _diurnal_profile(hours: int, options: dict[str, float]) -> tuple[FloatArray, FloatArray]:
    """Cosine dry-bulb around a mean, peaking at ``peak_hour``; constant dew point."""
    hour_of_day = np.arange(hours) % _HOURS_PER_DAY
    phase = 2.0 * np.pi * (hour_of_day - options["peak_hour"]) / _HOURS_PER_DAY
    dry = options["dry_bulb_c"] + options["amplitude_k"] * np.cos(phase)
    return dry, np.minimum(np.full(hours, options["dew_point_c"]), dry)


#: [EST] Default synthetic weather (also the scenario's ``weather``), an illustrative warm day and
#: no site's record: dry-bulb (the mean of a diurnal day) [C], wet-bulb of a constant day [C], dew
#: point of a diurnal day [C], half the daily swing [K] and the hour of the warmest air [h].
SYNTHETIC_DRY_BULB_C: float = 25.0
SYNTHETIC_WET_BULB_C: float = 18.0
SYNTHETIC_DEW_POINT_C: float = 12.0
SYNTHETIC_AMPLITUDE_K: float = 5.0
SYNTHETIC_PEAK_HOUR: float = 15.0

#: Synthetic weather kinds (``synthetic_weather(kind=...)``).
SYNTHETIC_KINDS: dict[str, Callable[[int, dict[str, float]], tuple[FloatArray, FloatArray]]] = {
    "constant": _constant_profile,
    "diurnal": _diurnal_profile,
}


def synthetic_weather(
    kind: str = "constant",
    *,
    hours: int = _HOURS_PER_YEAR,
    dry_bulb_c: float = SYNTHETIC_DRY_BULB_C,
    wet_bulb_c: float = SYNTHETIC_WET_BULB_C,
    dew_point_c: float = SYNTHETIC_DEW_POINT_C,
    amplitude_k: float = SYNTHETIC_AMPLITUDE_K,
    peak_hour: float = SYNTHETIC_PEAK_HOUR,
    pressure_pa: float = STANDARD_PRESSURE_PA,
    wind_m_s: float = 0.0,
) -> tuple[pd.DataFrame, TraceMeta]:
    """Synthetic hourly weather in the standard columns.

    Parameters
    ----------
    kind : {"constant", "diurnal"}
        ``"constant"``: dry-bulb ``dry_bulb_c`` and wet-bulb ``wet_bulb_c`` every hour (the dew
        point follows). ``"diurnal"``: dry-bulb ``dry_bulb_c + amplitude_k cos(2 pi (h -
        peak_hour) / 24)`` at hour of day h (mean ``dry_bulb_c``, maximum at ``peak_hour``,
        minimum 12 h later) with a constant dew point ``dew_point_c`` (capped at the dry-bulb).
    hours : int
        Number of hourly rows, from ``time_s = 0``. Default one 365-day year.
    dry_bulb_c, wet_bulb_c, dew_point_c : float
        See ``kind``. [C]
    amplitude_k : float
        Half the daily dry-bulb swing. [K]
    peak_hour : float
        Hour of day of the maximum (local time). [h]
    pressure_pa, wind_m_s : float
        Constant station pressure [Pa] and wind speed [m/s].

    Returns
    -------
    data : pandas.DataFrame
        Standard weather columns.
    meta : TraceMeta
        ``format="synthetic"``, ``source="synthetic:<kind>"``, the arguments in ``extra``.

    Raises
    ------
    twin.errors.UnknownNameError
        For an unknown ``kind``; lists the valid ones.
    ValueError
        For a wet-bulb above the dry-bulb or below the driest possible air.
    """
    if kind not in SYNTHETIC_KINDS:
        raise UnknownNameError("synthetic weather kind", kind, list(SYNTHETIC_KINDS))
    options = {
        "dry_bulb_c": float(dry_bulb_c),
        "wet_bulb_c": float(wet_bulb_c),
        "dew_point_c": float(dew_point_c),
        "amplitude_k": float(amplitude_k),
        "peak_hour": float(peak_hour),
        "pressure_pa": float(pressure_pa),
        "wind_m_s": float(wind_m_s),
    }
    dry, dew = SYNTHETIC_KINDS[kind](hours, options)
    pressure = np.full(hours, options["pressure_pa"])
    time_s = np.arange(hours, dtype=np.float64) * S_PER_HOUR
    frame = pd.DataFrame(
        {
            "time_s": time_s,
            "dry_bulb_c": dry,
            "dew_point_c": dew,
            "rh": psy.relative_humidity(dry, dew),
            "pressure_pa": pressure,
            "wind_m_s": np.full(hours, options["wind_m_s"]),
            "wet_bulb_c": psy.wet_bulb_c(dry, dew, pressure),
        }
    )
    meta = TraceMeta(
        source=f"synthetic:{kind}",
        format="synthetic",
        duration_s=float(time_s[-1]) if hours else 0.0,
        extra={"kind": kind, **options, "hours": hours},
    )
    return frame, meta


# === lookup at simulation times ==============================================================


def _seconds_into_year(start: datetime) -> float:
    """Seconds from 1 January 00:00 to ``start`` on a 365-day calendar (29 Feb reads as 1 Mar)."""
    day_of_year = int(_DAYS_BEFORE_MONTH[start.month - 1]) + start.day - 1
    seconds = start.hour * S_PER_HOUR + start.minute * 60.0 + start.second + start.microsecond * 1e-6
    return day_of_year * _HOURS_PER_DAY * S_PER_HOUR + seconds


def _calendar(hour_of_year: int) -> str:
    """``'Jul 15 00:00'`` for an hour of the 365-day year (0 = 1 January 00:00)."""
    day, hour = divmod(int(hour_of_year) % _HOURS_PER_YEAR, _HOURS_PER_DAY)
    month = int(np.searchsorted(_DAYS_BEFORE_MONTH, day, side="right"))
    return f"{_MONTH_NAMES[month - 1]} {day - int(_DAYS_BEFORE_MONTH[month - 1]) + 1:02d} {hour:02d}:00"


def require_coverage(weather: pd.DataFrame, start: datetime, duration_s: float, source: str) -> None:
    """Refuse a weather record that does not hold every hour a run reads from it.

    Parameters
    ----------
    weather : pandas.DataFrame
        Standard weather frame read from a file (:func:`read_tmy3`, :func:`read_epw`). The
        synthetic profiles repeat by design and are not checked.
    start : datetime.datetime
        Wall-clock time of simulation time 0 (as in :func:`weather_at`).
    duration_s : float
        Length of the run. [s]
    source : str
        The file, for the message.

    Raises
    ------
    twin.errors.TraceFormatError
        The run reads an hour the file does not hold; the message gives the span the file covers
        and the span the run needs.

    Notes
    -----
    The run needs the hours from ``y0 = seconds_into_year(start)`` to ``y0 + duration_s`` on the
    365-day calendar of :func:`weather_at`, wrapped at the year end (a typical year has no year
    of its own, so 31 December is followed by 1 January). A record that holds all 8760 hours
    therefore covers any run, however long; a shorter one (a few days cut from a TMY, a
    design-day file) must hold each hour the run touches, else :func:`weather_at` would silently
    repeat the hours it has in place of the ones it lacks.
    """
    hours = np.round(weather["time_s"].to_numpy(dtype=np.float64) / S_PER_HOUR).astype(np.int64)
    present = np.zeros(_HOURS_PER_YEAR, dtype=bool)
    present[hours[(hours >= 0) & (hours < _HOURS_PER_YEAR)]] = True
    if present.all():
        return
    first_h = int(_seconds_into_year(start) // S_PER_HOUR)
    span_h = _HOURS_PER_YEAR
    if np.isfinite(duration_s):
        end_s = _seconds_into_year(start) + max(float(duration_s), 0.0)
        span_h = min(max(int(np.ceil(end_s / S_PER_HOUR)) - first_h, 1), _HOURS_PER_YEAR)
    needed = (first_h + np.arange(span_h)) % _HOURS_PER_YEAR
    lacking = needed[~present[needed]]
    if not lacking.size:
        return
    covers = (
        f"{len(hours)} hourly rows from {_calendar(hours.min())} to {_calendar(hours.max() + 1)}"
        if len(hours)
        else "no hours"
    )
    gaps = "" if len(hours) == hours.max() - hours.min() + 1 else " (with gaps)"
    raise TraceFormatError(
        source,
        f"the weather file covers {covers}{gaps} of a 365-day year, but the run needs "
        f"{_calendar(needed[0])} to {_calendar(needed[-1] + 1)} (start {start.isoformat()} + "
        f"{float(duration_s):g} s), and the file has no row for {_calendar(lacking[0])}; use a "
        "whole-year file, or a start and duration inside the covered span",
        field="time",
    )


def weather_at(weather: pd.DataFrame, start: datetime, t_s: Numeric) -> dict[str, FloatArray]:
    """Weather at simulation times, piecewise constant per hour, wrapping around the record.

    Parameters
    ----------
    weather : pandas.DataFrame
        Standard weather frame (from a reader or :func:`synthetic_weather`), sorted by
        ``time_s``, one row per hour.
    start : datetime.datetime
        Wall-clock time of simulation time 0, read as local standard time of the weather
        (its date and clock fields are used; a time zone, if any, is ignored).
    t_s : float or array_like
        Simulation times, seconds after ``start``. [s]

    Returns
    -------
    dict of str to numpy.ndarray
        One array per weather column (all but ``time_s``), shaped like ``t_s``.

    Notes
    -----
    The time of year is ``y = seconds_into_year(start) + t_s`` (365-day calendar). The record
    covers ``[time_s[0], time_s[-1] + 3600)``; ``y`` is wrapped into that span (a full TMY year
    wraps at 8760 h, a 24-row synthetic day repeats every day at the same clock hours) and the
    row whose hour contains it is returned.
    """
    time_s = weather["time_s"].to_numpy(dtype=np.float64)
    first = time_s[0]
    span = time_s[-1] + S_PER_HOUR - first
    year_s = _seconds_into_year(start) + np.asarray(t_s, dtype=np.float64)
    wrapped = first + np.mod(year_s - first, span)
    row = np.clip(np.searchsorted(time_s, wrapped, side="right") - 1, 0, len(time_s) - 1)
    return {col: weather[col].to_numpy(dtype=np.float64)[row] for col in WEATHER_COLUMNS if col != "time_s"}


__all__ = [
    "BUILTIN_CLIMATES",
    "BUILTIN_WEATHER",
    "PLAUSIBLE_RANGES",
    "SYNTHETIC_KINDS",
    "WEATHER_COLUMNS",
    "builtin_weather",
    "builtin_weather_names",
    "read_epw",
    "read_tmy3",
    "read_weather_file",
    "require_coverage",
    "synthetic_weather",
    "weather_at",
]
