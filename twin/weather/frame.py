"""The standard weather frame: its columns, their plausible ranges, and the 365-day calendar.

Every weather source (:mod:`twin.weather.readers`, :mod:`twin.weather.sources`) returns a frame
with :data:`WEATHER_COLUMNS` (the table and the time convention are in :mod:`twin.weather`);
``time_s`` counts seconds into a 365-day year, laid out by the month constants below.
"""

from __future__ import annotations

import numpy as np

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
