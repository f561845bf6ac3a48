"""Readers of LLM inference request traces: Azure LLM 2023/2024, BurstGPT, Mooncake.

Each reader returns ``(data, meta)``: ``data`` has the request columns of
:mod:`twin.workload.schema` (``arrival_s`` seconds after the first request, ``prompt_tokens``,
``output_tokens``), sorted by arrival; ``meta`` is a :class:`~twin.workload.schema.TraceMeta`.

Rows out of time order are sorted (stable) and counted in ``meta.extra["rows_out_of_order"]``.
A missing column, a missing, negative, non-integer or implausibly large token count (above
:data:`MAX_TOKENS_PER_REQUEST`), an unparsable timestamp, or a file that is not UTF-8 text
raises :class:`~twin.errors.TraceFormatError` naming the file, the 1-based line, the field and
what was expected.

References
----------
.. [1] P. Patel et al., "Splitwise: Efficient generative LLM inference using phase splitting",
   ISCA 2024; data: github.com/Azure/AzurePublicDataset, AzureLLMInferenceDataset2023.md
   (CC-BY 4.0).
.. [2] J. Stojkovic et al., "DynamoLLM: Designing LLM inference clusters for performance and
   energy efficiency", HPCA 2025; data: AzureLLMInferenceDataset2024.md (same columns).
.. [3] Y. Wang et al., "BurstGPT: A real-world workload dataset to optimize LLM serving
   systems", arXiv:2401.17644, 2024; schema: github.com/HPMLL/BurstGPT README.
.. [4] R. Qin et al., "Mooncake: A KVCache-centric disaggregated architecture for LLM
   serving", FAST 2025; traces: github.com/kvcache-ai/Mooncake, FAST25-release/traces.
.. [5] Meta, "The Llama 4 herd", ai.meta.com/blog/llama-4-multimodal-intelligence, April 2025
   (Llama 4 Scout: a 10 M token context window, the largest of any released model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin._types import IntArray
from twin.workload._frames import request_frame
from twin.workload._parse import (
    PathLike,
    Source,
    nonneg_ints,
    read_csv,
    read_jsonl,
    require_columns,
    times,
)
from twin.workload.schema import TraceMeta

#: Most tokens one request may carry in its prompt or its output. The largest context window of
#: any released model is 10 M tokens (Llama 4 Scout [5]; Gemini 1.5 Pro: 2 M; the bundled Azure
#: traces peak below 20 k), and prompt plus output must fit in it, so a larger count is a
#: corrupt cell (or a cast that wrapped upstream), not a request. Also far below the 2**31
#: range of the integer columns.
MAX_TOKENS_PER_REQUEST: int = 10_000_000

#: Source column -> standard column, per format.
VARIABLE_MAP: dict[str, dict[str, str]] = {
    "azure-llm": {
        "TIMESTAMP": "arrival_s",
        "ContextTokens": "prompt_tokens",
        "GeneratedTokens": "output_tokens",
    },
    "burstgpt": {
        "Timestamp": "arrival_s",
        "Request tokens": "prompt_tokens",
        "Response tokens": "output_tokens",
    },
    "mooncake": {
        "timestamp": "arrival_s",
        "input_length": "prompt_tokens",
        "output_length": "output_tokens",
    },
}

#: Unit of each format's time column [s per source unit].
TIME_UNIT_S: dict[str, float] = {"azure-llm": 1.0, "burstgpt": 1.0, "mooncake": 1e-3}

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "traces"
#: The bundled Azure LLM inference traces of 2023 (about one hour each, CC-BY 4.0, see the
#: SOURCE.md beside them).
AZURE_LLM_2023: dict[str, Path] = {
    "code": DATA_DIR / "azure-llm-2023" / "AzureLLMInferenceTrace_code.csv",
    "conv": DATA_DIR / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv",
}


def _columns(fmt: str) -> tuple[str, str, str]:
    by_std = {std: src for src, std in VARIABLE_MAP[fmt].items()}
    return by_std["arrival_s"], by_std["prompt_tokens"], by_std["output_tokens"]


def _tokens(source: Source, frame: pd.DataFrame, fmt: str) -> tuple[IntArray, IntArray]:
    _, c_prompt, c_output = _columns(fmt)
    limit, what = MAX_TOKENS_PER_REQUEST, "tokens per request"
    return (
        nonneg_ints(source, frame[c_prompt], c_prompt, maximum=limit, what=what),
        nonneg_ints(source, frame[c_output], c_output, maximum=limit, what=what),
    )


def read_azure_llm(path: PathLike) -> tuple[pd.DataFrame, TraceMeta]:
    """Read an Azure LLM inference trace (2023 or 2024 release).

    Parameters
    ----------
    path : str or Path
        CSV with the header ``TIMESTAMP,ContextTokens,GeneratedTokens``. ``TIMESTAMP`` is text
        such as ``2023-11-16 18:17:03.9799600`` (2023: 7 fractional digits, no offset) or
        ``2024-05-10 00:00:00.009930+00:00`` (2024: UTC offset); any number of fractional
        digits is accepted.

    Returns
    -------
    data : pandas.DataFrame
        Request frame (``arrival_s`` [s], ``prompt_tokens``, ``output_tokens``).
    meta : TraceMeta
        ``start`` is the wall-clock time of the first request (timezone-aware when the file
        gives an offset).

    Examples
    --------
    >>> data, meta = read_azure_llm(AZURE_LLM_2023["code"])
    >>> len(data), meta.start.isoformat()
    (8819, '2023-11-16T18:17:03.979960')
    """
    fmt = "azure-llm"
    source = Source(path)
    frame = read_csv(source)
    c_time, _, _ = _columns(fmt)
    require_columns(source, frame, VARIABLE_MAP[fmt], "Azure LLM trace")
    prompt, output = _tokens(source, frame, fmt)
    arrival, origin = times(source, frame[c_time], c_time)
    if origin is None and len(frame):
        source.fail(0, c_time, "expected date-time text like '2023-11-16 18:17:03.9799600'")
    return request_frame(
        arrival,
        prompt,
        output,
        path=path,
        fmt=fmt,
        origin=origin,
        extra={"licence": "CC-BY 4.0 (Azure/AzurePublicDataset)"},
    )


def read_burstgpt(
    path: PathLike,
    *,
    model: str | None = None,
    log_type: str | None = None,
    drop_failed: bool = False,
) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a BurstGPT trace.

    Parameters
    ----------
    path : str or Path
        CSV with the columns ``Timestamp`` (seconds from 0:00 of the first day), ``Model``,
        ``Request tokens``, ``Response tokens``, ``Total tokens``, ``Log Type``.
    model : str, optional
        Keep only this ``Model`` (``"ChatGPT"`` or ``"GPT-4"``).
    log_type : str, optional
        Keep only this ``Log Type`` (``"Conversation log"`` or ``"API log"``).
    drop_failed : bool
        Drop failed requests, which BurstGPT records with 0 response tokens.

    Returns
    -------
    data : pandas.DataFrame
        Request frame; ``arrival_s`` is seconds after the first kept request.
    meta : TraceMeta
        ``extra["source_t0_s"]`` is the source ``Timestamp`` of ``t = 0`` (time of day of the
        first day is ``source_t0_s % 86400``); ``extra["models"]`` lists the models seen.
    """
    fmt = "burstgpt"
    source = Source(path)
    frame = read_csv(source)
    c_time, _, _ = _columns(fmt)
    require_columns(source, frame, VARIABLE_MAP[fmt], "BurstGPT")
    prompt, output = _tokens(source, frame, fmt)
    arrival, _ = times(source, frame[c_time], c_time, numeric_unit_s=TIME_UNIT_S[fmt], numeric_only=True)
    keep = np.ones(len(frame), dtype=bool)
    extra: dict[str, object] = {}
    for column, wanted in (("Model", model), ("Log Type", log_type)):
        if column in frame.columns:
            extra[column.lower().replace(" ", "_") + "s"] = sorted(str(v) for v in frame[column].dropna().unique())
        if wanted is not None:
            require_columns(source, frame, [column], "BurstGPT")
            keep &= (frame[column].astype("str").str.strip() == wanted).to_numpy(dtype=bool)
    if drop_failed:
        extra["failed_dropped"] = int(np.count_nonzero(keep & (output == 0)))
        keep &= output > 0
    extra["filters"] = {"model": model, "log_type": log_type, "drop_failed": drop_failed}
    return request_frame(arrival[keep], prompt[keep], output[keep], path=path, fmt=fmt, origin=None, extra=extra)


