"""Run the decode workload while the sampler records power and tokens; sweep batch and power cap.

A run is: build the model (fixed seed) and warm it up; start the sampler; hold ``idle_s`` seconds
of idle baseline (phase ``idle``); then repeat *prefill a prompt batch, decode ``gen_len`` tokens*
until ``seconds`` have passed. A sample is forced at the idle/load boundary and at the end, so the
energy of the load window is exact to the meter's resolution. torch is imported inside the
functions, so this module imports without it.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.harness import HarnessError
from twin.harness.cpu import ModelMeter, RaplMeter, find_rapl_zones
from twin.harness.io import (
    LiveCsvWriter,
    atomic_write_frame,
    live_csv_path,
    meta_path,
    summary_path,
    write_json,
)
from twin.harness.meter import POWERCAP_ROOT, EnergyMeter
from twin.harness.nvml import NvmlMeter, ZeusWindows, nvml_index_of_cuda_device
from twin.harness.sampler import Sampler, WorkCounter
from twin.harness.summary import HarnessSummary

if TYPE_CHECKING:
    from twin.harness.model import GPTConfig, TinyGPT

NAN = float("nan")
#: A callback that shows one line of progress (the CLI prints it on stderr).
Progress = Callable[[str], None]
#: Seconds between progress lines during the load window.
PROGRESS_EVERY_S = 5.0
#: Columns of ``sweep.csv``.
SWEEP_COLUMNS: tuple[str, ...] = (
    "batch",
    "power_limit_w",
    "tokens_per_s",
    "mean_power_w",
    "j_per_token",
    "energy_source",
    "status",
    "file",
)


def auto_meter(device: str, cuda_index: int = 0, powercap_root: Path = POWERCAP_ROOT) -> EnergyMeter:
    """Pick the meter for ``device``: NVML on CUDA; on the CPU RAPL if readable, else the model.

    Raises
    ------
    HarnessError
        On CUDA when NVML cannot be used (GPU energy is never silently estimated).
    """
    if device.startswith("cuda"):
        return NvmlMeter(nvml_index_of_cuda_device(cuda_index))
    zones = find_rapl_zones(powercap_root)
    if zones:
        return RaplMeter(zones)
    return ModelMeter()


def _check_args(
    device: str,
    seconds: float,
    batch: int,
    prompt_len: int,
    gen_len: int,
    sample_hz: float,
    idle_s: float,
) -> None:
    if device != "cpu" and not device.startswith("cuda"):
        raise HarnessError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    rules = (
        ("seconds", seconds, seconds > 0),
        ("batch", batch, batch >= 1),
        ("prompt_len", prompt_len, prompt_len >= 1),
        ("gen_len", gen_len, gen_len >= 1),
        ("sample_hz", sample_hz, sample_hz > 0),
        ("idle_s", idle_s, idle_s >= 0),
    )
    bad = [f"{name}={value!r}" for name, value, ok in rules if not ok]
    if bad:
        raise HarnessError(
            f"bad harness arguments: {', '.join(bad)} "
            "(seconds, sample_hz > 0; batch, prompt_len, gen_len >= 1; idle_s >= 0)"
        )


def require_device(device: str) -> None:
    """Raise :class:`HarnessError` unless torch is installed and ``device`` is usable."""
    try:
        import torch
    except ImportError as exc:
        raise HarnessError(
            "torch is not installed; install the harness extra: pip install 'ai-factory-twin[harness]'"
        ) from exc
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError("CUDA not available on this machine; use --device cpu")


def _resolve_model(model: str | GPTConfig | TinyGPT, device: str, seed: int) -> TinyGPT:
    from twin.harness.model import GPTConfig, TinyGPT, build_model, model_preset

    if isinstance(model, TinyGPT):
        return model
    cfg = model_preset(model) if isinstance(model, str) else model
    if not isinstance(cfg, GPTConfig):
        raise HarnessError(f"model must be a preset name, a GPTConfig or a TinyGPT, got {model!r}")
    return build_model(cfg, device=device, seed=seed)


def _device_memory_bytes(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return float(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    try:
        import os

        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return NAN


@dataclass
class _Work:
    """Counters the workload loop fills."""

    prompt_tokens: int = 0
    prefill_time_s: float = 0.0
    prefill_flops_total: float = 0.0
    decode_time_s: float = 0.0
    decode_steps: int = 0
    decode_bytes_total: float = 0.0


def _workload(
    model: TinyGPT,
    counter: WorkCounter,
    seconds: float,
    batch: int,
    prompt_len: int,
    gen_len: int,
    seed: int,
    progress: Progress | None = None,
) -> _Work:
    """Prefill + decode rounds until ``seconds`` have passed; report to ``counter`` (and ``progress``)."""
    import torch

    from twin.harness.model import decode_step, model_cost, prefill, random_prompts

    cost = model_cost(model)
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    gen = torch.Generator().manual_seed(seed)
    work = _Work()
    clock = time.monotonic
    t_start = clock()
    t_end = t_start + seconds
    tokens = 0
    t_shown = t_start

    def show() -> None:
        nonlocal t_shown
        now = clock()
        if progress is not None and now - t_shown >= PROGRESS_EVERY_S:
            t_shown = now
            elapsed = now - t_start
            progress(f"load {elapsed:.0f} of {seconds:g} s: {tokens} tokens ({tokens / elapsed:.4g} tokens/s)")

    while clock() < t_end:
        counter.set_phase("prefill")
        t0 = clock()
        prompts = random_prompts(batch, prompt_len, model.cfg.vocab, gen, model.device)
        tok, cache = prefill(model, prompts, prompt_len + gen_len)
        sync()
        work.prefill_time_s += clock() - t0
        work.prefill_flops_total += cost.prefill_flops(batch, prompt_len)
        work.prompt_tokens += batch * prompt_len
        counter.add_tokens(batch)
        tokens += batch
        counter.set_phase("decode")
        for i in range(1, gen_len):
            if clock() >= t_end:
                break
            pos = prompt_len + i - 1
            t0 = clock()
            tok = decode_step(model, tok, cache, pos)
            sync()
            work.decode_time_s += clock() - t0
            work.decode_steps += 1
            work.decode_bytes_total += cost.decode_step_bytes(batch, pos)
            counter.add_tokens(batch)
            tokens += batch
            show()
    return work


def _warm_up(model: TinyGPT, batch: int, prompt_len: int, gen_len: int) -> None:
    import torch

    from twin.harness.model import generate

    prompts = torch.zeros((batch, prompt_len), dtype=torch.long, device=model.device)
    generate(model, prompts, min(gen_len, 4))
    if model.device.type == "cuda":
        torch.cuda.synchronize()


def _window_stats(frame: pd.DataFrame, boundary: int) -> dict[str, float]:
    """Energy, tokens and power of the load window (rows after ``boundary``) and idle power."""
    load = frame.iloc[boundary + 1 :]
    idle = frame.iloc[1 : boundary + 1]
    idle = idle[idle["phase"] == "idle"]
    duration_s = float(frame["time_s"].iloc[-1] - frame["time_s"].iloc[boundary])
    energy_j = float(frame["energy_j"].iloc[-1] - frame["energy_j"].iloc[boundary])
    tokens = float(load["tokens"].sum())
    power = load["power_w"].to_numpy(dtype=float)
    idle_power = idle["power_w"].to_numpy(dtype=float)
    return {
        "duration_s": duration_s,
        "energy_j": energy_j,
        "tokens": tokens,
        "tokens_per_s": tokens / duration_s if duration_s > 0 else NAN,
        "j_per_token": energy_j / tokens if tokens > 0 else NAN,
        "mean_power_w": energy_j / duration_s if duration_s > 0 else NAN,
        "peak_power_w": float(np.nanmax(power)) if np.isfinite(power).any() else NAN,
        "idle_power_w": float(np.nanmean(idle_power)) if np.isfinite(idle_power).any() else NAN,
        "power_limit_w": float(np.nanmedian(load["power_limit_w"]))
        if np.isfinite(load["power_limit_w"].to_numpy(dtype=float)).any()
        else NAN,
    }


def run_harness(
    device: str = "cpu",
    seconds: float = 10.0,
    batch: int = 8,
    out: Path | str = "harness.csv",
    *,
    prompt_len: int = 128,
    gen_len: int = 128,
    sample_hz: float = 10.0,
    power_limit_w: float | None = None,
    seed: int = 0,
    meter: EnergyMeter | None = None,
    idle_s: float = 2.0,
    model: str | GPTConfig | TinyGPT = "tiny",
    use_zeus: bool = True,
    progress: Progress | None = None,
) -> HarnessSummary:
    """Run the decode workload on ``device`` for ``seconds`` and record telemetry to ``out``.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
    seconds : float
        Length of the load window [s] (after the idle baseline).
    batch : int
        Sequences prefilled and decoded together.
    out : Path or str
        Telemetry file: ``.csv`` (written live) or ``.parquet`` (a live ``.csv`` beside it, the
        Parquet written at the end). The summary goes to ``<stem>.summary.json``.
    prompt_len, gen_len : int
        Prompt tokens per sequence, and tokens generated per sequence before a new prompt batch.
    sample_hz : float
        Sampling rate of the meter [Hz].
    power_limit_w : float, optional
        GPU power cap to set for the run (NVML, needs root); refused caps are recorded in
        ``power_limit_status`` and the run goes on at the current limit.
    seed : int
        Seed of the weights and of the prompts.
    meter : EnergyMeter, optional
        Meter to use (the caller keeps ownership); :func:`auto_meter` when
        omitted.
    idle_s : float
        Idle baseline before the load [s].
    model : str, GPTConfig or TinyGPT
        A preset name (``tiny``, ``small``, ``7b``), a shape, or a built model.
    use_zeus : bool
        On CUDA, also measure the idle and load windows with Zeus (recorded as
        ``zeus_energy_j``) when Zeus is installed.
    progress : callable, optional
        Called with a line at each phase and every :data:`PROGRESS_EVERY_S` of load.

    Returns
    -------
    HarnessSummary
        Also written to ``<stem>.summary.json``.

    Raises
    ------
    HarnessError
        If the arguments are bad, torch is missing or CUDA is asked for and absent.
    """
    _check_args(device, seconds, batch, prompt_len, gen_len, sample_hz, idle_s)
    require_device(device)
    import torch

    say = progress or (lambda _line: None)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    net = _resolve_model(model, device, seed)
    if prompt_len + gen_len > net.cfg.max_seq:
        raise HarnessError(
            f"prompt_len + gen_len = {prompt_len + gen_len} exceeds the model's max_seq {net.cfg.max_seq}"
        )
    from twin.harness.model import model_cost

    say(f"batch {batch}: warming up on {device}")
    _warm_up(net, batch, prompt_len, gen_len)
    cuda_index = (net.device.index or 0) if net.device.type == "cuda" else 0
    own_meter = meter is None
    meter = meter or auto_meter(device, cuda_index)
    zeus = ZeusWindows(cuda_index if use_zeus and net.device.type == "cuda" else None)
    out = Path(out)
    summary_path(out).unlink(missing_ok=True)  # a stale summary would end a follower at once
    write_json(
        meta_path(out),
        {
            "device": device,
            "device_name": meter.device_name,
            "energy_source": meter.energy_source,
            "energy_note": meter.note,
            "batch": batch,
            "sample_hz": sample_hz,
            "started_at": started_at,
        },
    )
    writer = LiveCsvWriter(live_csv_path(out))
    counter = WorkCounter(phase="idle")
    sampler = Sampler(meter, counter, writer, sample_hz=sample_hz, gpu_index=cuda_index)
    status = "default"
    try:
        if power_limit_w is not None:
            status = meter.set_power_limit(power_limit_w)
        sampler.start()
        say(f"idle baseline {idle_s:g} s, then {seconds:g} s of load; samples to {live_csv_path(out)}")
        zeus.begin("idle")
        time.sleep(idle_s)
        zeus.end("idle")
        sampler.sample(then_phase="prefill")  # boundary row: the load window starts here
        boundary = sampler.n_samples - 1
        zeus.begin("load")
        work = _workload(net, counter, seconds, batch, prompt_len, gen_len, seed, progress)
        zeus.end("load")
        sampler.stop()
        info = meter.describe()
    finally:
        writer.close()
        meter.restore_power_limit()
        if own_meter:
            meter.close()
    frame = writer.frame()
    stats = _window_stats(frame, boundary)
    notes = list(zeus.problems)
    if net.device.type == "cuda":
        cuda_name = torch.cuda.get_device_name(net.device)
        if cuda_name != meter.device_name:
            notes.append(
                f"NVML measured {meter.device_name!r} but the workload ran on {cuda_name!r}: the CUDA and "
                "NVML device orders may differ; set CUDA_DEVICE_ORDER=PCI_BUS_ID"
            )
    if status not in ("default", "set"):
        notes.append(f"power limit {power_limit_w} W {status}")
    summary = HarnessSummary(
        out=str(out),
        device=device,
        device_name=meter.device_name,
        energy_source=meter.energy_source,
        energy_note=meter.note,
        batch=batch,
        prompt_len=prompt_len,
        gen_len=gen_len,
        dtype=str(net.dtype).removeprefix("torch."),
        torch_version=torch.__version__,
        seed=seed,
        sample_hz=sample_hz,
        idle_s=idle_s,
        duration_s=stats["duration_s"],
        tokens=int(stats["tokens"]),
        prompt_tokens=work.prompt_tokens,
        tokens_per_s=stats["tokens_per_s"],
        energy_j=stats["energy_j"],
        j_per_token=stats["j_per_token"],
        mean_power_w=stats["mean_power_w"],
        peak_power_w=stats["peak_power_w"],
        idle_power_w=stats["idle_power_w"],
        power_limit_w=stats["power_limit_w"],
        power_limit_requested_w=NAN if power_limit_w is None else float(power_limit_w),
        power_limit_status=status,
        prefill_time_s=work.prefill_time_s,
        prefill_flops_total=work.prefill_flops_total,
        decode_time_s=work.decode_time_s,
        decode_steps=work.decode_steps,
        decode_bytes_total=work.decode_bytes_total,
        device_memory_bytes=_device_memory_bytes(device),
        n_samples=len(frame),
        started_at=started_at,
        model={**asdict(net.cfg), **model_cost(net).as_dict()},
        meter={**info, "host": platform.node(), "torch_threads": torch.get_num_threads()},
        zeus_energy_j=zeus.result,
        notes=notes,
    )
    if out.suffix == ".parquet":
        atomic_write_frame(out, frame)
    write_json(summary_path(out), summary.to_dict())
    return summary


def _point_name(batch: int, power_limit_w: float | None) -> str:
    cap = "default" if power_limit_w is None else f"cap{power_limit_w:g}W"
    return f"batch{batch}_{cap}.csv"


def run_harness_sweep(
    device: str,
    seconds: float,
    batches: list[int],
    power_limits_w: list[float] | None,
    out_dir: Path | str,
    *,
    meter: EnergyMeter | None = None,
    model: str | GPTConfig | TinyGPT = "tiny",
    seed: int = 0,
    **kwargs: Any,
) -> pd.DataFrame:
    """Run the harness over batch sizes (and power caps where NVML permits).

    Each point writes ``batchB_default.csv`` or ``batchB_capPW.csv`` (+ summary) into
    ``out_dir``; ``sweep.csv`` lists the points. Caps are tried once first: where the meter
    cannot set them (no root, or the CPU), every cap gets a row with that status and NaN figures,
    and the batches run at the default limit only.

    Parameters
    ----------
    device, seconds : str, float
        As in :func:`run_harness`.
    batches : list of int
        Batch sizes.
    power_limits_w : list of float, optional
        Power caps [W]; ``None`` or empty runs the default limit only.
    out_dir : Path or str
        Directory for the point files and ``sweep.csv``.
    meter : EnergyMeter, optional
        Shared meter (created once when omitted).
    model : str, GPTConfig or TinyGPT
        Built once and reused for every point.
    seed : int
        Seed of weights and prompts.
    **kwargs
        Passed to :func:`run_harness` (``prompt_len``, ``gen_len``, ``sample_hz``, ``idle_s``,
        ``progress``, which also hears which point starts).

    Returns
    -------
    pandas.DataFrame
        The rows of ``sweep.csv`` (:data:`SWEEP_COLUMNS`).
    """
    if not batches:
        raise HarnessError("a sweep needs at least one batch size")
    require_device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    net = _resolve_model(model, device, seed)
    cuda_index = (net.device.index or 0) if net.device.type == "cuda" else 0
    own_meter = meter is None
    meter = meter or auto_meter(device, cuda_index)
    rows: list[dict[str, Any]] = []
    caps: list[float | None] = [None]
    try:
        if power_limits_w:
            probe = meter.set_power_limit(power_limits_w[0])
            meter.restore_power_limit()
            if probe == "set":
                caps = [float(p) for p in power_limits_w]
            else:
                rows += [
                    {
                        "batch": b,
                        "power_limit_w": float(p),
                        "tokens_per_s": NAN,
                        "mean_power_w": NAN,
                        "j_per_token": NAN,
                        "energy_source": meter.energy_source,
                        "status": probe,
                        "file": "",
                    }
                    for p in power_limits_w
                    for b in batches
                ]
        say: Progress | None = kwargs.get("progress")
        n_points, done = len(caps) * len(batches), 0
        for cap in caps:
            for b in batches:
                path = out_dir / _point_name(b, cap)
                done += 1
                if say is not None:
                    say(f"point {done} of {n_points}: {path.name}")
                s = run_harness(
                    device,
                    seconds,
                    b,
                    path,
                    power_limit_w=cap,
                    seed=seed,
                    meter=meter,
                    model=net,
                    **kwargs,
                )
                rows.append(
                    {
                        "batch": b,
                        "power_limit_w": s.power_limit_w,
                        "tokens_per_s": s.tokens_per_s,
                        "mean_power_w": s.mean_power_w,
                        "j_per_token": s.j_per_token,
                        "energy_source": s.energy_source,
                        "status": s.power_limit_status,
                        "file": path.name,
                    }
                )
    finally:
        if own_meter:
            meter.close()
    frame = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
    atomic_write_frame(out_dir / "sweep.csv", frame)
    return frame


__all__ = [
    "SWEEP_COLUMNS",
    "HarnessSummary",
    "require_device",
    "run_harness",
    "run_harness_sweep",
]
