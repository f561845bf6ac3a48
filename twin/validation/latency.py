"""Inter-token latency percentiles, request by request, against ML.ENERGY v3 (``twin validate-latency``).

Each expressible configuration (:func:`twin.validation.serving.expressible`) is set up as
:mod:`twin.validation.serving` sets it up (one replica, its layout, the catalog accelerator, no
KV limit, the TDP-governed clock of :func:`~twin.validation.serving.predict`) and run through the
request-level scheduler (:func:`twin.serving_requests.simulate_rank`) for one attention rank, as
the benchmark ran it (``docs/mlenergy-v3-settings.md``, section 2): every request submitted at
t = 0, ``max_num_seqs`` per engine, a token budget of 8192, ITLs of all requests over the whole
run (ramp-up and ramp-down included).

* **Requests.** The task's unique requests (lm-arena-chat 1024, gpqa 198, sourcegraph-fim 1024)
  repeated as the benchmark repeats them at large batch caps; the repeat count is not in the
  data, so the twin takes the fewest that give a steady window (``N > 2 max_num_seqs``). To
  keep a run to about :data:`STEP_BUDGET` steps on a laptop, ``N`` is cut to
  ``max(2 B + 1, STEP_BUDGET B / E[o])`` where longer (long outputs at small batch); that
  shortens the run, not its batch, and is stated in the report.
* **Lengths.** Prompts are the task's mean (:data:`~twin.validation.serving_data.TASK_PROMPT_TOKENS`:
  the per-request lengths are not published). Output lengths are drawn from the configuration's
  own output-length histogram (``raw/models``; uniform within a bin, seeded by the CSV line),
  else a gamma distribution with the row's mean (shape 2, a long-tailed mix) [EST].
* **Subset.** The whole dataset is hundreds of configurations; by default the smallest, middle
  and largest batch cap of every model x GPU x task x GPU count of the held-out models
  (:func:`twin.validation.serving_fit.split_models`) are run (``subset=False``: all).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin import catalog
from twin.catalog.architecture import load_architecture
from twin.errors import TraceFormatError
from twin.replica import expert_format, serving_device, step_costs
from twin.serving_requests import SchedulerConfig, physics_step_time, simulate_rank
from twin.validation.serving import predict
from twin.validation.serving_data import (
    BUILTIN_DATASET,
    TOKEN_BUDGET,
    layout_of,
    output_histograms,
    read_serving_dataset,
)
from twin.validation.serving_fit import split_models

#: Unique requests per task (the benchmark's ``num_requests``).
TASK_REQUESTS: dict[str, int] = {"lm-arena-chat": 1024, "gpqa": 198, "sourcegraph-fim": 1024}
#: About how many steps one configuration's run may take (module docstring).
STEP_BUDGET = 15_000
#: Measured ITL percentile columns (ms) and the percentile each is. [%]
MEASURED_ITL: dict[str, float] = {"median_itl_ms": 50.0, "p90_itl_ms": 90.0, "p99_itl_ms": 99.0}
#: Gamma shape of output lengths without a histogram [EST].
OUTPUT_GAMMA_SHAPE = 2.0
#: Accelerators reported (the brief's figures).
REPORTED_GPUS = ("H100", "B200")


@dataclass(frozen=True)
class LatencyValidation:
    """Per-configuration predicted and measured ITL percentiles, and the held-out MAPE per GPU."""

    rows: pd.DataFrame
    mape: pd.DataFrame
    subset: bool

    def last_line(self) -> str:
        """The figures in one line (what the CLI prints last)."""
        parts = []
        for r in self.mape.to_dict("records"):
            parts.append(
                f"{r['gpu']} ({int(r['configurations'])} configs): ITL p50 {r['itl_p50']:.1f} %, "
                f"p90 {r['itl_p90']:.1f} %, p99 {r['itl_p99']:.1f} %"
            )
        which = "3 batch caps per model x GPU x task x GPU count" if self.subset else "all"
        return f"Request-level ITL MAPE on held-out models, {which}: " + "; ".join(parts)


def select(configs: pd.DataFrame, subset: bool = True) -> pd.DataFrame:
    """Held-out text configurations on the reported GPUs; with ``subset``, three batch caps per group."""
    _, held = split_models(configs["model_id"])
    keep = configs[configs["model_id"].isin(held) & configs["gpu_model"].isin(REPORTED_GPUS) & configs["text"]]
    if not subset:
        return keep
    picks = []
    for _, g in keep.groupby(["model_id", "gpu_model", "task", "num_gpus"], sort=True):
        caps = np.sort(g["max_num_seqs"].unique())
        chosen = {caps[0], caps[len(caps) // 2], caps[-1]}
        picks.append(g[g["max_num_seqs"].isin(chosen)].drop_duplicates("max_num_seqs"))
    return pd.concat(picks) if picks else keep.iloc[:0]


def _outputs(hist: tuple[np.ndarray, np.ndarray] | None, mean: float, n: int, rng: np.random.Generator) -> np.ndarray:
    if hist is None:
        return np.maximum(np.round(rng.gamma(OUTPUT_GAMMA_SHAPE, mean / OUTPUT_GAMMA_SHAPE, n)), 1).astype(np.int64)
    edges, counts = hist
    b = rng.choice(counts.size, size=n, p=counts / counts.sum())
    return np.maximum(np.round(rng.uniform(edges[b], edges[b + 1])), 1).astype(np.int64)


def run_config(
    row: pd.Series, hist: tuple[np.ndarray, np.ndarray] | None, step_budget: int = STEP_BUDGET
) -> dict[str, float]:
    """ITL p50/p90/p99 (s) of one configuration run request by request (module docstring)."""
    acc = catalog.accelerator_spec(str(row["accelerator"]))
    arch = load_architecture(str(row["model_id"]))
    layout = layout_of(
        int(row["tensor_parallel"]), int(row["data_parallel"]), int(row["expert_parallel"]), int(row["num_gpus"])
    )
    st = physics_step_time(step_costs(arch, layout, acc), serving_device(acc, expert_format(arch)))
    seats = max(int(row["max_num_seqs"]) // layout.data_parallel, 1)
    unique = TASK_REQUESTS.get(str(row["task"]), 1024)
    total = unique * int(np.ceil((2 * int(row["max_num_seqs"]) + 1) / unique))
    n = int(np.ceil(total / layout.data_parallel))
    mean_out = float(row["avg_output_len"])
    n_run = min(n, max(2 * seats + 1, int(step_budget * seats / mean_out)))
    rng = np.random.default_rng(int(row["line"]))
    out = _outputs(hist, mean_out, n_run, rng)
    prompt = np.full(n_run, round(float(row["prompt_tokens"])), dtype=np.int64)
    run = simulate_rank(
        np.zeros(n_run), prompt, out, SchedulerConfig(seats, int(TOKEN_BUDGET)), st, float(row["pred_clock"])
    )
    return {
        "requests": float(n_run),
        "requests_benchmark": float(n),
        "pred_itl_p50_ms": 1e3 * run.itl.quantile(0.5),
        "pred_itl_p90_ms": 1e3 * run.itl.quantile(0.9),
        "pred_itl_p99_ms": 1e3 * run.itl.quantile(0.99),
    }


def validate_latency(
    dataset: str | Path | None = None, subset: bool = True, step_budget: int = STEP_BUDGET
) -> LatencyValidation:
    """Run the selected configurations request by request; per-GPU MAPE of ITL p50, p90, p99 (held-out)."""
    configs = read_serving_dataset(dataset)
    root = Path(dataset) if dataset is not None else BUILTIN_DATASET
    for col in MEASURED_ITL:
        if col not in configs.columns:
            raise TraceFormatError(str(root), f"missing column {col}", line=1)
        values = pd.to_numeric(configs[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(values > 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TraceFormatError(str(root), "not a positive number", line=int(configs["line"].iloc[i]), field=col)
        configs[col] = values
    chosen = select(configs, subset)
    chosen = predict(chosen)
    chosen = chosen[chosen["reason"] == ""]
    hists = output_histograms(root if root.is_dir() else None, chosen)
    results = [run_config(row, h, step_budget) for (_, row), h in zip(chosen.iterrows(), hists, strict=True)]
    rows = chosen.assign(**{k: [r[k] for r in results] for k in (results[0] if results else {})})
    if not results:
        rows = rows.assign(pred_itl_p50_ms=np.nan, pred_itl_p90_ms=np.nan, pred_itl_p99_ms=np.nan)
    mape = []
    for gpu, g in rows.groupby("gpu_model", sort=True):
        entry: dict[str, float | str] = {"gpu": str(gpu), "configurations": float(len(g))}
        for col, q in MEASURED_ITL.items():
            pred = g[f"pred_itl_p{int(q)}_ms"].to_numpy()
            meas = g[col].to_numpy()
            entry[f"itl_p{int(q)}"] = float(100.0 * np.mean(np.abs(pred / meas - 1.0)))
        entry["fluid_itl_p50"] = float(
            100.0 * np.mean(np.abs(1e3 * g["pred_itl_p50_s"].to_numpy() / g["median_itl_ms"].to_numpy() - 1.0))
        )
        mape.append(entry)
    return LatencyValidation(rows=rows, mape=pd.DataFrame(mape), subset=subset)


def markdown(v: LatencyValidation, command: str) -> str:
    """A report: the method, the MAPE table, every configuration."""
    lines = [
        "# Request-level inter-token latency against ML.ENERGY v3",
        "",
        f"Command: `{command}`. Method: `twin/validation/latency.py` (module docstring).",
        "",
        "| GPU | configurations | ITL p50 | ITL p90 | ITL p99 | fluid ITL p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in v.mape.to_dict("records"):
        lines.append(
            f"| {r['gpu']} | {int(r['configurations'])} | {r['itl_p50']:.1f} % | {r['itl_p90']:.1f} % | "
            f"{r['itl_p99']:.1f} % | {r['fluid_itl_p50']:.1f} % |"
        )
    lines += [
        "",
        "| model | task | GPU | GPUs | max_num_seqs | requests run (benchmark) | p50 ms pred / meas | p90 | p99 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in v.rows.to_dict("records"):
        lines.append(
            f"| {r['model_id']} | {r['task']} | {r['gpu_model']} | {int(r['num_gpus'])} | {int(r['max_num_seqs'])} | "
            f"{int(r['requests'])} ({int(r['requests_benchmark'])}) | "
            f"{r['pred_itl_p50_ms']:.1f} / {r['median_itl_ms']:.1f} | "
            f"{r['pred_itl_p90_ms']:.1f} / {r['p90_itl_ms']:.1f} | "
            f"{r['pred_itl_p99_ms']:.1f} / {r['p99_itl_ms']:.1f} |"
        )
    lines += ["", v.last_line(), ""]
    return "\n".join(lines)


__all__ = ["LatencyValidation", "markdown", "run_config", "select", "validate_latency"]
