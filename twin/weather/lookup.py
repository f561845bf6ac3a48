"""Weather at simulation times: the lookup the engine runs, and the check that a record covers a run.

Coverage: a file that is not a whole year covers only its own hours. :func:`require_coverage`
refuses a run whose span (start + duration, on the 365-day calendar) reaches outside them,
naming the span the file covers and the span the run needs; a whole-year record wraps from
31 December to 1 January as a typical year does.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from twin._types import FloatArray, Numeric
from twin.errors import TraceFormatError
from twin.units import S_PER_HOUR
from twin.weather.frame import _DAYS_BEFORE_MONTH, _HOURS_PER_DAY, _HOURS_PER_YEAR, _MONTH_NAMES, WEATHER_COLUMNS


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
