"""The accelerator power model against measured GPU power, given measured utilisation and clock.

For every telemetry sample the twin's power model (:func:`twin.physics.accelerator.accelerator_power_w`)
is evaluated with the activity the sample reports, and compared with the power the sample measured.
The error measure is the mean absolute percentage error, ``MAPE = mean(|P_model - P_meas| / P_meas)``
in per cent, with the signed mean (bias) beside it.

How telemetry fields map onto the model's inputs (documented choices; ``nvidia-smi`` and NVML give
no SM-activity counter):

``busy``
    ``utilization`` (nvidia-smi ``utilization.gpu``, NVML, DCGM ``GPU_UTIL`` or ``GR_ENGINE_ACTIVE``):
    the fraction of time a kernel ran, which is the model's definition.
``mem_activity``
    ``memory_utilization`` (nvidia-smi ``utilization.memory``: time the memory was read or written;
    DCGM ``DRAM_ACTIVE``: fraction of cycles the DRAM interface was active). Where a file records
    none at all it is taken as 0, and the comparison says so.
SM activity at the measured clock
    ``sm_activity_per_busy * utilization`` (default 1: every SM busy while a kernel runs, an upper
    bound for memory-bound work). The model's ``s_1`` (activity at boost clock) is that times the
    clock fraction, so the model's ``s_f`` equals the measured activity.
``clock_fraction``
    ``sm_clock_hz / boost_clock_hz``; the boost clock defaults to the highest SM clock in the file
    (one SKU per file; an underestimate of the boost clock if no GPU reached it). Without a clock
    column the clock fraction is 1.

Rows without a measured power above 0 W, or without a utilisation, are left out. In a harness
file the first sample of each GPU is left out too (its power covers no interval), and a file whose
power the harness *estimated* (no energy counter) is flagged: comparing it is model against model.

There is no real GPU telemetry in the project's shared traces yet, so no real-data MAPE is
reported; :func:`compare_power_file` runs on any file the readers understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin._types import FloatArray
from twin.catalog import AcceleratorSpec, accelerator_spec
from twin.errors import TraceFormatError, TwinError
from twin.physics.accelerator import accelerator_power_w


@dataclass(frozen=True)
class PowerComparison:
    """Modelled against measured power over the samples of one telemetry source.

    Attributes
    ----------
    source : str
        The file (or a label).
    accelerator : str
        The accelerator entry whose parameters the model used.
    n_samples : int
        Samples compared.
    mape_pct : float
        Mean absolute percentage error. [%]
    bias_pct : float
        Mean signed percentage error, model minus measured. [%]
    measured : bool
        False when the file's power is itself an estimate (a harness run with no energy counter).
    samples : pandas.DataFrame
        Per sample: ``time_s``, ``gpu_index``, ``power_w``, ``model_power_w``, ``ape_pct``.
    notes : list of str
        Assumptions the data forced (no memory activity, no clock column, ...).
    """

    source: str
    accelerator: str
    n_samples: int
    mape_pct: float
    bias_pct: float
    measured: bool
    samples: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """A flat record for tables."""
        return {
            "source": self.source,
            "accelerator": self.accelerator,
            "n_samples": self.n_samples,
            "mape_pct": self.mape_pct,
            "bias_pct": self.bias_pct,
            "measured": self.measured,
            "notes": " ".join(self.notes),
        }


def modelled_power_w(
    spec: AcceleratorSpec,
    utilization: FloatArray,
    memory_utilization: FloatArray,
    clock_fraction: FloatArray,
    sm_activity_per_busy: float = 1.0,
) -> FloatArray:
    """The twin's board power for measured activity and clock (see the module docstring).

    Parameters
    ----------
    spec : AcceleratorSpec
        Accelerator parameters (catalog or calibration entry).
    utilization, memory_utilization : ndarray
        Measured kernel-busy and memory activity fractions. [0..1]
    clock_fraction : ndarray
        Measured SM clock over boost clock. [0..1]
    sm_activity_per_busy : float
        SM activity while a kernel runs, as a fraction of the utilisation. [0..1]

    Returns
    -------
    numpy.ndarray
        Board power. [W]

    Notes
    -----
    The board never draws more than its power limit (``max_power_w``): where the model's power at
    the measured activity and clock exceeds it, the limit is the model's answer (the measured clock
    already holds the governor's cut).

    Examples
    --------
    H100 (catalog): full activity at boost is held at the 700 W limit; no activity draws the idle
    power:

    >>> h100 = accelerator_spec("H100-SXM")
    >>> modelled_power_w(h100, np.array([1.0, 0.0]), np.array([1.0, 0.0]), np.array([1.0, 1.0])).round(3)
    array([700.,  70.])
    """
    u = np.clip(np.asarray(utilization, dtype=np.float64), 0.0, 1.0)
    f = np.clip(np.asarray(clock_fraction, dtype=np.float64), 1e-6, 1.0)
    s_measured = np.clip(sm_activity_per_busy * u, 0.0, 1.0)
    power = accelerator_power_w(
        u,
        np.clip(np.asarray(memory_utilization, dtype=np.float64), 0.0, 1.0),
        s_measured * f,  # s_1: the activity the same work needs at boost clock
        f,
        params=spec.power_params,
    )
    return np.asarray(np.minimum(power, spec.max_power_w))


def compare_power(
    telemetry: pd.DataFrame,
    spec: AcceleratorSpec,
    *,
    boost_clock_hz: float | None = None,
    sm_activity_per_busy: float = 1.0,
    source: str = "telemetry",
    measured: bool = True,
) -> PowerComparison:
    """Compare the power model with a telemetry frame in the twin's schema.

    Parameters
    ----------
    telemetry : pandas.DataFrame
        Telemetry columns of :mod:`twin.workload.schema` (``power_w`` and ``utilization``
        required; ``memory_utilization``, ``sm_clock_hz`` used when present).
    spec : AcceleratorSpec
        The accelerator the samples come from.
    boost_clock_hz : float, optional
        SM boost clock; by default the highest SM clock in the frame.
    sm_activity_per_busy : float
        See :func:`modelled_power_w`.
    source : str
        Label for the result.
    measured : bool
        Whether the frame's power was measured (False: an estimate; the result says so).

    Returns
    -------
    PowerComparison

    Raises
    ------
    TraceFormatError
        No sample has both a measured power above 0 and a utilisation.
    """
    notes: list[str] = []
    for col in ("power_w", "utilization"):
        if col not in telemetry.columns:
            raise TraceFormatError(source, f"telemetry lacks the column {col!r}")
    frame = telemetry.reset_index(drop=True)
    power = frame["power_w"].to_numpy(dtype=np.float64)
    util = frame["utilization"].to_numpy(dtype=np.float64)
    keep = np.isfinite(power) & (power > 0) & np.isfinite(util)
    mem_col = frame["memory_utilization"] if "memory_utilization" in frame.columns else None
    if mem_col is None or mem_col.isna().all():
        mem = np.zeros(len(frame))
        notes.append("no memory activity recorded: taken as 0.")
    else:
        mem = mem_col.to_numpy(dtype=np.float64)
        keep &= np.isfinite(mem)
    gpu = frame["gpu_index"].to_numpy() if "gpu_index" in frame.columns else np.zeros(len(frame), dtype=np.int64)
    clock_col = frame["sm_clock_hz"] if "sm_clock_hz" in frame.columns else None
    if clock_col is None or clock_col.isna().all():
        f = np.ones(len(frame))
        notes.append("no SM clock recorded: clock fraction taken as 1.")
    else:
        clock = clock_col.to_numpy(dtype=np.float64)
        keep &= np.isfinite(clock)
        if boost_clock_hz is None:
            peak = float(np.nanmax(clock))
            notes.append(f"boost clock = highest SM clock in the file ({peak / 1e6:.0f} MHz).")
        else:
            peak = float(boost_clock_hz)
        f = clock / peak if peak > 0 else np.ones_like(clock)
    if sm_activity_per_busy != 1.0:
        notes.append(f"SM activity = {sm_activity_per_busy:g} x utilisation.")
    if not measured:
        notes.append("power in this file is an ESTIMATE, not a measurement: model against model.")
    if not keep.any():
        raise TraceFormatError(source, "no sample has a measured power above 0 W and a utilisation")
    model = modelled_power_w(spec, util[keep], mem[keep], f[keep], sm_activity_per_busy)
    meas = power[keep]
    err = (model - meas) / meas
    samples = pd.DataFrame(
        {
            "time_s": (
                frame["time_s"].to_numpy(dtype=np.float64)[keep]
                if "time_s" in frame.columns
                else np.arange(int(keep.sum()), dtype=np.float64)
            ),
            "gpu_index": gpu[keep],
            "power_w": meas,
            "model_power_w": model,
            "ape_pct": 100.0 * np.abs(err),
        }
    )
    dropped = int((~keep).sum())
    if dropped:
        notes.append(f"{dropped} sample(s) without power, utilisation, memory activity or clock left out.")
    return PowerComparison(
        source=source,
        accelerator=spec.name,
        n_samples=int(keep.sum()),
        mape_pct=float(100.0 * np.mean(np.abs(err))),
        bias_pct=float(100.0 * np.mean(err)),
        measured=measured,
        samples=samples,
        notes=notes,
    )


def _is_harness(path: Path) -> bool:
    if path.suffix == ".parquet":
        return True
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        header = fh.readline()
    names = {c.strip() for c in header.split(",")}
    return {"phase", "tokens", "power_w"} <= names


def read_power_telemetry(path: Path | str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read harness output, an nvidia-smi CSV or a DCGM CSV into the telemetry schema.

    Returns
    -------
    data : pandas.DataFrame
        Telemetry rows (harness files: without each GPU's first sample).
    info : dict
        ``format``, ``measured`` (False for a harness run whose power is estimated) and
        ``device_name`` (harness runs only, else ``""``).
    """
    path = Path(path)
    if not path.exists():
        raise TraceFormatError(str(path), "no such file")
    if path.is_dir():
        raise TraceFormatError(str(path), "a folder; expected a telemetry file (nvidia-smi, DCGM or harness)")
    if _is_harness(path):
        from twin.harness.io import read_harness

        data, summary = read_harness(path)
        data = data[data.groupby("gpu_index").cumcount() > 0]
        source = str(summary.get("energy_source", "unknown"))
        info = {"format": "harness", "measured": source != "estimated", "device_name": summary.get("device_name", "")}
        return data, info
    from twin.workload import read_trace

    data, meta = read_trace(path)
    if meta.format not in ("nvidia-smi", "dcgm"):
        raise TraceFormatError(str(path), f"expected GPU telemetry (nvidia-smi or DCGM CSV), got a {meta.format} trace")
    return data, {"format": meta.format, "measured": True, "device_name": ""}


