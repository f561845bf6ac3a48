"""Read measured LLM-serving configurations (the ML.ENERGY Leaderboard v3 format).

A dataset is a folder holding ``llm_configs.csv`` (one row per model x task x GPU x parallelism x
batch cap; columns below) and, optionally, the leaderboard's per-model JSONs under
``raw/models/`` whose output-length histograms give each configuration's second moment of the
output length (a long-tailed output mix holds longer contexts than its mean says). A CSV file
alone is read too. The project ships the text tasks of v3 in ``twin/data/mlenergy-v3``
(:data:`BUILTIN_DATASET`, with its SOURCE and licence note).

Columns read (the leaderboard's names and units): ``model_id``, ``task``, ``gpu_model``,
``num_gpus``, ``tensor_parallel``, ``data_parallel``, ``expert_parallel``, ``max_num_seqs``,
``avg_batch_size``, ``avg_power_watts`` (sum over the GPUs, W),
``output_throughput_tokens_per_sec``, ``energy_per_token_joules`` (GPU energy per output token),
``avg_output_len``, ``median_itl_ms``.

Prompt lengths are not in the data. What the benchmark sends (``docs/mlenergy-v3-settings.md``)
and what the twin takes, per task (:data:`TASK_PROMPT_TOKENS`):

* ``lm-arena-chat``: LMArena conversations (arena-human-preference-100k), each later turn
  carrying the earlier turns; Chatbot Arena averages 94.9 tokens per prompt, 269 per response
  and 1.3 turns per conversation (Chiang et al., ICML 2024, arXiv 2403.04132, Table 1), which
  with the chat template gives about 200-350 prompt tokens per request: **250** [EST].
* ``gpqa``: GPQA-diamond questions with four choices, zero-shot: 44 473 input tokens over the 198
  requests of one v3 run (224.6 each; a third-party audit of the run's results.json) plus about
  15 template tokens: **240**.
* ``sourcegraph-fim``: file prefix and suffix of the Sourcegraph FIM completions set: 1 306 650
  input tokens over 1 024 requests of one v3 run (1 276 each, same audit): **1280**.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import TraceFormatError
from twin.replica import Layout

BUILTIN_DATASET = Path(__file__).resolve().parent.parent / "data" / "mlenergy-v3"

#: Mean prompt tokens per request of each text task (module docstring).
TASK_PROMPT_TOKENS: dict[str, float] = {"lm-arena-chat": 250.0, "gpqa": 240.0, "sourcegraph-fim": 1280.0}
#: Tasks whose prompts carry images or video: the twin serves text only.
MULTIMODAL_TASKS = frozenset({"image-chat", "video-chat"})
#: Dataset GPU names and the catalog accelerator each is.
GPU_NAMES: dict[str, str] = {
    "H100": "H100-SXM",
    "H200": "H200-SXM",
    "B200": "B200",
    "GB200": "GB200",
    "A100": "A100-SXM4-80GB",
    "MI300X": "MI300X",
}
#: The engine's token budget per step in every v3 configuration (vLLM max-num-batched-tokens).
TOKEN_BUDGET = 8192.0

_NUMERIC = (
    "num_gpus",
    "tensor_parallel",
    "data_parallel",
    "expert_parallel",
    "max_num_seqs",
    "avg_batch_size",
    "avg_power_watts",
    "output_throughput_tokens_per_sec",
    "energy_per_token_joules",
    "avg_output_len",
    "median_itl_ms",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("model_id", "task", "gpu_model", *_NUMERIC)
#: Columns that must be whole numbers of at least 1.
_COUNTS = ("num_gpus", "tensor_parallel", "data_parallel", "expert_parallel", "max_num_seqs")
#: Largest count a row may give (vLLM and the benchmark hold them as 32-bit integers).
_MAX_COUNT = 2**31 - 1


@dataclass(frozen=True)
class Measured:
    """What a configuration's row says was measured (per configuration)."""

    power_w_per_gpu: float
    tokens_per_s: float
    j_per_token: float
    itl_p50_s: float
    batch: float


