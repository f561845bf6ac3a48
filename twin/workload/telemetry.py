"""Readers of GPU telemetry: nvidia-smi CSV, DCGM CSV and the twin's own schema.

nvidia-smi ``--query-gpu`` CSV, DCGM CSV (dcgmi / dcgm-exporter dumps) and CSV already in the
twin's telemetry schema (``twin harness`` output) are read.

Each reader returns ``(data, meta)`` with the telemetry columns of :mod:`twin.workload.schema`
in SI units: percentages become fractions 0..1, MHz become Hz, mJ become J, and the cumulative
energy counter is rebased to 0 J at each GPU's first sample. Rows are sorted by time, then GPU
(stable); ``time_s`` is seconds after the first sample. Values that the tool could not read
(``[N/A]``, ``[Not Supported]``, ``N/A``, empty) become NaN; any other unparsable value raises
:class:`~twin.errors.TraceFormatError` naming the file, line and field. So does a value outside
its physical range (:data:`PLAUSIBLE_RANGES`: utilisation 0..100 %, power 0..5 kW, ...), a GPU
index beyond :data:`~twin.workload._parse.MAX_COUNT`, and a cumulative energy counter that
decreases within one GPU (a reset cannot be rebased safely).

References
----------
.. [1] NVIDIA, "nvidia-smi" manual page and ``nvidia-smi --help-query-gpu`` (field names and
   units of ``--query-gpu``; ``--format=csv[,noheader][,nounits]``).
.. [2] NVIDIA, "DCGM field identifiers" (dcgm_fields.h) and dcgm-exporter
   ``etc/default-counters.csv``: ``DCGM_FI_DEV_POWER_USAGE`` [W],
   ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` [mJ since boot], ``DCGM_FI_DEV_GPU_UTIL`` [%],
   ``DCGM_FI_PROF_DRAM_ACTIVE`` [ratio], ``DCGM_FI_DEV_GPU_TEMP`` [C],
   ``DCGM_FI_DEV_SM_CLOCK`` and ``DCGM_FI_DEV_MEM_CLOCK`` [MHz].
.. [3] NVIDIA, "NVML API reference", ``nvmlDeviceGetTotalEnergyConsumption``: energy in mJ
   since the driver was loaded, an ``unsigned long long`` (at most 2**64 mJ).
.. [4] Board power of the largest accelerators, from their datasheets: NVIDIA B200 1000 W,
   GB200 1200 W per GPU, B300 1400 W; AMD MI355X 1400 W.
.. [5] JEDEC JESD22-A108 / AEC-Q100 grade 0: silicon junction temperatures of -40..150 C are
   the widest rated operating range of packaged parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from twin._types import IntArray
from twin.workload._frames import telemetry_frame
from twin.workload._parse import (
    PathLike,
    Source,
    TimeOrigin,
    check_range,
    nonneg_ints,
    numbers,
    pick_columns,
    read_csv,
    regex_groups,
    require_columns,
    strip_unit,
    times,
)
from twin.workload.schema import TELEMETRY_COLUMNS, TraceMeta

#: Source column -> standard column, per format. Where several source names map to one
#: standard column, the first one present in the file is used.
VARIABLE_MAP: dict[str, dict[str, str]] = {
    "nvidia-smi": {
        "timestamp": "time_s",
        "index": "gpu_index",
        "power.draw": "power_w",
        "power.draw.instant": "power_w",
        "power.draw.average": "power_w",
        "utilization.gpu": "utilization",
        "utilization.memory": "memory_utilization",
        "temperature.gpu": "temperature_c",
        "clocks.sm": "sm_clock_hz",
        "clocks.current.sm": "sm_clock_hz",
        "clocks.mem": "mem_clock_hz",
        "clocks.current.memory": "mem_clock_hz",
        "power.limit": "power_limit_w",
        "enforced.power.limit": "power_limit_w",
    },
    "dcgm": {
        "timestamp": "time_s",
        "time": "time_s",
        "ts": "time_s",
        "gpu": "gpu_index",
        "gpu_index": "gpu_index",
        "gpu_id": "gpu_index",
        "entity": "gpu_index",
        "entity_id": "gpu_index",
        "device": "gpu_index",
        "DCGM_FI_DEV_POWER_USAGE": "power_w",
        "DCGM_FI_DEV_POWER_USAGE_INSTANT": "power_w",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "energy_j",
        "DCGM_FI_DEV_GPU_UTIL": "utilization",
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "utilization",
        "DCGM_FI_PROF_DRAM_ACTIVE": "memory_utilization",
        "DCGM_FI_DEV_MEM_COPY_UTIL": "memory_utilization",
        "DCGM_FI_DEV_GPU_TEMP": "temperature_c",
        "DCGM_FI_DEV_SM_CLOCK": "sm_clock_hz",
        "DCGM_FI_DEV_MEM_CLOCK": "mem_clock_hz",
        "DCGM_FI_DEV_POWER_MGMT_LIMIT": "power_limit_w",
        "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": "power_limit_w",
    },
}

_POWER = {"W": 1.0, "mW": 1e-3, "kW": 1e3}
_CLOCK = {"MHz": 1e6, "GHz": 1e9, "kHz": 1e3, "Hz": 1.0}
_PERCENT = {"%": 0.01}
#: Units a value (or its header) may carry, per standard column, and their SI factor.
UNITS: dict[str, dict[str, float]] = {
    "power_w": _POWER,
    "power_limit_w": _POWER,
    "energy_j": {"J": 1.0, "mJ": 1e-3, "kJ": 1e3},
    "utilization": _PERCENT,
    "memory_utilization": _PERCENT,
    "temperature_c": {"C": 1.0},
    "sm_clock_hz": _CLOCK,
    "mem_clock_hz": _CLOCK,
}
#: Unit nvidia-smi uses for each standard column when neither header nor value names one.
NVIDIA_SMI_DEFAULT_UNIT: dict[str, str] = {
    "power_w": "W",
    "power_limit_w": "W",
    "utilization": "%",
    "memory_utilization": "%",
    "temperature_c": "C",
    "sm_clock_hz": "MHz",
    "mem_clock_hz": "MHz",
}
#: SI factor of each DCGM field (DCGM writes bare numbers in the field's fixed unit).
DCGM_FACTOR: dict[str, float] = {
    "DCGM_FI_DEV_POWER_USAGE": 1.0,  # W
    "DCGM_FI_DEV_POWER_USAGE_INSTANT": 1.0,  # W
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 1e-3,  # mJ -> J
    "DCGM_FI_DEV_GPU_UTIL": 0.01,  # % -> 1
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 1.0,  # ratio
    "DCGM_FI_PROF_DRAM_ACTIVE": 1.0,  # ratio
    "DCGM_FI_DEV_MEM_COPY_UTIL": 0.01,  # % -> 1
    "DCGM_FI_DEV_GPU_TEMP": 1.0,  # C
    "DCGM_FI_DEV_SM_CLOCK": 1e6,  # MHz -> Hz
    "DCGM_FI_DEV_MEM_CLOCK": 1e6,  # MHz -> Hz
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": 1.0,  # W
    "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": 1.0,  # W
}
#: Physical range of each telemetry column in SI units, and how the range is written in an
#: error. A value outside is a corrupt cell or a unit mix-up, never a measurement:
#:
#: - utilisations are fractions of time (nvidia-smi and DCGM report 0..100 % or a 0..1 ratio);
#: - power draw and power limits are >= 0 and below 5 kW per GPU: the largest accelerators draw
#:   1.0-1.4 kW [4], so 5 kW leaves room for the next generations and still catches a value
#:   written in mW under a W header;
#: - the energy counter is >= 0 and at most 2**64 mJ, the range of NVML's counter [3];
#: - temperatures are within -40..150 C, the widest rated junction range of silicon [5];
#: - clocks are within 0..100 GHz: GPU clocks are 1-3 GHz for SMs and up to about 15 GHz for
#:   GDDR memory as nvidia-smi reports it, so 100 GHz only catches corrupt cells and Hz written
#:   as MHz.
PLAUSIBLE_RANGES: dict[str, tuple[float, float, str]] = {
    "power_w": (0.0, 5e3, "0..5000 W"),
    "power_limit_w": (0.0, 5e3, "0..5000 W"),
    "energy_j": (0.0, 2.0**64 * 1e-3, "0..1.8e16 J (the NVML counter's range)"),
    "utilization": (0.0, 1.0, "0..100 % (a ratio 0..1)"),
    "memory_utilization": (0.0, 1.0, "0..100 % (a ratio 0..1)"),
    "temperature_c": (-40.0, 150.0, "-40..150 C"),
    "sm_clock_hz": (0.0, 1e11, "0..100 GHz"),
    "mem_clock_hz": (0.0, 1e11, "0..100 GHz"),
}


def check_plausible(
    source: Source,
    standard: str,
    values: np.ndarray,
    raw: pd.Series,
    field: str,
    positions: np.ndarray | None = None,
) -> None:
    """Raise at the first value of ``standard`` (SI) outside :data:`PLAUSIBLE_RANGES`."""
    lo, hi, text = PLAUSIBLE_RANGES[standard]
    check_range(source, values, raw, field, lo, hi, f"{standard} in {text}", positions)


#: Column names that hold the field name in a long ("tidy") DCGM dump.
DCGM_LONG_FIELD_COLUMNS: tuple[str, ...] = ("field", "metric", "__name__", "field_name", "name")

_GPU_LABEL = r"(?i)^\s*(?:gpu|nvidia)?\s*[-_:#]?\s*(?P<index>\d+)\s*$"


def _gpu_indices(source: Source, raw: pd.Series, field: str, positions: np.ndarray | None = None) -> IntArray:
    """Parse GPU indices written as ``0`` or labelled ``GPU 0`` / ``gpu0`` / ``nvidia0``."""
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return nonneg_ints(source, raw, field, positions)
    digits = regex_groups(raw.astype("str"), _GPU_LABEL)["index"]
    source.fail_first(digits.isna().to_numpy(dtype=bool), raw, field, "a GPU index like 0 or 'GPU 0'", positions)
    # The digits may be many: parse them with the bound, never with a cast that can overflow.
    index = nonneg_ints(source, digits, field, positions)
    return index


def read_nvidia_smi(path: PathLike, *, fields: Sequence[str] | None = None) -> tuple[pd.DataFrame, TraceMeta]:
    """Read the CSV written by ``nvidia-smi --query-gpu=... --format=csv``.

    Parameters
    ----------
    path : str or Path
        CSV from ``--format=csv`` (values carry units: ``312.45 W``, ``87 %``, ``1980 MHz``) or
        ``--format=csv,nounits``; the header is like ``timestamp, index, power.draw [W], ...``.
        Any subset and order of the fields in :data:`VARIABLE_MAP` is read; ``timestamp``
        (``2024/05/01 12:00:00.123``) is required, ``index`` defaults to GPU 0.
    fields : sequence of str, optional
        The ``--query-gpu`` field list, for files written with ``noheader``.

    Returns
    -------
    data : pandas.DataFrame
        Telemetry frame (``energy_j`` is NaN: nvidia-smi has no energy counter field).
    meta : TraceMeta
        ``start`` is the wall-clock time of the first sample (local time, as nvidia-smi
        writes it); ``extra["columns"]`` maps each standard column to the source column read.
    """
    fmt = "nvidia-smi"
    source = Source(path, header=fields is None)
    if fields is None:
        frame = read_csv(source, skipinitialspace=True, dtype="str")
    else:
        frame = read_csv(source, skipinitialspace=True, dtype="str", header=None, names=list(fields))
    chosen = pick_columns(frame, VARIABLE_MAP[fmt])
    if "time_s" not in chosen:
        found = ", ".join(repr(c) for c in frame.columns)
        source.fail(-1 if fields is None else None, "timestamp", f"missing column; found {found}")
    t, origin = times(source, frame[chosen["time_s"]], chosen["time_s"])
    columns: dict[str, np.ndarray] = {"time_s": t}
    if "gpu_index" in chosen:
        columns["gpu_index"] = _gpu_indices(source, frame[chosen["gpu_index"]], chosen["gpu_index"])
    else:
        columns["gpu_index"] = np.zeros(len(frame), dtype=np.int64)
    for standard, col in chosen.items():
        if standard in ("time_s", "gpu_index"):
            continue
        header_unit = strip_unit(col)[1]
        units = UNITS[standard]
        unit = header_unit if header_unit else NVIDIA_SMI_DEFAULT_UNIT[standard]
        if unit not in units:
            source.fail(
                -1 if fields is None else None,
                col,
                f"expected a unit in {sorted(units)} for {standard}, got {unit!r}",
            )
        columns[standard] = numbers(source, frame[col], col, units=units, factor=units[unit], allow_missing=True)
        check_plausible(source, standard, columns[standard], frame[col], col)
    return telemetry_frame(source, columns, fmt=fmt, origin=origin, extra={"columns": dict(chosen)})


def _time_and_gpu(
    source: Source,
    frame: pd.DataFrame,
    chosen: Mapping[str, str],
    *,
    time_unit_s: float,
    time_format: str | None,
) -> tuple[np.ndarray, np.ndarray, TimeOrigin | None]:
    if "time_s" not in chosen:
        found = ", ".join(repr(c) for c in frame.columns)
        source.fail(-1, "timestamp", f"missing time column; found {found}")
    c_time = chosen["time_s"]
    t, origin = times(source, frame[c_time], c_time, time_format=time_format, numeric_unit_s=time_unit_s)
    if "gpu_index" in chosen:
        gpu = _gpu_indices(source, frame[chosen["gpu_index"]], chosen["gpu_index"])
    else:
        gpu = np.zeros(len(frame), dtype=np.int64)
    return t, gpu, origin


def read_dcgm(
    path: PathLike, *, time_unit_s: float = 1.0, time_format: str | None = None
) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a DCGM telemetry CSV (a dcgmi or dcgm-exporter dump written as CSV).

    Parameters
    ----------
    path : str or Path
        Either *wide* CSV, one row per sample and GPU, with a time column (``timestamp``,
        ``time`` or ``ts``), a GPU column (``gpu``, ``gpu_index``, ``entity``, ``device``; values
        ``0`` or ``GPU 0``; default GPU 0) and one column per DCGM field named as in
        :data:`DCGM_FACTOR` (``DCGM_FI_DEV_POWER_USAGE``, ...); or *long* CSV with a time
        column, a GPU column, a field-name column (``field``, ``metric``, ``__name__``) and a
        ``value`` column, as a Prometheus query export gives. Unknown fields are ignored.
    time_unit_s : float
        Seconds per unit of a numeric time column (1 for epoch seconds, 1e-3 for ms).
    time_format : str, optional
        strftime layout of a text time column, when it is not ISO 8601.

    Returns
    -------
    data : pandas.DataFrame
        Telemetry frame in SI units.
    meta : TraceMeta
        ``extra["columns"]`` maps each standard column to the DCGM field read.
    """
    fmt = "dcgm"
    source = Source(path)
    frame = read_csv(source, dtype="str")
    chosen = pick_columns(frame, VARIABLE_MAP[fmt])
    t, gpu, origin = _time_and_gpu(source, frame, chosen, time_unit_s=time_unit_s, time_format=time_format)
    lower = {c.lower(): c for c in frame.columns}
    field_col = next((lower[c] for c in DCGM_LONG_FIELD_COLUMNS if c in lower), None)
    columns: dict[str, np.ndarray] = {}
    extra: dict[str, object] = {}
    positions = None
    if field_col is not None and "value" in lower:
        # Long form: parse every value where it stands, then pivot to one row per time and GPU.
        names = frame[field_col].astype("str").str.strip().str.upper()
        factor = names.map(DCGM_FACTOR).astype("float64")
        known = factor.notna().to_numpy(dtype=bool)
        value = numbers(source, frame[lower["value"]], lower["value"], allow_missing=True)
        with np.errstate(over="ignore"):
            value = value * factor.to_numpy(dtype=np.float64)
        _check_long(source, names, value, frame[lower["value"]], lower["value"])
        long = pd.DataFrame({"t": t, "gpu": gpu, "field": names, "value": value, "pos": np.arange(len(t))}).loc[known]
        wide = long.groupby(["t", "gpu", "field"])["value"].last().unstack("field")
        positions = long.groupby(["t", "gpu"])["pos"].min().reindex(wide.index).to_numpy()
        columns["time_s"] = wide.index.get_level_values("t").to_numpy(dtype=np.float64)
        columns["gpu_index"] = wide.index.get_level_values("gpu").to_numpy(dtype=np.int64)
        fields = pick_columns(wide, {k: v for k, v in VARIABLE_MAP[fmt].items() if k in DCGM_FACTOR})
        for standard, col in fields.items():
            columns[standard] = wide[col].to_numpy(dtype=np.float64)
        extra["layout"] = "long"
    else:
        columns["time_s"], columns["gpu_index"] = t, gpu
        fields = {k: v for k, v in chosen.items() if k not in ("time_s", "gpu_index")}
        for standard, col in fields.items():
            columns[standard] = numbers(source, frame[col], col, factor=DCGM_FACTOR[col.upper()], allow_missing=True)
            check_plausible(source, standard, columns[standard], frame[col], col)
        extra["layout"] = "wide"
    extra["columns"] = dict(fields)
    if "energy_j" in fields:
        extra["energy_field"] = fields["energy_j"]
    return telemetry_frame(source, columns, fmt=fmt, origin=origin, positions=positions, extra=extra)


