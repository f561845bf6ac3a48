"""Measured serving configurations run through the twin: power, J/token, tokens/s, ITL.

Each configuration of a dataset (:mod:`twin.validation.serving_data`) is set up as the benchmark
ran it: one replica of the model (its shipped ``config.json``) laid out as vLLM laid it out, on
the catalog accelerator, with every request queued at once so that ``max_num_seqs`` sequences
run (the benchmark kept only runs whose batch held full, so the KV-cache limit that ``twin run``
applies, :func:`twin.replica.kv_capacity_sequences`, is not applied here), each
with the task's prompt (:data:`~twin.validation.serving_data.TASK_PROMPT_TOKENS`) and the row's
output mix. The engine's own serving model serves it (:func:`twin.engine.serving.serve_block`,
saturated: each step decodes the batch and prefills the prompts of the sequences that finished),
and the engine's closed-loop governor (:func:`twin.physics.governor.governed_clock`) holds each
GPU within its default power limit (TDP), so power, tokens/s and J/token are what a run of the
twin gives. The median inter-token latency is the step time of the median step: prompts join
steps as a Poisson stream of ``B / E[o]`` per step (finished sequences are replaced), and the
median step carries the median count of them (:func:`twin.physics.serving.median_prefills_per_step`).

A configuration the twin cannot express (its model's config is not shipped or cannot be read, a
multimodal task, an uncatalogued GPU, weights that do not fit) is listed with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin import catalog
from twin.catalog import AcceleratorSpec
from twin.catalog.architecture import ArchitectureError, load_architecture
from twin.engine.server_constants import ServerConstants, ServeResult
from twin.engine.serving import serve_block
from twin.errors import UnknownNameError
from twin.physics.accelerator import accelerator_power_w
from twin.physics.governor import governed_clock
from twin.physics.serving import median_prefills_per_step, step
from twin.physics.step_costs import StepCosts
from twin.replica import GPU_MEMORY_UTILIZATION, expert_format, serving_device, step_costs, weight_bytes_per_gpu
from twin.validation.serving_data import TOKEN_BUDGET, layout_of, mean_context_tokens

#: Output tokens queued per configuration: more than any step serves in a second.
SATURATING_TOKENS = 1e12

#: Predicted columns :func:`predict` adds.
PREDICTED = ("pred_power_w_per_gpu", "pred_tokens_per_s", "pred_j_per_token", "pred_itl_p50_s", "pred_batch")


@dataclass(frozen=True)
class Setup:
    """The twin's set-up of the expressible configurations of one accelerator."""

    rows: np.ndarray
    acc: AcceleratorSpec
    expert_formats: list[str]
    const: ServerConstants
    ranks: np.ndarray
    gpus: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    context: np.ndarray


def expressible(configs: pd.DataFrame) -> pd.Series:
    """Why each configuration cannot be run ("" where it can)."""
    reasons = []
    for row in configs.itertuples(index=False):
        reasons.append(_why_not(row))
    return pd.Series(reasons, index=configs.index, dtype=object)


def _why_not(row: object) -> str:
    if not getattr(row, "text", True):
        return f"multimodal task {getattr(row, 'task', '')} (the twin serves text)"
    if not getattr(row, "accelerator", ""):
        return f"GPU {getattr(row, 'gpu_model', '')} is not in the catalog"
    try:
        arch = load_architecture(str(getattr(row, "model_id", "")))
    except (ArchitectureError, UnknownNameError) as exc:
        return f"model not expressible: {exc}"
    layout = layout_of(*_par(row))
    if layout.gpus != int(getattr(row, "num_gpus", 0)):
        return f"layout {layout.describe()} does not use the row's {int(getattr(row, 'num_gpus', 0))} GPUs"
    acc = catalog.accelerator_spec(str(getattr(row, "accelerator", "")))
    if weight_bytes_per_gpu(arch, layout) > GPU_MEMORY_UTILIZATION * acc.hbm_bytes:
        return "weights do not fit in HBM"
    return ""


def _par(row: object) -> tuple[int, int, int, int]:
    return (
        int(getattr(row, "tensor_parallel", 1)),
        int(getattr(row, "data_parallel", 1)),
        int(getattr(row, "expert_parallel", 1)),
        int(getattr(row, "num_gpus", 1)),
    )


