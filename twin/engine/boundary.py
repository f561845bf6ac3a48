"""Boundary conditions: the outdoor weather the plant rejects heat into."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from twin._types import FloatArray
from twin.errors import FieldProblem, ScenarioError
from twin.scenario.schema import Weather
from twin.units import S_PER_HOUR
from twin.weather import (
    WEATHER_COLUMNS,
    _seconds_into_year,
    builtin_weather,
    builtin_weather_names,
    read_epw,
    read_tmy3,
    require_coverage,
    synthetic_weather,
    weather_at,
)


class WeatherBoundary:
    """Hourly outdoor conditions at simulation times (constant within each weather hour)."""

    def __init__(
        self, spec: Weather, start: datetime, source_dir: Path | None, duration_s: float | None = None
    ) -> None:
        self.spec = spec
        self.start = start
        self.frame = _load(spec, source_dir)
        if duration_s is not None and spec.source not in ("constant", "diurnal"):
            # A file must hold every hour the run reads (a whole year wraps); see require_coverage.
            require_coverage(self.frame, start, duration_s, spec.source)
        self.constant = spec.source == "constant"
        # The record as arrays, for :meth:`at_times` (the lookup of :func:`twin.weather.weather_at`).
        self._time_s = self.frame["time_s"].to_numpy(dtype=np.float64)
        self._columns = {c: self.frame[c].to_numpy(dtype=np.float64) for c in WEATHER_COLUMNS if c != "time_s"}
        self._year_s = _seconds_into_year(start)

    def at(self, t_s: float) -> dict[str, float]:
        """Dry-bulb, wet-bulb (and the rest) at simulation time ``t_s``. [C]"""
        values = weather_at(self.frame, self.start, t_s)
        return {k: float(v) for k, v in values.items()}

    def at_times(self, t_s: FloatArray) -> dict[str, FloatArray]:
        """Dry-bulb, wet-bulb (and the rest) at each of the simulation times ``t_s``. [C]

        The lookup of :func:`twin.weather.weather_at` (same rows) on arrays prepared once.
        """
        time_s = self._time_s
        first = time_s[0]
        span = time_s[-1] + S_PER_HOUR - first
        wrapped = first + np.mod(self._year_s + np.asarray(t_s, dtype=np.float64) - first, span)
        row = np.clip(np.searchsorted(time_s, wrapped, side="right") - 1, 0, len(time_s) - 1)
        return {c: v[row] for c, v in self._columns.items()}

    def changes_in(self, t_from: float, t_to: float) -> FloatArray:
        """Times strictly between ``t_from`` and ``t_to`` where the weather record moves to its next hour."""
        if self.constant:
            return np.zeros(0)
        first = self.next_change_s(t_from)
        return np.arange(first, t_to, S_PER_HOUR, dtype=np.float64)

    def next_change_s(self, t_s: float) -> float:
        """Simulation time of the next hour boundary of the weather record after ``t_s``."""
        offset = (self.start.minute * 60 + self.start.second + self.start.microsecond * 1e-6) % S_PER_HOUR
        k = (t_s + offset) // S_PER_HOUR + 1
        return k * S_PER_HOUR - offset


def _load(spec: Weather, source_dir: Path | None) -> pd.DataFrame:
    src = spec.source
    if src == "constant":
        return synthetic_weather("constant", hours=1, dry_bulb_c=spec.dry_bulb_c, wet_bulb_c=spec.wet_bulb_c)[0]
    if src == "diurnal":
        return synthetic_weather(
            "diurnal",
            hours=24,
            dry_bulb_c=spec.dry_bulb_c,
            dew_point_c=spec.dew_point_c,
            amplitude_k=spec.amplitude_k,
            peak_hour=spec.peak_hour,
        )[0]
    if src in builtin_weather_names():
        return builtin_weather(src)[0]
    path = Path(src)
    if not path.is_absolute() and source_dir is not None:
        path = source_dir / path
    if not path.exists():
        valid = ", ".join(["constant", "diurnal", *builtin_weather_names()])
        raise ScenarioError(str(path), [FieldProblem("weather.source", f"no such file; or use one of {valid}")])
    reader = read_epw if path.suffix.lower() == ".epw" else read_tmy3
    return reader(path)[0]