def resolve_accelerator(accelerator: str | AcceleratorSpec | None, device_name: str = "") -> AcceleratorSpec:
    """An accelerator entry from a catalog name, a calibration YAML path, or the device name."""
    if isinstance(accelerator, AcceleratorSpec):
        return accelerator
    if accelerator is None:
        from twin.harness.calibrate import guess_base

        base = guess_base(device_name) if device_name else None
        if base is None:
            raise TwinError(
                "name the accelerator the telemetry comes from (a catalog name such as H100-SXM, "
                f"or a calibration YAML){f'; device {device_name!r} matches no catalog entry' if device_name else ''}"
            )
        return accelerator_spec(base)
    if accelerator.endswith((".yaml", ".yml")) or Path(accelerator).is_file():
        from twin.harness.calibrate import load_calibration

        if not Path(accelerator).is_file():
            raise TwinError(f"{accelerator}: no such accelerator file (expected a `twin calibrate` YAML)")
        return load_calibration(accelerator)
    return accelerator_spec(accelerator)


def compare_power_file(
    path: Path | str,
    accelerator: str | AcceleratorSpec | None = None,
    *,
    boost_clock_hz: float | None = None,
    sm_activity_per_busy: float = 1.0,
) -> PowerComparison:
    """Read a telemetry file and compare the power model with it (see :func:`compare_power`).

    Parameters
    ----------
    path : str or Path
        Harness output (``twin harness --out``), an nvidia-smi ``--query-gpu`` CSV or a DCGM CSV.
    accelerator : str or AcceleratorSpec, optional
        Catalog name or calibration YAML; for harness runs the device name picks it by default.
    boost_clock_hz, sm_activity_per_busy
        As in :func:`compare_power`.
    """
    data, info = read_power_telemetry(path)
    spec = resolve_accelerator(accelerator, str(info["device_name"]))
    return compare_power(
        data,
        spec,
        boost_clock_hz=boost_clock_hz,
        sm_activity_per_busy=sm_activity_per_busy,
        source=str(path),
        measured=bool(info["measured"]),
    )


__all__ = [
    "PowerComparison",
    "compare_power",
    "compare_power_file",
    "modelled_power_w",
    "read_power_telemetry",
    "resolve_accelerator",
]
