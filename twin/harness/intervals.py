"""The measured device of a harness run: its energy source and its samples cut into report intervals.

What :mod:`twin.harness.mirror` mirrors across a fleet: the device's energy in each complete
interval is the difference of its cumulative energy (the NVML or RAPL counter, or the labelled
estimate) interpolated at the interval's edges, so the mirrored energy is the metered energy; its
tokens are cut the same way from the cumulative token count.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import TraceFormatError
from twin.harness.io import atomic_write_frame, live_csv_path, meta_path, summary_path

#: Energy sources that are measurements (see :mod:`twin.harness.meter`).
MEASURED_SOURCES: tuple[str, ...] = ("nvml", "rapl")


@dataclass(frozen=True)
class DeviceSource:
    """Where the measured device's power came from.

    Attributes
    ----------
    energy_source : str
        ``nvml``, ``rapl``, ``estimated``, or ``unknown`` (no summary or run metadata found).
    device_name : str
        The device, as the meter named it ("" if unknown).
    note : str
        The meter's sentence about its energy (the model, for an estimate).
    """

    energy_source: str = "unknown"
    device_name: str = ""
    note: str = ""

    @property
    def measured(self) -> bool:
        """True only for a counter the hardware keeps (NVML, RAPL)."""
        return self.energy_source in MEASURED_SOURCES

    @property
    def label(self) -> str:
        """A short tag for every line of output."""
        if self.energy_source == "estimated":
            return "[device power ESTIMATED, not measured]"
        if self.measured:
            return f"[device power measured: {self.energy_source}]"
        return "[device power source unknown: not known to be measured]"


def device_source(path: Path | str) -> DeviceSource:
    """The energy source of a harness run: from its summary, else its metadata, else unknown.

    Parameters
    ----------
    path : Path or str
        The harness ``--out`` file.
    """
    path = live_csv_path(path)
    for candidate in (summary_path(path), meta_path(path)):
        try:
            doc = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("energy_source"):
            return DeviceSource(
                str(doc["energy_source"]), str(doc.get("device_name", "")), str(doc.get("energy_note", ""))
            )
    return DeviceSource()


def _cumulative_energy_j(t: np.ndarray, samples: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Times and cumulative energy: the energy column where recorded, else integrated power."""
    energy = samples["energy_j"].to_numpy(dtype=np.float64)
    ok = np.isfinite(energy)
    if np.count_nonzero(ok) >= 2:
        return t[ok], energy[ok]
    power = samples["power_w"].to_numpy(dtype=np.float64)
    ok = np.isfinite(power)
    if np.count_nonzero(ok) < 2:
        raise TraceFormatError("harness samples", "need an energy or a power value at two or more times")
    tp, pp = t[ok], power[ok]
    steps = 0.5 * (pp[1:] + pp[:-1]) * np.diff(tp)  # trapezoid, as NvmlMeter integrates
    return tp, np.concatenate(([0.0], np.cumsum(steps)))


def device_intervals(samples: pd.DataFrame, interval_s: float = 1.0) -> pd.DataFrame:
    """Energy, mean power and tokens of the measured device per complete interval.

    Parameters
    ----------
    samples : pandas.DataFrame
        Harness rows (:data:`~twin.harness.io.HARNESS_COLUMNS`, at least ``time_s``,
        ``gpu_index``, ``energy_j`` or ``power_w``, and ``tokens``), one device.
    interval_s : float
        Interval length. [s]

    Returns
    -------
    pandas.DataFrame
        One row per interval ``[k * interval_s, (k + 1) * interval_s)`` that ends at or before
        the last sample: ``time_s`` (start) [s], ``duration_s`` [s], ``device_energy_j`` [J],
        ``device_power_w`` (energy / duration) [W], ``device_tokens`` and
        ``device_tokens_per_s`` [1/s]. Empty when no interval is complete yet.

    Raises
    ------
    TraceFormatError
        If the samples hold more than one device, or times go backwards.
    """
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    columns = ["time_s", "duration_s", "device_energy_j", "device_power_w", "device_tokens", "device_tokens_per_s"]
    if samples.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    gpus = np.unique(samples["gpu_index"].to_numpy())
    if gpus.size > 1:
        raise TraceFormatError("harness samples", f"expected one device, got gpu_index {sorted(gpus.tolist())}")
    t = samples["time_s"].to_numpy(dtype=np.float64)
    if np.any(np.diff(t) < 0):
        raise TraceFormatError("harness samples", "time_s must not decrease")
    t = t - t[0]
    n = math.floor(t[-1] / interval_s + 1e-9)
    if n < 1:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    edges = interval_s * np.arange(n + 1)
    te, energy = _cumulative_energy_j(t, samples)
    e_edges = np.interp(edges, te, energy)
    tokens = np.nan_to_num(samples["tokens"].to_numpy(dtype=np.float64))
    c_edges = np.interp(edges, t, np.cumsum(tokens))
    e = np.diff(e_edges)
    tok = np.diff(c_edges)
    return pd.DataFrame(
        {
            "time_s": edges[:-1],
            "duration_s": np.full(n, interval_s),
            "device_energy_j": e,
            "device_power_w": e / interval_s,
            "device_tokens": tok,
            "device_tokens_per_s": tok / interval_s,
        }
    )


def write_replay(path: Path, intervals: pd.DataFrame) -> None:
    """The interval powers as a telemetry CSV (format ``harness``) the replay pool reads."""
    power = intervals["device_power_w"].to_numpy(dtype=np.float64)
    t = intervals["time_s"].to_numpy(dtype=np.float64)
    # One row past the end repeats the last value: the replay needs two sample times even for a
    # single interval, and the run ends before that row's interval begins.
    step = float(intervals["duration_s"].iloc[0])
    frame = pd.DataFrame(
        {
            "time_s": np.append(t, t[-1] + step),
            "gpu_index": 0,
            "power_w": np.append(power, power[-1]),
        }
    )
    atomic_write_frame(path, frame)


__all__ = ["MEASURED_SOURCES", "DeviceSource", "device_intervals", "device_source", "write_replay"]