def setup(configs: pd.DataFrame, acc: AcceleratorSpec) -> Setup:
    """Per-rank constants of ``configs`` (all on ``acc``, all expressible)."""
    costs: list[StepCosts] = []
    batches, ranks, gpus, formats, free = [], [], [], [], []
    prompt = configs["prompt_tokens"].to_numpy(dtype=np.float64)
    output = configs["avg_output_len"].to_numpy(dtype=np.float64)
    context = mean_context_tokens(prompt, output, configs["output_sq_mean"].to_numpy(dtype=np.float64))
    for row in configs.itertuples(index=False):
        arch = load_architecture(str(row.model_id))
        layout = layout_of(*_par(row))
        costs.append(step_costs(arch, layout, acc))
        formats.append(expert_format(arch))
        # The benchmark keeps only runs whose batch held >= 0.85 of max_num_seqs: the KV cache did
        # not limit them (their prompts share cached prefixes, and a run that starts every request
        # at once holds younger, shorter sequences than a steady stream), so no KV limit here.
        free.append(np.inf)
        batches.append(float(row.max_num_seqs) / layout.data_parallel)
        ranks.append(layout.data_parallel)
        gpus.append(layout.gpus)
    stacked = StepCosts.stack(costs)
    device = serving_device(acc, formats)
    const = ServerConstants.for_ranks(
        stacked, device, np.asarray(batches), np.full(len(batches), TOKEN_BUDGET), np.asarray(free)
    )
    return Setup(
        rows=configs.index.to_numpy(),
        acc=acc,
        expert_formats=formats,
        const=const,
        ranks=np.asarray(ranks, dtype=np.float64),
        gpus=np.asarray(gpus, dtype=np.float64),
        prompt=prompt,
        output=output,
        context=context,
    )


def run_setup(s: Setup) -> dict[str, np.ndarray]:
    """Serve every configuration of ``s`` saturated under the TDP governor; the predicted figures."""
    n = s.prompt.size
    decode = np.full((1, n), SATURATING_TOKENS)
    prefill = decode * (s.prompt / s.output)[None, :]
    zeros = np.zeros(n)
    acc = s.acc

    def serve(clock: np.ndarray) -> ServeResult:
        return serve_block(
            s.const,
            prefill,
            decode,
            s.prompt[None, :],
            s.context[None, :],
            clock,
            zeros,
            zeros,
            np.ones(1),
        )

    def activity_at(clock: np.ndarray) -> tuple[ServeResult, np.ndarray, np.ndarray, np.ndarray]:
        res = serve(clock)
        return res, res.power_busy, res.mem_activity, res.sm_activity

    board = acc.power_params
    at_boost = activity_at(np.ones((1, n)))
    p_boost = accelerator_power_w(*at_boost[1:], 1.0, params=board)
    limit = np.full((1, n), acc.max_power_w)  # the board's default power limit
    if np.any(p_boost > limit):
        clock, power, res = governed_clock(limit, activity_at, params=board, at_boost=at_boost)
    else:
        clock, power, res = np.ones((1, n)), p_boost, at_boost[0]
    tokens = res.decode_tokens[0] * s.ranks  # a second of a full replica
    batch = res.batch[0]
    arrivals = batch / s.output
    prompts = median_prefills_per_step(arrivals)
    chunk = np.minimum(prompts * s.prompt, np.maximum(s.const.token_budget - batch, 0.0))
    itl = step(s.const.costs, s.const.device, batch, chunk, s.context, 0.5 * s.prompt, clock[0]).time_s
    p_gpu = power[0]
    return {
        "pred_power_w_per_gpu": p_gpu,
        "pred_tokens_per_s": tokens,
        "pred_j_per_token": p_gpu * s.gpus / tokens,
        "pred_itl_p50_s": itl,
        "pred_batch": batch * s.ranks,
        "pred_clock": clock[0],
    }


def predict(configs: pd.DataFrame, accelerators: Mapping[str, AcceleratorSpec] | None = None) -> pd.DataFrame:
    """``configs`` with the twin's predictions and a ``reason`` for each one it cannot run.

    ``accelerators`` replaces catalog entries by name (a calibration being tried or fitted).
    """
    out = configs.copy()
    out["reason"] = expressible(configs)
    for col in (*PREDICTED, "pred_clock"):
        out[col] = np.nan
    ok = out["reason"] == ""
    for name, group in out[ok].groupby("accelerator"):
        acc = (accelerators or {}).get(str(name)) or catalog.accelerator_spec(str(name))
        values = run_setup(setup(group, acc))
        for col, v in values.items():
            out.loc[group.index, col] = v
    return out