def layout_of(tp: int, dp: int, ep: int, gpus: int) -> Layout:
    """VLLM's layout for the leaderboard's parallelism columns.

    The columns are derived after the run (``mlenergy-data``), not vLLM's flags: ``ep = N`` alone
    means ``--tensor-parallel-size N --enable-expert-parallel`` (attention split N ways, experts
    spread), ``dp = ep = N`` means ``--data-parallel-size N --enable-expert-parallel``
    (data-parallel attention), otherwise ``tp = N`` is plain tensor parallelism
    (``docs/mlenergy-v3-settings.md``, section 3).

    Examples
    --------
    >>> layout_of(1, 1, 8, 8).describe(), layout_of(1, 4, 4, 4).describe(), layout_of(4, 1, 1, 4).describe()
    ('TP8 + EP8', 'DP4 + EP4', 'TP4')
    """
    if ep > 1 and dp > 1:
        return Layout(tensor_parallel=max(gpus // dp, 1), expert_parallel=True, data_parallel=dp)
    if ep > 1:
        return Layout(tensor_parallel=gpus, expert_parallel=True)
    return Layout(tensor_parallel=max(tp, 1))


def read_serving_dataset(path: str | Path | None = None) -> pd.DataFrame:
    """Configurations of a dataset folder (or CSV), one row each (module docstring).

    Returns the columns read plus ``accelerator`` (catalog name, empty when not catalogued),
    ``text`` (a text task), ``prompt_tokens`` (:data:`TASK_PROMPT_TOKENS`, NaN for other tasks),
    ``output_sq_mean`` (mean squared output length from the histogram, NaN without one),
    ``power_w_per_gpu``, ``itl_p50_s`` and ``line`` (the CSV line). Raises
    :class:`~twin.errors.TraceFormatError` naming the file, line and field of a bad value.
    """
    root = Path(path) if path is not None else BUILTIN_DATASET
    csv_path = root / "llm_configs.csv" if root.is_dir() else root
    if not csv_path.exists():
        raise TraceFormatError(str(csv_path), "no such file (a dataset folder holds llm_configs.csv)")
    try:
        df = pd.read_csv(csv_path, dtype={"model_id": str, "task": str, "gpu_model": str})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise TraceFormatError(str(csv_path), f"not a readable CSV: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise TraceFormatError(str(csv_path), f"missing column(s) {', '.join(missing)}", line=1)
    if df.empty:
        raise TraceFormatError(str(csv_path), "no configurations", line=2)
    df = df.reset_index(drop=True)
    df["line"] = np.arange(len(df)) + 2
    for col in _NUMERIC:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64)) | (values.to_numpy(dtype=np.float64) <= 0)
        if col in _COUNTS:
            v = values.to_numpy(dtype=np.float64)
            bad |= np.isfinite(v) & ((v != np.round(v)) | (v > _MAX_COUNT))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = f"a whole number in 1..{_MAX_COUNT}" if col in _COUNTS else "a positive number"
            raise TraceFormatError(
                str(csv_path), f"{str(df[col].iloc[i])!r} is not {what}", line=int(df["line"].iloc[i]), field=col
            )
        df[col] = values.astype(np.float64)
    for col in ("model_id", "task", "gpu_model"):
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise TraceFormatError(str(csv_path), "empty", line=int(df["line"].iloc[i]), field=col)
    wrong_gpus = df["num_gpus"] % (df["tensor_parallel"] * df["data_parallel"]).clip(lower=1) != 0
    wrong_gpus &= df["expert_parallel"] <= 1
    if wrong_gpus.any():
        i = int(np.flatnonzero(wrong_gpus.to_numpy())[0])
        raise TraceFormatError(
            str(csv_path),
            "num_gpus is not a multiple of tensor_parallel x data_parallel",
            line=int(df["line"].iloc[i]),
            field="num_gpus",
        )
    df["accelerator"] = df["gpu_model"].map(GPU_NAMES).fillna("")
    df["text"] = ~df["task"].isin(MULTIMODAL_TASKS)
    df["prompt_tokens"] = df["task"].map(TASK_PROMPT_TOKENS).astype(np.float64)
    df["power_w_per_gpu"] = df["avg_power_watts"] / df["num_gpus"]
    df["itl_p50_s"] = df["median_itl_ms"] / 1e3
    df["output_sq_mean"] = _output_second_moments(root if root.is_dir() else None, df)
    return df


def _output_second_moments(root: Path | None, df: pd.DataFrame) -> np.ndarray:
    """Mean squared output length of each configuration from its raw histogram (NaN without one)."""
    out = np.full(len(df), np.nan)
    for i, hist in enumerate(output_histograms(root, df)):
        if hist is not None:
            edges, counts = hist
            mid = 0.5 * (edges[1:] + edges[:-1])
            out[i] = float((counts * mid**2).sum() / counts.sum())
    return out


def output_histograms(root: Path | None, df: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Each configuration's output-length histogram ``(edges, counts)`` from ``raw/models`` (None without one)."""
    if root is None or not (root / "raw" / "models").is_dir():
        return [None] * len(df)
    cache: dict[Path, dict[tuple[str, int, int, int, int, int], tuple[np.ndarray, np.ndarray]]] = {}
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for row in df.itertuples(index=False):
        f = root / "raw" / "models" / f"{str(row.model_id).replace('/', '__')}__{row.task}.json"
        if f not in cache:
            cache[f] = _histograms(f) if f.exists() else {}
        key = (
            str(row.gpu_model),
            int(row.num_gpus),
            int(row.max_num_seqs),
            int(row.tensor_parallel),
            int(row.data_parallel),
            int(row.expert_parallel),
        )
        out.append(cache[f].get(key))
    return out


def _histograms(path: Path) -> dict[tuple[str, int, int, int, int, int], tuple[np.ndarray, np.ndarray]]:
    try:
        data = json.loads(path.read_text())
        hists = {}
        for cfg in data.get("configurations", []):
            hist = cfg.get("output_length_distribution") or {}
            edges = np.asarray(hist.get("bins", []), dtype=np.float64)
            counts = np.asarray(hist.get("counts", []), dtype=np.float64)
            if edges.size != counts.size + 1 or counts.sum() <= 0:
                continue
            par = cfg.get("parallelization") or {}
            key = (
                str(cfg["gpu_model"]),
                int(cfg["num_gpus"]),
                int(cfg["max_num_seqs"]),
                int(par.get("tensor_parallel", 1)),
                int(par.get("data_parallel", 1)),
                int(par.get("expert_parallel", 1)),
            )
            hists[key] = (edges, counts)
        return hists
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TraceFormatError(str(path), f"not a leaderboard model file: {exc}") from None


def mean_context_tokens(prompt: np.ndarray, output_mean: np.ndarray, output_sq_mean: np.ndarray) -> np.ndarray:
    """Mean context of the running sequences: ``prompt + E[o^2] / (2 E[o])``.

    A sequence of output length ``o`` runs ``o`` steps at a mean context ``prompt + o/2``; the
    running mix weights each sequence by its steps. Without a histogram ``E[o^2] = E[o]^2``.

    Examples
    --------
    >>> mean_context_tokens(np.array([250.0]), np.array([400.0]), np.array([np.nan]))
    array([450.])
    """
    sq = np.where(np.isfinite(output_sq_mean), output_sq_mean, output_mean**2)
    return np.asarray(prompt + sq / (2.0 * output_mean))