def read_mooncake(path: PathLike) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a Mooncake trace (JSON lines).

    Parameters
    ----------
    path : str or Path
        One JSON object per line with ``timestamp`` (arrival, milliseconds after the first
        request), ``input_length`` and ``output_length`` (tokens) and ``hash_ids`` (the
        request's prompt blocks; equal ids mean a shared prefix).

    Returns
    -------
    data : pandas.DataFrame
        Request frame.
    meta : TraceMeta
        ``extra["prefix_block_reuse"]`` is the fraction of prompt blocks (``hash_ids``) that
        an earlier request already had: an upper bound of the prefix-cache hit ratio.
    """
    fmt = "mooncake"
    source = Source(path, jsonl=True)
    frame = read_jsonl(source)
    c_time, _, _ = _columns(fmt)
    require_columns(source, frame, VARIABLE_MAP[fmt], "Mooncake")
    prompt, output = _tokens(source, frame, fmt)
    arrival, _ = times(source, frame[c_time], c_time, numeric_unit_s=TIME_UNIT_S[fmt], numeric_only=True)
    extra: dict[str, object] = {}
    if "hash_ids" in frame.columns:
        blocks = frame["hash_ids"].explode().dropna()
        if len(blocks):
            extra["prefix_block_reuse"] = float(blocks.duplicated().mean())
    return request_frame(arrival, prompt, output, path=path, fmt=fmt, origin=None, extra=extra)
