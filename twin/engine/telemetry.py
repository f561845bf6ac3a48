"""Telemetry: one preallocated array per column, one row per report interval."""

from __future__ import annotations

import numpy as np
import pandas as pd


class Recorder:
    """Fixed-size table filled row by row (never appended).

    Parameters
    ----------
    n_rows : int
        Report intervals in the run.
    columns : sequence of str
        Column names, with units in the names.
    """

    def __init__(self, n_rows: int, columns: list[str]) -> None:
        self.columns = list(columns)
        self.data = {c: np.full(n_rows, np.nan) for c in self.columns}
        self.rows = 0

    def record(self, row: int, values: dict[str, float]) -> None:
        """Write ``values`` into ``row`` (unknown keys are an error)."""
        for key, value in values.items():
            self.data[key][row] = value
        self.rows = max(self.rows, row + 1)

    def record_rows(self, first: int, n: int, values: dict[str, np.ndarray | float]) -> None:
        """Write ``n`` rows from ``first``: each value is an array of ``n`` or one number for all."""
        for key, value in values.items():
            self.data[key][first : first + n] = value
        self.rows = max(self.rows, first + n)

    def frame(self) -> pd.DataFrame:
        """The rows written so far as a DataFrame."""
        # copy=False: the frame holds the recorder's arrays (a year of 1-minute rows is ~0.5 GB).
        return pd.DataFrame({c: v[: self.rows] for c, v in self.data.items()}, copy=False)
