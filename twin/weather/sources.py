"""Weather a scenario names by ``weather.source``: the packaged typical years and synthetic profiles.

The packaged files are in ``twin/data/weather`` with their sources and licences (its SOURCE.md);
a path to any other file is read by :func:`twin.weather.readers.read_weather_file`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from twin._types import FloatArray
from twin.errors import UnknownNameError
from twin.physics import psychrometrics as psy
from twin.units import S_PER_HOUR, STANDARD_PRESSURE_PA
from twin.weather.frame import _HOURS_PER_DAY, _HOURS_PER_YEAR
from twin.weather.readers import read_weather_file
from twin.workload.schema import TraceMeta

#: Packaged weather files (``twin/data/weather``, see its SOURCE.md).
DATA_DIR = Path(__file__).parent.parent / "data" / "weather"
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


def builtin_weather_names() -> list[str]:
    """Names of the packaged weather files."""
    return sorted(BUILTIN_WEATHER)


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
