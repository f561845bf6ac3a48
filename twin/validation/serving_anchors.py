"""Published serving and power-capping measurements (parameters.md section 7) set up from their conditions.

ML.ENERGY's Llama-3.1-8B on one H100, Ma et al.'s H200 decode power and clock locking, MLPerf's
H200 Llama-2-70B, and Samsi et al.'s power caps: the anchors of :mod:`twin.validation.anchors`
that run one accelerator or replica (the module there says how every anchor is built).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from twin import catalog
from twin.validation.compare import AnchorResult, relative_error
from twin.validation.setups import PARAMS, accelerator, decode_point, inference, node, run

# ----------------------------------------------------------------------------------- serving
#: Prompt and output tokens of the ML.ENERGY v3 lm-arena-chat run of Llama-3.1-8B on one H100 at
#: max_num_seqs 64: the output mean is the run's own (llm_configs.csv, avg_output_len 395.5), the
#: prompt the task's estimate (twin.validation.serving_data.TASK_PROMPT_TOKENS, 250 [EST]).
ML_ENERGY_PROMPT_TOKENS = 250.0
ML_ENERGY_OUTPUT_TOKENS = 395.5


def ml_energy_llama8b_h100() -> AnchorResult:
    """ML.ENERGY v3: Llama 3.1 8B on one H100 at batch 64, GPU energy per output token."""
    wl = inference(
        "Llama-3.1-8B",
        max_batch=64,
        prompt_tokens=ML_ENERGY_PROMPT_TOKENS,
        output_tokens=ML_ENERGY_OUTPUT_TOKENS,
    )
    k = run(node("H100-SXM", 1, [wl])).kpis
    j_per_token = k["energy_accelerators_j"] / k["tokens_generated"]
    gpu_w = k["energy_accelerators_j"] / k["duration_s"]
    tok_s = k["tokens_generated"] / k["duration_s"]
    return AnchorResult(
        key="ml-energy-llama8b-h100",
        quantity="GPU energy per output token, Llama 3.1 8B, 1x H100, batch 64",
        predicted=j_per_token,
        published=0.12,
        unit="J/token",
        source=f"ML.ENERGY Leaderboard v3.0, vLLM 0.11.1 ({PARAMS} 5.1, 7.2; llm_configs.csv row of the run)",
        conditions=(
            "one H100 SXM, Llama-3.1-8B BF16, max batch 64 held full (steady state of continuous "
            f"batching); prefill of new requests included; {ML_ENERGY_OUTPUT_TOKENS:.1f} output tokens "
            f"(the run's mean), {ML_ENERGY_PROMPT_TOKENS:.0f} prompt tokens (the task's estimate)"
        ),
        notes=(
            f"The twin draws {gpu_w:.0f} W and serves {tok_s:,.0f} output tokens/s; the run measured 610 W and "
            "5 147 tokens/s (0.1186 J/token). Llama-3.1-8B is a held-out model of the serving fit "
            "(twin validate-serving), so this case is independent of it."
        ),
        miss_reason="energy per token at batch 64 is off by more than 25 % (see notes).",
        fmt="{:.3f}",
    )


#: [EST] Decode context of a "production batch" for the H200 decode-power anchor: 1024 tokens.
MA_CONTEXT_TOKENS = 1024.0
#: Batches searched for the clock-locking saving (production decode batches).
MA_BATCHES = (8, 16, 32, 64, 128, 256)
#: SM clock fractions searched (down to the catalog's governor floor, 0.25).
MA_CLOCKS = np.round(np.arange(0.25, 1.0 + 1e-9, 0.05), 2)


def ma_h200_decode_power() -> AnchorResult:
    """Ma et al. 2026: H200 decode draws 137-300 W of its 700 W limit."""
    p64, _ = decode_point("H200-SXM", "Llama-3.1-8B", 64, MA_CONTEXT_TOKENS)
    p1, _ = decode_point("H200-SXM", "Llama-3.1-8B", 1, MA_CONTEXT_TOKENS)
    p256, _ = decode_point("H200-SXM", "Llama-3.1-8B", 256, MA_CONTEXT_TOKENS)
    return AnchorResult(
        key="ma-h200-decode-power",
        quantity="H200 board power in autoregressive decode (GQA model, production batch)",
        predicted=float(p64[0]),
        published=(137.0, 300.0),
        unit="W",
        source=f"Ma et al. 2026, arXiv 2605.11999 ({PARAMS} 1.1, 5.1, 7.5)",
        conditions=(
            f"one H200 SXM at boost clock, Llama-3.1-8B BF16 (GQA), decode only, batch 64, "
            f"{MA_CONTEXT_TOKENS:.0f}-token context [EST]"
        ),
        notes=(
            f"Over batch 1-256 the twin gives {float(p1[0]):.0f}-{float(p256[0]):.0f} W. Its power model is fitted "
            "to ML.ENERGY v3 vLLM runs (the fit half of 565 text runs of 838), which measured 430-540 W per "
            "H100 in decode-dominated serving at "
            "batch 8 and 600-690 W at batch 256 (Llama-3.1-8B on one H100: 486 W at batch 8, 610 W at 64): "
            "the two published sources disagree for this class of workload, and the twin follows the larger "
            "and better documented one (twin validate-serving)."
        ),
        miss_reason=(
            "decode power at production batch sits above the published range: the ML.ENERGY v3 measurements the "
            "power model is fitted to show vLLM decode on Hopper at 430-690 W (see notes)."
        ),
        fmt="{:.0f}",
    )


def _best_clock_lock_saving(voltage_floor: float | None = None) -> tuple[float, int, float]:
    """Largest decode energy saving over :data:`MA_BATCHES` and :data:`MA_CLOCKS`, with where."""
    best, where = 0.0, (0, 1.0)
    for batch in MA_BATCHES:
        power, tokens = decode_point(
            "H200-SXM", "Llama-3.1-8B", batch, MA_CONTEXT_TOKENS, MA_CLOCKS, voltage_floor=voltage_floor
        )
        energy = power / tokens
        saving = 1.0 - energy / energy[-1]  # MA_CLOCKS[-1] is the boost clock
        i = int(np.argmax(saving))
        if saving[i] > best:
            best, where = float(saving[i]), (batch, float(MA_CLOCKS[i]))
    return best, where[0], where[1]


#: Core-voltage floors for the sensitivity note: the GTX Titan X (Maxwell) estimate of Guerreiro
#: et al. 2019, and no floor (voltage falling with the clock down to the governor's floor).
MA_FLOOR_SENSITIVITY = (0.86, 0.0)


def ma_h200_clock_lock_saving() -> AnchorResult:
    """Ma et al. 2026: locking the SM clock saves up to 32 % of decode energy."""
    best, batch, clock = _best_clock_lock_saving()
    acc = accelerator("H200-SXM")
    others = ", ".join(
        f"{100 * _best_clock_lock_saving(v)[0]:.1f} % with a floor of {v:g}" for v in MA_FLOOR_SENSITIVITY
    )
    return AnchorResult(
        key="ma-h200-clock-lock-saving",
        quantity="largest decode energy saving from locking the SM clock, H200",
        predicted=100.0 * best,
        published=32.0,
        unit="%",
        source=f"Ma et al. 2026, arXiv 2605.11999 ({PARAMS} 1.1, 7.5)",
        conditions=(
            f"one H200 SXM, Llama-3.1-8B BF16 decode, {MA_CONTEXT_TOKENS:.0f}-token context [EST]; "
            f"best over batch {MA_BATCHES[0]}-{MA_BATCHES[-1]} and clock 0.25-1.0 of boost (the published "
            "figure is an 'up to')"
        ),
        notes=(
            f"Best case at batch {batch}, clock {clock:.2f} of boost: decode stays memory-bound, so the "
            "tokens/s hold while the graphics-clock domain (SMs, clock tree, L2) draws less at the lower "
            "clock and core voltage; HBM power and the rest outside the graphics clock stay (their share of "
            "the busy power is set from this case and samsi-power-cap-energy: "
            "twin.validation.serving_fit.UNCORE_SHARE_OF_BUSY, so neither is independent). The saving "
            "rests on the core-voltage floor "
            f"({acc.voltage_floor_fraction:g} of the boost voltage [EST], Guerreiro et al. 2019's Pascal "
            f"estimate; accelerators.csv): {others}."
        ),
        miss_reason="the decode energy saved by a clock lock is off by more than 25 % (see the voltage-floor note).",
        fmt="{:.1f}",
    )


#: [EST] Mean prompt length of the MLPerf Llama 2 70B (OpenOrca) samples: not in the sources we
#: hold; taken equal to the output mean. The output mean, 292 tokens, is tokens/s over samples/s
#: of NVIDIA's MLPerf v5.0 result 5.0-0057 (31 306.8 tok/s / 107.256 samples/s).
MLPERF_PROMPT_TOKENS = 292.0
MLPERF_OUTPUT_TOKENS = 292.0


def mlperf_batch_limit(accelerator: str, model: str, tensor_parallel: int, context_tokens: float) -> int:
    """Sequences whose FP8 KV cache fits beside the FP8 weights in a replica's HBM.

    Examples
    --------
    >>> mlperf_batch_limit("H200-SXM", "Llama-2-70B", 1, 584)  # (141 - 68.98) GB / (163.84 kB x 584)
    752
    """
    acc = catalog.accelerator_spec(accelerator)
    m = catalog.model_spec(model)
    free = tensor_parallel * acc.hbm_bytes - m.params * 1.0
    return int(free // (m.kv_bytes_per_token(1.0) * context_tokens))


def mlperf_h200_llama2_70b() -> AnchorResult:
    """MLPerf Inference v4.0: 8x H200, Llama 2 70B offline, ~31 000 tokens/s."""
    ctx = MLPERF_PROMPT_TOKENS + MLPERF_OUTPUT_TOKENS
    batch = mlperf_batch_limit("H200-SXM", "Llama-2-70B", 1, ctx)
    wl = inference(
        "Llama-2-70B",
        max_batch=batch,
        precision="fp8",
        prompt_tokens=MLPERF_PROMPT_TOKENS,
        output_tokens=MLPERF_OUTPUT_TOKENS,
    )
    k = run(node("H200-SXM", 8, [wl])).kpis
    tok_s = k["tokens_generated"] / k["duration_s"]
    longer = {**wl, "arrivals": {**wl["arrivals"], "prompt_tokens": 2 * MLPERF_PROMPT_TOKENS}}
    longer["max_batch"] = mlperf_batch_limit("H200-SXM", "Llama-2-70B", 1, ctx + MLPERF_PROMPT_TOKENS)
    k2 = run(node("H200-SXM", 8, [longer])).kpis
    return AnchorResult(
        key="mlperf-h200-llama2-70b",
        quantity="output tokens/s, 8x H200, Llama 2 70B, MLPerf offline",
        predicted=tok_s,
        published=31000.0,
        unit="tokens/s",
        source=f"MLPerf Inference v4.0, NVIDIA TensorRT-LLM (thedailyscout/ainews247 summaries; {PARAMS} 7.8)",
        conditions=(
            f"one 8x H200 SXM server, Llama-2-70B FP8 weights and KV cache, one replica per GPU, "
            f"batch {batch} (the KV cache that fits beside the weights), endless queue; "
            f"{MLPERF_OUTPUT_TOKENS:.0f} output tokens per sample (MLPerf v5.0 NVIDIA result 5.0-0057: "
            f"tokens/s / samples/s), {MLPERF_PROMPT_TOKENS:.0f} prompt tokens [EST]"
        ),
        notes=(
            f"Prompt length not in our sources; with prompts twice as long the twin gives "
            f"{k2['tokens_generated'] / k2['duration_s']:,.0f} tokens/s (compute-bound prefill at the "
            f"catalog's MFU {accelerator('H200-SXM').achieved_flop_fraction:.2f} [EST])."
        ),
        miss_reason="throughput depends on the unretrieved prompt length (see notes).",
        fmt="{:,.0f}",
    )


# ---------------------------------------------------------------------------- power capping
#: [EST] Samsi et al. conditions not in the secondary summary we hold: Alpaca-like prompts
#: (100 tokens), 256 generated tokens, LLaMA-65B sharded over 4 GPUs (it needs 130 GB in BF16).
SAMSI_PROMPT_TOKENS = 100.0
SAMSI_OUTPUT_TOKENS = 256.0
SAMSI_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)


#: The published pair (Samsi et al. 2023): energy change [%] and latency change [%] of one experiment.
SAMSI_ENERGY_CHANGE_PCT = -23.0
SAMSI_LATENCY_CHANGE_PCT = (6.0, 7.0)


@cache
def _samsi_cap_effects() -> tuple[float, float, int, float]:
    """Energy-per-token and latency change from a 250 W to a 175 W cap, at the experiment's batch.

    The batch is not in our source, and both published figures come from one experiment, so one
    batch serves both cases: the one among :data:`SAMSI_BATCHES` whose pair (energy, latency) is
    nearest the published pair (the smaller of the two relative errors' larger). That spends one
    degree of freedom of the two figures on the unknown condition, which the notes say.

    Returns the energy change, the latency change, the batch and the mean GPU power under the
    175 W cap there. [1], [1], [1], [W]
    """
    best: tuple[float, float, int, float] | None = None
    best_err = math.inf
    for batch in SAMSI_BATCHES:
        wl = inference(
            "LLaMA-65B",
            max_batch=batch,
            tensor_parallel=4,
            prompt_tokens=SAMSI_PROMPT_TOKENS,
            output_tokens=SAMSI_OUTPUT_TOKENS,
        )
        out = []
        for cap in (250.0, 175.0):
            over = node("A100-SXM4-80GB", 8, [wl])
            over["fleet.power_cap_w"] = cap
            k = run(over).kpis
            gpu_w = k["energy_accelerators_j"] / k["duration_s"] / 8
            out.append((k["energy_accelerators_j"] / k["tokens_generated"], k["tokens_generated"], gpu_w))
        d_energy = out[1][0] / out[0][0] - 1.0
        d_latency = out[0][1] / out[1][1] - 1.0  # same work at the lower throughput
        err = max(
            abs(relative_error(100.0 * d_energy, SAMSI_ENERGY_CHANGE_PCT)),
            abs(relative_error(100.0 * d_latency, SAMSI_LATENCY_CHANGE_PCT)),
        )
        if err < best_err:
            best, best_err = (d_energy, d_latency, batch, out[1][2]), err
    assert best is not None
    return best


_SAMSI_CONDITIONS = (
    "LLaMA-65B BF16 on A100-SXM4-80GB (stand-in: the paper's V100/A100 board with a 250 W default "
    "limit is not in the catalog), tensor-parallel 4, GPU cap 250 W then 175 W; "
    f"{SAMSI_PROMPT_TOKENS:.0f} prompt / {SAMSI_OUTPUT_TOKENS:.0f} output tokens [EST]; "
    f"the batch (not stated) among {SAMSI_BATCHES[0]}-{SAMSI_BATCHES[-1]} where the twin's pair of changes "
    "is nearest the published pair, the same batch for both cases"
)


_SAMSI_BATCH_NOTE = (
    "The batch is not in our source and both figures come from one experiment, so both cases take the "
    "one batch where the twin's pair (energy, latency) is nearest the published pair: together they test "
    "two figures with one unknown fitted, not two independent ones. Capping saves energy in the twin only "
    "where decode is memory-bound (small batches); at compute-bound batches the clock cut costs more time "
    "than it saves power. "
)


def _samsi_governor_note(gpu_w: float) -> str:
    return (
        f"Under the 175 W cap the GPUs average {gpu_w:.0f} W: the engine's governor is a closed loop "
        "that lowers each GPU's clock until its power, at the activity the work has at that clock, "
        "meets the cap (as NVIDIA's does), so the clock is cut no deeper than the cap needs."
    )


def samsi_power_cap_energy() -> AnchorResult:
    """Samsi et al. 2023: capping 250 W -> 175 W cut energy by about 23 %."""
    d_energy, d_latency, batch, gpu_w = _samsi_cap_effects()
    return AnchorResult(
        key="samsi-power-cap-energy",
        quantity="energy change from a 250 W -> 175 W GPU cap, LLaMA-65B inference",
        predicted=100.0 * d_energy,
        published=SAMSI_ENERGY_CHANGE_PCT,
        unit="%",
        source=f"Samsi et al. 2023, arXiv 2310.03003 (app.argminai.com summary, 2nd; {PARAMS} 5.1, 7.4)",
        conditions=_SAMSI_CONDITIONS,
        notes=f"At batch {batch} (latency there {100 * d_latency:+.1f} %). "
        + _SAMSI_BATCH_NOTE
        + "Not independent: with ma-h200-clock-lock-saving it sets the share of the busy power outside the "
        "graphics clock (twin.validation.serving_fit.UNCORE_SHARE_OF_BUSY). " + _samsi_governor_note(gpu_w),
        miss_reason="the energy saved under the cap is off by more than 25 %.",
        fmt="{:+.1f}",
    )


def samsi_power_cap_latency() -> AnchorResult:
    """Samsi et al. 2023: the same cap added 6-7 % latency."""
    d_energy, d_latency, batch, gpu_w = _samsi_cap_effects()
    return AnchorResult(
        key="samsi-power-cap-latency",
        quantity="latency change from a 250 W -> 175 W GPU cap, LLaMA-65B inference",
        predicted=100.0 * d_latency,
        published=SAMSI_LATENCY_CHANGE_PCT,
        unit="%",
        source=f"Samsi et al. 2023, arXiv 2310.03003 (app.argminai.com summary, 2nd; {PARAMS} 5.1, 7.4)",
        conditions=_SAMSI_CONDITIONS + "; latency = time to serve the same work at a full batch",
        notes=f"At batch {batch}, where the energy change is {100 * d_energy:+.1f} %. "
        + _SAMSI_BATCH_NOTE
        + _samsi_governor_note(gpu_w),
        miss_reason=(
            "the latency added by the cap is off by more than 25 % at every batch where the energy change is "
            "near the published one: how much of the board's power follows the clock (the share outside the "
            "graphics clock, set from the energy figure and the H200 clock-lock measurement) decides how much "
            "time the lower clock costs. The prompt lengths and the board (V100, 250 W default limit) are not "
            "in our source: the A100 stand-in runs capped already at 250 W at larger batches."
        ),
        fmt="{:+.1f}",
    )
