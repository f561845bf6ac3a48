"""The common schemas every trace reader returns and every consumer reads.

A reader returns ``(data, meta)``: ``data`` is a :class:`pandas.DataFrame` with the standard
columns below (SI units, names carry units), ``meta`` a :class:`TraceMeta`. Raw source names and
units never leave ``twin.workload``.

Request trace (LLM inference requests), one row per request, sorted by ``arrival_s``:

===================  =======  ==========================================================
column               dtype    meaning
===================  =======  ==========================================================
``arrival_s``        float64  arrival time, seconds after the trace's first request [s]
``prompt_tokens``    int64    input (context) tokens, >= 0
``output_tokens``    int64    generated tokens, >= 0
===================  =======  ==========================================================

GPU telemetry, one row per sample and device, sorted by ``time_s`` then ``gpu_index``:

=======================  =======  ====================================================
column                   dtype    meaning
=======================  =======  ====================================================
``time_s``               float64  sample time, seconds after the first sample [s]
``gpu_index``            int64    device index within the source
``power_w``              float64  board power draw [W] (NaN if not recorded)
``energy_j``             float64  cumulative energy since the first sample [J] (NaN if absent)
``utilization``          float64  fraction of time a kernel ran, 0..1 (NaN if absent)
``memory_utilization``   float64  fraction of time memory was read/written, 0..1 (NaN)
``temperature_c``        float64  die temperature [C] (NaN if absent)
``sm_clock_hz``          float64  SM clock [Hz] (NaN if absent)
``mem_clock_hz``         float64  memory clock [Hz] (NaN if absent)
``power_limit_w``        float64  enforced power limit [W] (NaN if absent)
=======================  =======  ====================================================

Harness output adds ``tokens`` (float64, tokens generated since the previous sample) and
``phase`` (str: ``idle``, ``prefill``, ``decode``).

Job trace (training or batch jobs), one row per job, sorted by ``start_s``:

===============  =======  ====================================================
column           dtype    meaning
===============  =======  ====================================================
``job_id``       str      identifier from the source (row number if none)
``start_s``      float64  start time, seconds after the first job's start [s]
``end_s``        float64  end time [s], > ``start_s``
``gpus``         int64    GPUs the job holds, >= 1
===============  =======  ====================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

REQUEST_COLUMNS: tuple[str, ...] = ("arrival_s", "prompt_tokens", "output_tokens")
TELEMETRY_COLUMNS: tuple[str, ...] = (
    "time_s",
    "gpu_index",
    "power_w",
    "energy_j",
    "utilization",
    "memory_utilization",
    "temperature_c",
    "sm_clock_hz",
    "mem_clock_hz",
    "power_limit_w",
)
HARNESS_EXTRA_COLUMNS: tuple[str, ...] = ("tokens", "phase")
JOB_COLUMNS: tuple[str, ...] = ("job_id", "start_s", "end_s", "gpus")
#: Job columns present only when the trace has them: for a scheduler (:mod:`twin.workload.scheduler`).
JOB_OPTIONAL_COLUMNS: tuple[str, ...] = ("priority", "walltime_s")


@dataclass
class TraceMeta:
    """What a reader knows about the trace beyond its rows.

    Attributes
    ----------
    source : str
        Path (or name) of the file read.
    format : str
        Reader name, e.g. ``"azure-llm"``, ``"nvidia-smi"``.
    start : datetime | None
        Wall-clock time of ``t = 0``, when the source gives one.
    duration_s : float
        Span from the first to the last row [s].
    extra : dict
        Reader-specific facts (device name, energy source, licence note, ...).
    """

    source: str
    format: str
    start: datetime | None = None
    duration_s: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
