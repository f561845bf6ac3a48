"""Workload: trace readers, trace controls, synthetic generators and binning for the engine.

Readers return ``(data, meta)`` in the common schema of :mod:`twin.workload.schema` (SI units,
standard column names); raw source names and units never leave this package.

- Readers: :func:`read_trace` (by name or sniffed from the header) and the registry
  :data:`READERS`: ``azure-llm``, ``burstgpt``, ``mooncake`` (requests), ``nvidia-smi``,
  ``dcgm``, ``harness`` (telemetry; the last is the twin's own schema, as ``twin harness``
  writes it), ``jobs`` and ``generic`` (any kind, explicit column mapping).
- Controls (:mod:`twin.workload.controls`): :func:`scale_time`, :func:`scale_rate`,
  :func:`loop_trace`, :func:`offset_copies`, :func:`copy_offsets_s`.
- Generators (:mod:`twin.workload.synthetic`): :func:`poisson_requests`,
  :func:`diurnal_requests`, :func:`gamma_requests`, :func:`mmpp2_requests`, the fluid
  :func:`expected_rate` and :func:`expected_request_bins`, token samplers
  :class:`LognormalTokens` and :class:`EmpiricalTokens`.
- Binning (:mod:`twin.workload.binning`): :func:`bin_requests` -> :class:`RequestBins`,
  :func:`resample_telemetry`.
- Periodic lookups (:mod:`twin.workload.periodic`): :class:`PeriodicEvents` and
  :class:`PeriodicSignal` give any window of a shifted, looped copy of a trace without copying
  it (what the engine uses per tick and server).
- Built-in traces (:mod:`twin.workload.builtin`): :data:`BUILTIN_TRACES`, :func:`resolve_trace`.
"""

from twin.workload.binning import RequestBins, bin_requests, resample_telemetry
from twin.workload.builtin import BUILTIN_TRACES, resolve_trace
from twin.workload.controls import (
    copy_offsets_s,
    loop_trace,
    offset_copies,
    scale_rate,
    scale_time,
    trace_period_s,
)
from twin.workload.generic import read_generic
from twin.workload.jobs import read_jobs
from twin.workload.periodic import PeriodicEvents, PeriodicSignal
from twin.workload.readers import FORMAT_KIND, READERS, read_trace, sniff_format
from twin.workload.requests import AZURE_LLM_2023, read_azure_llm, read_burstgpt, read_mooncake
from twin.workload.schema import (
    JOB_COLUMNS,
    REQUEST_COLUMNS,
    TELEMETRY_COLUMNS,
    TraceMeta,
)
from twin.workload.synthetic import (
    EmpiricalTokens,
    LognormalTokens,
    TokenSampler,
    diurnal_requests,
    expected_rate,
    expected_request_bins,
    expected_requests,
    gamma_requests,
    mmpp2_requests,
    poisson_arrivals_s,
    poisson_requests,
)
from twin.workload.telemetry import read_dcgm, read_harness_telemetry, read_nvidia_smi

__all__ = [
    "AZURE_LLM_2023",
    "BUILTIN_TRACES",
    "FORMAT_KIND",
    "JOB_COLUMNS",
    "READERS",
    "REQUEST_COLUMNS",
    "TELEMETRY_COLUMNS",
    "EmpiricalTokens",
    "LognormalTokens",
    "PeriodicEvents",
    "PeriodicSignal",
    "RequestBins",
    "TokenSampler",
    "TraceMeta",
    "bin_requests",
    "copy_offsets_s",
    "diurnal_requests",
    "expected_rate",
    "expected_request_bins",
    "expected_requests",
    "gamma_requests",
    "loop_trace",
    "mmpp2_requests",
    "offset_copies",
    "poisson_arrivals_s",
    "poisson_requests",
    "read_azure_llm",
    "read_burstgpt",
    "read_dcgm",
    "read_generic",
    "read_harness_telemetry",
    "read_jobs",
    "read_mooncake",
    "read_nvidia_smi",
    "read_trace",
    "resample_telemetry",
    "resolve_trace",
    "scale_rate",
    "scale_time",
    "sniff_format",
    "trace_period_s",
]
