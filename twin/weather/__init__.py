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

The package, by what each module holds:

* :mod:`twin.weather.frame`: the standard columns, their plausible ranges, the 365-day calendar.
* :mod:`twin.weather.readers`: the TMY3 and EPW file readers (missing values, encoding, references).
* :mod:`twin.weather.sources`: what ``weather.source`` names: the packaged typical years
  (``twin/data/weather``, its SOURCE.md) and the synthetic profiles.
* :mod:`twin.weather.lookup`: the weather at simulation times, and the check that a file covers
  a run.
"""

from __future__ import annotations

# Every name twin.weather held before it became a package stays importable from it. Those outside
# __all__ (as before) are re-exported as ``X as X``: the readers' tables, the packaged files'
# folder, the synthetic defaults (the scenario's) and the calendar offset of
# twin.facility_parts.weather.
from twin.weather.frame import PLAUSIBLE_RANGES, WEATHER_COLUMNS
from twin.weather.lookup import _seconds_into_year as _seconds_into_year
from twin.weather.lookup import require_coverage, weather_at
from twin.weather.readers import EPW_FIELDS as EPW_FIELDS
from twin.weather.readers import EPW_HEADER as EPW_HEADER
from twin.weather.readers import TMY3_MISSING as TMY3_MISSING
from twin.weather.readers import TMY3_VARIABLE_MAP as TMY3_VARIABLE_MAP
from twin.weather.readers import read_epw, read_tmy3, read_weather_file
from twin.weather.sources import (
    BUILTIN_CLIMATES,
    BUILTIN_WEATHER,
    SYNTHETIC_KINDS,
    builtin_weather,
    builtin_weather_names,
    synthetic_weather,
)
from twin.weather.sources import DATA_DIR as DATA_DIR
from twin.weather.sources import SYNTHETIC_AMPLITUDE_K as SYNTHETIC_AMPLITUDE_K
from twin.weather.sources import SYNTHETIC_DEW_POINT_C as SYNTHETIC_DEW_POINT_C
from twin.weather.sources import SYNTHETIC_DRY_BULB_C as SYNTHETIC_DRY_BULB_C
from twin.weather.sources import SYNTHETIC_PEAK_HOUR as SYNTHETIC_PEAK_HOUR
from twin.weather.sources import SYNTHETIC_WET_BULB_C as SYNTHETIC_WET_BULB_C

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
