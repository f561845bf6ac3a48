"""The registry of trace readers and :func:`read_trace`, which picks one by name or by header."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from twin.errors import TraceFormatError, UnknownNameError
from twin.workload._parse import PathLike, not_utf8
from twin.workload.generic import read_generic
from twin.workload.jobs import VARIABLE_MAP as JOB_MAP
from twin.workload.jobs import read_jobs
from twin.workload.requests import read_azure_llm, read_burstgpt, read_mooncake
from twin.workload.schema import TraceMeta
from twin.workload.telemetry import VARIABLE_MAP as TELEMETRY_MAP
from twin.workload.telemetry import read_dcgm, read_harness_telemetry, read_nvidia_smi

Reader = Callable[..., tuple[pd.DataFrame, TraceMeta]]

#: Format name -> reader. Each returns ``(data, meta)`` in the standard schema.
READERS: dict[str, Reader] = {
    "azure-llm": read_azure_llm,
    "burstgpt": read_burstgpt,
    "mooncake": read_mooncake,
    "nvidia-smi": read_nvidia_smi,
    "dcgm": read_dcgm,
    "harness": read_harness_telemetry,
    "jobs": read_jobs,
    "generic": read_generic,
}

#: Which standard frame each format gives.
FORMAT_KIND: dict[str, str] = {
    "azure-llm": "requests",
    "burstgpt": "requests",
    "mooncake": "requests",
    "nvidia-smi": "telemetry",
    "dcgm": "telemetry",
    "harness": "telemetry",
    "jobs": "jobs",
    "generic": "any (kind=...)",
}

_SNIFF_LINES = 5


def _head(path: PathLike) -> list[str]:
    """The first non-blank lines, stripped; a file that is not UTF-8 text or holds NUL bytes raises."""
    lines: list[str] = []
    try:
        with Path(path).open(encoding="utf-8-sig") as fh:
            for line_no, line in enumerate(fh, start=1):
                if "\x00" in line:
                    raise TraceFormatError(str(path), "not a text file: it holds NUL bytes", line=line_no)
                if line.strip():
                    lines.append(line.strip())
                if len(lines) >= _SNIFF_LINES:
                    break
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from exc
    except OSError as exc:
        raise TraceFormatError(str(path), f"cannot read the file: {exc}") from exc
    return lines


def sniff_format(path: PathLike) -> str:
    """Guess a trace's format from its first lines.

    Parameters
    ----------
    path : str or Path
        The trace file.

    Returns
    -------
    str
        A key of :data:`READERS` (never ``"generic"``, which needs a column mapping).

    Raises
    ------
    TraceFormatError
        The header matches no known format; the message lists the valid formats.
    """
    head = _head(path)
    if not head:
        raise TraceFormatError(str(path), "expected a trace, got an empty file")
    first = head[0]
    names = {c.strip().split(" [")[0].strip().lower() for c in first.split(",")}
    if first.startswith("{") and '"input_length"' in first:
        return "mooncake"
    if {"timestamp", "contexttokens", "generatedtokens"} <= names:
        return "azure-llm"
    if {"timestamp", "request tokens", "response tokens"} <= names:
        return "burstgpt"
    if "DCGM_FI_" in "\n".join(head):
        return "dcgm"
    if {"time_s", "gpu_index"} <= names and names & {"power_w", "utilization", "energy_j"}:
        return "harness"
    smi_fields = {k.lower() for k in TELEMETRY_MAP["nvidia-smi"]} - {"timestamp", "index"}
    if names & smi_fields:
        return "nvidia-smi"
    job_map = JOB_MAP["jobs"]
    standards = {job_map[n] for n in names if n in job_map}
    if {"start_s", "gpus"} <= standards and standards & {"end_s", "duration_s"}:
        return "jobs"
    valid = ", ".join(sorted(k for k in READERS if k != "generic"))
    raise TraceFormatError(
        str(path),
        f"could not recognise the trace format from the header {first[:120]!r}; pass "
        f"format= one of: {valid}, or format='generic' with kind= and columns=",
        line=1,
    )


def read_trace(path: PathLike, format: str | None = None, **kwargs: Any) -> tuple[pd.DataFrame, TraceMeta]:
    """Read any supported trace into the standard schema.

    Parameters
    ----------
    path : str or Path
        The trace file.
    format : str, optional
        A key of :data:`READERS`; when None the format is sniffed from the header.
    **kwargs
        Passed to the reader (e.g. ``model="GPT-4"`` for BurstGPT, ``kind`` and ``columns``
        for ``"generic"``).

    Returns
    -------
    data : pandas.DataFrame
        Standard request, telemetry or job frame (see :data:`FORMAT_KIND`).
    meta : TraceMeta
        What the reader knows beyond the rows.

    Raises
    ------
    UnknownNameError
        ``format`` is not a key of :data:`READERS` (the message lists them).
    TraceFormatError
        The format could not be sniffed, or the file is malformed.
    """
    if format is None:
        format = sniff_format(path)
    if format not in READERS:
        raise UnknownNameError("trace format", format, list(READERS))
    return READERS[format](path, **kwargs)