#: DCGM field name (upper case) -> standard column, for the range check of a long dump.
_DCGM_STANDARD: dict[str, str] = {k.upper(): v for k, v in VARIABLE_MAP["dcgm"].items() if k in DCGM_FACTOR}


def _check_long(source: Source, names: pd.Series, value: np.ndarray, raw: pd.Series, field: str) -> None:
    """Range-check a long DCGM dump row by row (each row's field name gives its range)."""
    standard = names.map(_DCGM_STANDARD)
    lo = standard.map({k: r[0] for k, r in PLAUSIBLE_RANGES.items()}).to_numpy(dtype=np.float64, na_value=np.nan)
    hi = standard.map({k: r[1] for k, r in PLAUSIBLE_RANGES.items()}).to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(value) & ~np.isnan(lo) & ((value < lo) | (value > hi * (1 + 1e-9)))
    if bad.any():
        i = int(np.argmax(bad))
        std = str(standard.iloc[i])
        source.fail(
            i,
            field,
            f"expected {names.iloc[i]} ({std}) in {PLAUSIBLE_RANGES[std][2]}, got {raw.iloc[i]!r} "
            f"(x {DCGM_FACTOR[str(names.iloc[i])]:g} to SI)",
        )


#: Columns a file in the twin's own telemetry schema must have (the rest default to NaN).
HARNESS_REQUIRED: tuple[str, ...] = ("time_s", "gpu_index")


