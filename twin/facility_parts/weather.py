"""The outdoor weather the plant rejects heat into, over the run (read by :func:`twin.facility.build_facility`)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from twin._types import FloatArray
from twin.units import S_PER_HOUR
from twin.weather import WEATHER_COLUMNS, _seconds_into_year, weather_at


class WeatherBoundary:
    """Hourly outdoor conditions at simulation times (constant within each weather hour).

    Not changed after it is built: the record (``frame``, from :mod:`twin.weather`), the run's
    ``start`` and whether the record is ``constant`` (one hour that never changes).
    """

    def __init__(self, frame: pd.DataFrame, start: datetime, constant: bool) -> None:
        self.start = start
        self.frame = frame
        self.constant = constant
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
