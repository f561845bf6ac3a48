"""The serving validation's figures: errors per configuration, summaries, misses, table and plots.

Errors are ``(predicted - measured) / measured`` per configuration, for GPU power (per GPU), GPU
energy per output token, output tokens/s and median inter-token latency; a summary is their
mean absolute value (MAPE). The last line of ``twin validate-serving`` (:func:`accuracy_line`)
states the held-out models' figures over their H100 and B200 rows; the table gives every half
and GPU. A held-out configuration *misses* where an error exceeds its target
(:data:`TARGETS_PCT`), and every miss is named with the reason its group is known to miss for
(:func:`miss_reason`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin.catalog.serving_accuracy import COLUMNS
from twin.validation.serving_data import TASK_PROMPT_TOKENS
from twin.validation.serving_fit import STALL_RATIO, at_bounds, slower_than_on_a_weaker_gpu, split_models, stalled

#: Measured column, predicted column and label of each compared quantity.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("power_w_per_gpu", "pred_power_w_per_gpu", "power"),
    ("energy_per_token_joules", "pred_j_per_token", "J/token"),
    ("output_throughput_tokens_per_sec", "pred_tokens_per_s", "tokens/s"),
    ("itl_p50_s", "pred_itl_p50_s", "ITL p50"),
)
#: The issue's targets on held-out models: MAPE in percent per quantity.
TARGETS_PCT: dict[str, float] = {"power": 10.0, "J/token": 15.0, "tokens/s": 15.0, "ITL p50": 20.0}
#: GPUs the accuracy line is stated for.
LINE_GPUS = ("H100", "B200")


def with_errors(pred: pd.DataFrame) -> pd.DataFrame:
    """``pred`` (from :func:`twin.validation.serving.predict`) with ``half``, ``err_*`` and ``miss`` columns."""
    out = pred.copy()
    runnable = out["reason"] == ""
    fit_models, held_models = split_models(out.loc[out["text"], "model_id"])
    out["half"] = np.where(
        out["model_id"].isin(held_models), "held-out", np.where(out["model_id"].isin(fit_models), "fit", "")
    )
    for measured, predicted, label in METRICS:
        out[f"err_{label}"] = out[predicted] / out[measured] - 1.0
    over = np.zeros(len(out), dtype=bool)
    for label, target in TARGETS_PCT.items():
        over |= (100.0 * out[f"err_{label}"].abs()).to_numpy() > target
    out["miss"] = runnable.to_numpy() & over
    out["stalled"] = stalled(out).to_numpy()
    out["slower_than_weaker_gpu"] = slower_than_on_a_weaker_gpu(out).to_numpy()
    return out


def summary(errors: pd.DataFrame) -> pd.DataFrame:
    """MAPE (percent) per half and GPU, and for both GPUs of :data:`LINE_GPUS` together."""
    ok = errors[errors["reason"] == ""]
    rows = []
    groups = [
        (h, g, ok[(ok["half"] == h) & (ok["gpu_model"] == g)])
        for h in ("fit", "held-out")
        for g in sorted(set(ok["gpu_model"]))
    ]
    both = "+".join(LINE_GPUS)
    for h in ("fit", "held-out"):
        groups.append((h, both, ok[(ok["half"] == h) & ok["gpu_model"].isin(LINE_GPUS)]))
    held = ok[(ok["half"] == "held-out") & ok["gpu_model"].isin(LINE_GPUS) & ~ok["stalled"]]
    groups.append(("held-out, not stalled", both, held))
    for half, gpu, part in groups:
        if part.empty:
            continue
        row: dict[str, object] = {"half": half, "gpu": gpu, "configurations": len(part)}
        for _, _, label in METRICS:
            row[label] = 100.0 * float(part[f"err_{label}"].abs().mean())
        rows.append(row)
    return pd.DataFrame(rows)


def accuracy_line(errors: pd.DataFrame) -> str:
    """``serving accuracy: N of M configurations; MAPE power X %, J/token Y %, tokens/s Z %, ITL p50 W %``.

    ``M`` counts the held-out models' text configurations on the GPUs of :data:`LINE_GPUS`,
    ``N`` those the twin ran; the MAPEs are over the ``N`` (``n/a`` where ``N`` is 0).
    """
    held = errors[(errors["half"] == "held-out") & errors["gpu_model"].isin(LINE_GPUS) & errors["text"]]
    ran = held[held["reason"] == ""]
    parts = [
        f"{label} {100.0 * float(ran[f'err_{label}'].abs().mean()):.1f} %" if len(ran) else f"{label} n/a"
        for _, _, label in METRICS
    ]
    return f"serving accuracy: {len(ran)} of {len(held)} configurations; MAPE " + ", ".join(parts)


#: Where the held-out figures per accelerator come from, as :mod:`twin.catalog.serving_accuracy` states them.
ACCURACY_SOURCE = "ML.ENERGY v3, vLLM; twin validate-serving"


def accuracy_table(errors: pd.DataFrame) -> pd.DataFrame:
    """The held-out MAPE per accelerator, rounded as stated, in the columns of :mod:`twin.catalog.serving_accuracy`.

    What every run that serves on one of these accelerators states (``twin run`` prints it); an
    accelerator without held-out configurations that ran has no row.
    """
    held = errors[(errors["half"] == "held-out") & (errors["reason"] == "")]
    names = dict(zip(TARGETS_PCT, COLUMNS[2:6], strict=True))  # power, J/token, tokens/s, ITL p50
    rows = []
    for acc, part in sorted(held.groupby("accelerator"), key=lambda kv: str(kv[0])):
        row: dict[str, object] = {"accelerator": acc, "configurations": len(part)}
        for _, _, label in METRICS:
            row[names[label]] = round(100.0 * float(part[f"err_{label}"].abs().mean()), 1)
        row["source"] = ACCURACY_SOURCE
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _slower_text(errors: pd.DataFrame) -> str:
    ran = errors[errors["reason"] == ""]
    slow = ran[ran["slower_than_weaker_gpu"]]
    per_gpu = ", ".join(f"{n} on {g}" for g, n in slow.groupby("gpu_model").size().items()) or "none"
    return (
        f"Runs slower per step (median ITL) than the same configuration on a GPU no better on paper (less or "
        f"equal HBM bandwidth, FLOP/s and link bandwidth): {len(slow)} of {len(ran)} ({per_gpu}). A step the GPU "
        "bounds cannot take longer on a better GPU, so the host or the engine paced these; they are compared and "
        "counted (twin.validation.serving_fit.slower_than_on_a_weaker_gpu)."
    )


def miss_reason(group: pd.DataFrame) -> str:
    """Why a group of configurations misses, from what the data show (docs/serving-accuracy.md)."""
    row = group.iloc[0]
    model = str(row["model_id"])
    if bool(group["stalled"].any()):
        return (
            f"stalled runs: the mean step (batch / tokens/s) is over {STALL_RATIO:g}x the median ITL, so most of the "
            "window went to stalls (preemption, data-parallel ranks waiting); a steady-state model serves them faster"
        )
    if bool(group["slower_than_weaker_gpu"].any()):
        return (
            f"{int(group['slower_than_weaker_gpu'].sum())} of these {len(group)} runs are slower per step than the "
            "same configuration on a GPU no better on paper (the H100: 0.42x the HBM bandwidth): not paced by the "
            "GPU (host, engine or kernel choice), which the twin does not model"
        )
    if row["gpu_model"] == "B200" and row["task"] == "gpqa" and int(row["num_gpus"]) == 1:
        return (
            "B200 single-GPU reasoning runs: steps take 30-45 ms at every batch (the same models on lm-arena-chat "
            "take 5-15 ms on the same GPU) at low power, an engine state the hardware does not explain"
        )
    if int(row["data_parallel"]) > 1:
        return "data-parallel attention with expert parallelism on B200: 3-10x slower than the same model with TP+EP"
    if "gpt-oss" in model and row["gpu_model"] == "H100":
        return "gpt-oss on H100 runs with piecewise CUDA graphs only (its v3 config): more host time per step"
    worst = {label: float(group[f"err_{label}"].mean()) for _, _, label in METRICS}
    label = max(worst, key=lambda k: abs(worst[k]))
    side = "high" if worst[label] > 0 else "low"
    where = "B200 runs scatter more than H100 ones; " if row["gpu_model"] == "B200" else ""
    return f"{where}the twin reads {side} on {label} here (mean {100 * worst[label]:+.0f} %): within the fit's spread"


def misses(errors: pd.DataFrame) -> pd.DataFrame:
    """Held-out misses grouped by model, GPU, GPU count and task, with their reason."""
    m = errors[errors["miss"] & (errors["half"] == "held-out")]
    if m.empty:
        return pd.DataFrame(columns=["model", "gpu", "gpus", "task", "configurations", "worst", "reason"])
    rows = []
    for (model, gpu, gpus, task), part in m.groupby(["model_id", "gpu_model", "num_gpus", "task"]):
        worst = {label: 100.0 * float(part[f"err_{label}"].abs().max()) for _, _, label in METRICS}
        key = max(worst, key=lambda k: worst[k])
        rows.append(
            {
                "model": model,
                "gpu": gpu,
                "gpus": int(gpus),
                "task": task,
                "configurations": len(part),
                "worst": f"{key} {worst[key]:.0f} %",
                "reason": miss_reason(part),
            }
        )
    return pd.DataFrame(rows).sort_values(["gpu", "model", "gpus"]).reset_index(drop=True)


def parity_plot(errors: pd.DataFrame, path: Path) -> Path:
    """Predicted against measured, one panel per quantity, fit and held-out models apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = errors[errors["reason"] == ""]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4))
    units = {"power": "W per GPU", "J/token": "J per output token", "tokens/s": "output tokens/s", "ITL p50": "s"}
    styles = {
        ("fit", "H100"): ("o", "#9ecae1"),
        ("fit", "B200"): ("s", "#fdae6b"),
        ("held-out", "H100"): ("o", "#08519c"),
        ("held-out", "B200"): ("s", "#d94801"),
    }
    for ax, (measured, predicted, label) in zip(axes, METRICS, strict=True):
        for (half, gpu), (marker, colour) in styles.items():
            part = ok[(ok["half"] == half) & (ok["gpu_model"] == gpu)]
            if not part.empty:
                ax.scatter(
                    part[measured],
                    part[predicted],
                    s=10,
                    marker=marker,
                    color=colour,
                    alpha=0.8,
                    label=f"{gpu} {half}",
                    linewidths=0,
                )
        lo = float(np.nanmin(ok[[measured, predicted]].to_numpy())) * 0.8
        hi = float(np.nanmax(ok[[measured, predicted]].to_numpy())) * 1.25
        x = np.array([lo, hi])
        ax.plot(x, x, "k-", lw=0.8)
        target = TARGETS_PCT[label] / 100.0
        ax.plot(x, x * (1 + target), "k:", lw=0.6)
        ax.plot(x, x * (1 - target), "k:", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"measured {label} [{units[label]}]")
        ax.set_ylabel(f"twin {label} [{units[label]}]")
        ax.set_title(f"{label} (dotted: +-{TARGETS_PCT[label]:g} %)", fontsize=10)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("ML.ENERGY v3 (vLLM 0.11.1): twin against measurement, every text configuration", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(errors: pd.DataFrame, dataset: str, command: str, plot: str | None) -> str:
    """The report: what was compared, the summary, the misses, and where the rest is."""
    s = summary(errors)
    lines = [
        "# How accurate is the serving model? ML.ENERGY v3 configurations",
        "",
        f"Generated by `{command}`; do not edit by hand. Dataset: `{dataset}` (ML.ENERGY Leaderboard v3, vLLM "
        "0.11.1, H100 and B200, Apache-2.0; see its SOURCE.md). Each configuration is run through the engine's "
        "serving model and governor as the benchmark ran it (twin.validation.serving). Parameters are fitted once "
        "per accelerator on the **fit** half of the models and reported on the **held-out** half "
        "(twin.validation.serving_fit.split_models: the text models in sorted order, every other one held out).",
        "",
        f"**{accuracy_line(errors)}** (held-out models, H100 and B200 rows; targets: MAPE power <= 10 %, "
        "J/token <= 15 %, "
        "tokens/s <= 15 %, ITL p50 <= 20 %).",
        "",
        "| half | GPU | configurations | power | J/token | tokens/s | ITL p50 |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for r in s.to_dict("records"):
        vals = " | ".join(f"{r[k]:.1f} %" for k in TARGETS_PCT)
        lines.append(f"| {r['half']} | {r['gpu']} | {r['configurations']} | {vals} |")
    if plot:
        lines += ["", f"![parity plot]({plot})"]
    fit_models, held_models = split_models(errors.loc[errors["text"], "model_id"])
    lines += [
        "",
        f"Fit half ({len(fit_models)}): " + ", ".join(fit_models) + ".",
        "",
        f"Held-out half ({len(held_models)}): " + ", ".join(held_models) + ".",
    ]
    prompts = ", ".join(f"{task} {tokens:.0f}" for task, tokens in TASK_PROMPT_TOKENS.items())
    lines += [
        "",
        "## What the twin takes where the data are silent",
        "",
        f"* Prompt tokens per request, per task (not in the CSV; from the benchmark's datasets): {prompts} "
        "(twin.validation.serving_data explains each). Output tokens: each run's own mean, and the context a "
        "running sequence holds from its output-length histogram (E[o^2] / 2 E[o]).",
        "* The batch: max_num_seqs, held full (the benchmark sent every request at once and kept only runs whose "
        "mean batch held at least 0.85 of it), so the KV-cache limit is not applied here (it is in `twin run`).",
        f"* A run whose mean step (batch / tokens/s) is over {STALL_RATIO:g}x its median ITL spent most of its "
        "window stalled (preemption, data-parallel ranks waiting); it is compared and counted, and the "
        "'not stalled' row shows the summary without it.",
        f"* {_slower_text(errors)}",
        "* Power: the board's power limit (TDP) held by the engine's closed-loop governor, as vLLM ran at default "
        "clocks.",
    ]
    lines += _bounds_section(errors)
    skipped = errors[(errors["reason"] != "")]
    if not skipped.empty:
        lines += ["", "## Not run", "", "| reason | configurations |", "|---|--:|"]
        for reason, part in skipped.groupby("reason"):
            lines.append(f"| {reason} | {len(part)} |")
    m = misses(errors)
    lines += ["", "## Held-out configurations that miss a target, and why", ""]
    if m.empty:
        lines.append("None.")
    else:
        lines += ["| model | GPU | GPUs | task | configurations | worst error | why |", "|---|---|--:|---|--:|---|---|"]
        for r in m.itertuples(index=False):
            lines.append(f"| {r.model} | {r.gpu} | {r.gpus} | {r.task} | {r.configurations} | {r.worst} | {r.reason} |")
    lines += ["", "Every configuration, measured and predicted, is in the CSV written beside this file.", ""]
    return "\n".join(lines)


def _bounds_section(errors: pd.DataFrame) -> list[str]:
    """The catalog's fitted parameters that sit on a bound of the fit, per accelerator of the data."""
    from twin import catalog

    names = sorted({str(a) for a in errors.get("accelerator", pd.Series(dtype=str)).dropna() if str(a)})
    found = {name: at_bounds(catalog.accelerator_spec(name)) for name in names}
    if not any(found.values()):
        return []
    lines = [
        "",
        "## Fitted parameters on a bound of the fit",
        "",
        "A parameter on a bound is one the data would push past what the fit allows (the best kernels' measured "
        "fractions, a sum of memory and compute time at the slowest, uniform expert routing at the most even, "
        "HBM at its 3.9 pJ/bit floor, 1.5 x TDP at full activity: twin.validation.serving_fit, with sources); "
        "the other parameters absorb what it cannot, and the errors above carry the rest.",
        "",
    ]
    lines += [f"* {name}: " + "; ".join(items) + "." for name, items in found.items() if items]
    return lines


CSV_COLUMNS = (
    "model_id",
    "task",
    "gpu_model",
    "num_gpus",
    "tensor_parallel",
    "data_parallel",
    "expert_parallel",
    "max_num_seqs",
    "half",
    "reason",
    "avg_batch_size",
    "pred_batch",
    "power_w_per_gpu",
    "pred_power_w_per_gpu",
    "energy_per_token_joules",
    "pred_j_per_token",
    "output_throughput_tokens_per_sec",
    "pred_tokens_per_s",
    "itl_p50_s",
    "pred_itl_p50_s",
    "pred_clock",
    "miss",
    "stalled",
    "slower_than_weaker_gpu",
)