def read_harness_telemetry(path: PathLike) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a CSV already in the twin's telemetry schema, as ``twin harness`` writes it.

    Parameters
    ----------
    path : str or Path
        CSV with the header names of :data:`~twin.workload.schema.TELEMETRY_COLUMNS` (SI units,
        times in seconds); ``time_s`` and ``gpu_index`` are required, other telemetry columns
        are optional (NaN when absent). The harness's ``tokens`` and ``phase`` columns, and any
        other column, are ignored here (read them with :func:`twin.harness.io.read_harness`).

    Returns
    -------
    data : pandas.DataFrame
        Telemetry frame; times after the first sample, energy rebased to 0 J per GPU.
    meta : TraceMeta
        ``extra["columns"]`` lists the telemetry columns the file had.
    """
    fmt = "harness"
    source = Source(path)
    frame = read_csv(source, dtype="str")
    require_columns(source, frame, HARNESS_REQUIRED, "telemetry")
    t, origin = times(source, frame["time_s"], "time_s", numeric_only=True)
    columns: dict[str, np.ndarray] = {"time_s": t, "gpu_index": nonneg_ints(source, frame["gpu_index"], "gpu_index")}
    present = [c for c in TELEMETRY_COLUMNS[2:] if c in frame.columns]
    for name in present:
        columns[name] = numbers(source, frame[name], name, allow_missing=True)
        check_plausible(source, name, columns[name], frame[name], name)
    return telemetry_frame(source, columns, fmt=fmt, origin=origin, extra={"columns": present})
