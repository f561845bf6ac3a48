"""Fit an accelerator catalog entry from harness output.

What is fitted, from which data:

``idle_power_w``
    mean sampled power in the ``idle`` phase.
``max_power_w``
    least-squares line ``P = P0 + k u`` over every sample (power against utilisation);
    ``max_power_w = P0 + k``, the power at full utilisation *of this workload* (a GPU decode loop
    can show ``u = 1`` well below the board's TDP, so on GPUs this is a lower bound of TDP).
``achieved_bandwidth_fraction`` and ``step_overhead_s``
    decode steps. With runs at two or more distinct bytes per step (a batch sweep), the line
    ``t_step = t0 + bytes / B`` gives the per-step overhead ``t0`` and the achieved bandwidth
    ``B``; with one run, ``B = bytes / time`` (overhead included). The fraction is ``B`` over the
    base SKU's ``hbm_bandwidth_b_s``.
``achieved_flop_fraction``
    prefill FLOP/s (``2 N`` per token plus attention) over the base SKU's ``bf16_flop_s``.

On a CPU there is no datasheet peak to divide by: the achieved values are written as the peaks
and the fractions as 1, and every such field's source says so.

The YAML entry is flat, as a scenario's ``fleet.accelerator_file`` expects: ``name`` and the
:class:`~twin.catalog.AcceleratorSpec` fields as numbers at the top level (the SKU's own catalog
values where a base is used, overwritten by the fitted ones; the shared defaults are left to
:func:`twin.catalog.accelerator_from_mapping`), then non-numeric notes: ``base``, ``fitted``,
``sources`` (one line per parameter), ``fit`` (R², sample counts), ``runs`` and ``notes``.
:func:`load_calibration` reads it back.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from twin.catalog import (
    CATALOG_DIR,
    AcceleratorSpec,
    accelerator_from_mapping,
    accelerator_names,
    accelerator_spec,
)
from twin.errors import TraceFormatError, TwinError
from twin.harness.io import atomic_write_text, read_harness, summary_path
from twin.results import json_safe

#: AcceleratorSpec parameter names, in the dataclass's order.
_SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AcceleratorSpec) if f.name != "name")
#: Substrings of NVML device names and the catalog SKU they select (first match wins). PCIe and
#: NVL boards have other power limits than the SXM parts in the catalog, so they need ``base``.
_NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("GB200", "GB200"),
    ("B200", "B200"),
    ("H200", "H200-SXM"),
    ("H100", "H100-SXM"),
    ("A100", "A100-SXM4-80GB"),
    ("MI300X", "MI300X"),
)
#: [EST] Placeholders for CPU entries: the harness measures no CPU thermal limits. Typical x86
#: server parts throttle near 95-100 C (vendor Tjmax/Tctl max); round values, not measured.
_CPU_THERMAL_PLACEHOLDERS: dict[str, float] = {
    "slowdown_temp_c": 95.0,
    "shutdown_temp_c": 105.0,
    "max_operating_temp_c": 90.0,
}


@dataclass(frozen=True)
class LineFit:
    """Least-squares line ``y = intercept + slope x``.

    Attributes
    ----------
    intercept, slope : float
        Coefficients (units of y, and of y per unit of x).
    r2 : float
        Coefficient of determination (NaN when y has no spread and the fit is not exact).
    n : int
        Points used.
    """

    intercept: float
    slope: float
    r2: float
    n: int


def _sku_rows(sku: str) -> dict[str, float]:
    """Return the parameters the catalog gives ``sku`` itself (not the shared ``*`` defaults)."""
    with (CATALOG_DIR / "accelerators.csv").open(newline="") as fh:
        return {r["parameter"]: float(r["value"]) for r in csv.DictReader(fh) if r["accelerator"] == sku}


def fit_line(x: np.ndarray, y: np.ndarray) -> LineFit:
    """Fit ``y = a + b x`` by least squares over the finite pairs.

    Raises
    ------
    ValueError
        With fewer than two finite pairs or no spread in ``x``.

    Examples
    --------
    >>> f = fit_line(np.array([0.0, 0.5, 1.0]), np.array([70.0, 385.0, 700.0]))
    >>> round(f.intercept, 6), round(f.slope, 6), f.r2
    (70.0, 630.0, 1.0)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError(f"a line needs two or more points with spread in x (got {x.size})")
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - (a + b * x)
    ss_res = float(resid @ resid)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else math.nan)
    return LineFit(float(a), float(b), float(r2), int(x.size))


def guess_base(device_name: str) -> str | None:
    """Catalog SKU matching an NVML device name, or None (PCIe/NVL boards are never guessed)."""
    upper = device_name.upper()
    if "PCIE" in upper or "NVL" in upper:
        return None
    for hint, sku in _NAME_HINTS:
        if hint in upper:
            return sku
    return None


def _expand(path_or_paths: Path | str | Sequence[Path | str]) -> list[Path]:
    items = [path_or_paths] if isinstance(path_or_paths, str | Path) else list(path_or_paths)
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            sweep = item / "sweep.csv"
            if sweep.exists():
                paths += [item / f for f in _sweep_files(sweep)]
            else:
                paths += sorted(p for p in item.glob("*.csv") if p.name != "sweep.csv")
        else:
            paths.append(item)
    if not paths:
        raise TwinError(f"no harness files in {path_or_paths}")
    return paths


def _sweep_files(sweep: Path) -> list[str]:
    """The ``file`` column of a sweep's ``sweep.csv`` (errors name the file and the line)."""
    from twin.workload._parse import Source, read_csv, require_columns

    source = Source(sweep)
    frame = read_csv(source, dtype="str")
    require_columns(source, frame, ["file"], "sweep")
    names = [str(f).strip() for f in frame["file"].dropna()]
    return [n for n in names if n]


def calibration_path(path_or_paths: Path | str | Sequence[Path | str]) -> Path:
    """Return where :func:`calibrate` writes by default.

    That is ``<stem>.accelerator.yaml`` beside the first file, or ``accelerator.yaml`` inside a
    sweep directory.
    """
    if isinstance(path_or_paths, str | Path) and Path(path_or_paths).is_dir():
        return Path(path_or_paths) / "accelerator.yaml"
    first = _expand(path_or_paths)[0]
    return first.with_name(first.stem + ".accelerator.yaml")


#: Summary fields the fits read as numbers; each must be a finite number >= 0 (or null).
_SUMMARY_NUMBERS: tuple[str, ...] = (
    "decode_steps",
    "decode_time_s",
    "decode_bytes_total",
    "prefill_flops_total",
    "prefill_time_s",
    "device_memory_bytes",
)


def _load_runs(paths: list[Path]) -> list[tuple[Path, pd.DataFrame, dict[str, Any]]]:
    runs = []
    for path in paths:
        frame, summary = read_harness(path)
        if not summary:
            raise TraceFormatError(str(path), "no summary JSON beside it: the run did not finish, cannot calibrate")
        for key in _SUMMARY_NUMBERS:
            value = summary.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < math.inf):
                raise TraceFormatError(
                    str(summary_path(path)), f"expected a finite number >= 0 or null, got {value!r}", field=key
                )
        runs.append((path, frame, summary))
    return runs


def _num(summary: dict[str, Any], key: str) -> float:
    value = summary.get(key)
    return math.nan if value is None else float(value)


def calibrate(
    path_or_paths: Path | str | Sequence[Path | str],
    accelerator_base: str | None = None,
    name: str | None = None,
    out: Path | str | None = None,
) -> dict[str, Any]:
    """Fit an accelerator entry from harness runs and write it as YAML (atomically).

    Parameters
    ----------
    path_or_paths : Path, str or sequence of them
        Harness ``--out`` files, or a sweep directory (its ``sweep.csv`` lists the files).
    accelerator_base : str, optional
        Catalog SKU that supplies the peaks and the fields not fitted (GPU runs). Guessed from
        the device name when omitted; must be omitted for CPU runs.
    name : str, optional
        Name of the new entry (``<base>-calibrated`` or ``cpu-calibrated`` by default).
    out : Path or str, optional
        YAML file to write; ``<first file stem>.accelerator.yaml`` (or ``accelerator.yaml`` in a
        sweep directory) by default.

    Returns
    -------
    dict
        The YAML document: ``name``, the parameters (top-level numbers), ``base``, ``device``,
        ``device_name``, ``energy_source``, ``fitted``, ``sources``, ``fit`` (R² and sample
        counts), ``runs``, ``notes``.

    Raises
    ------
    TwinError
        On unfinished runs, mixed CPU/GPU runs, an unknown or inapplicable base, or too little
        data for the required fits.
    """
    paths = _expand(path_or_paths)
    runs = _load_runs(paths)
    kinds = {str(s.get("device", "cpu")).split(":")[0] for _, _, s in runs}
    if len(kinds) != 1:
        raise TwinError(f"cannot calibrate CPU and GPU runs together: devices {sorted(kinds)}")
    kind = kinds.pop()
    on_gpu = kind == "cuda"
    device_name = str(runs[0][2].get("device_name", ""))
    sources_seen = sorted({str(s.get("energy_source")) for _, _, s in runs})
    estimated = "estimated" in sources_seen
    notes: list[str] = []
    base_spec: AcceleratorSpec | None = None
    if on_gpu:
        base = accelerator_base or guess_base(device_name)
        if base is None:
            raise TwinError(
                f"cannot tell which catalog SKU {device_name!r} is; pass a base "
                f"(one of {', '.join(accelerator_names())})"
            )
        base_spec = accelerator_spec(base)
    elif accelerator_base is not None:
        raise TwinError(
            f"these are CPU runs ({device_name}); a GPU base {accelerator_base!r} would divide "
            "CPU throughput by GPU peaks. Calibrate without a base."
        )
    else:
        base = None

    # Runs under a lowered power cap are left out of the fits when default-limit runs exist.
    default_runs = [r for r in runs if r[2].get("power_limit_status", "default") == "default"]
    used_runs = default_runs or runs
    if len(used_runs) < len(runs):
        notes.append(
            f"the fits use the {len(used_runs)} default-limit runs; {len(runs) - len(used_runs)} capped runs left out"
        )
    fitted: dict[str, float] = {}
    field_sources: dict[str, str] = {}
    fit_info: dict[str, Any] = {}
    label = "ESTIMATED energy (a model, not a measurement): " if estimated else ""
    _fit_power(used_runs, f"{label}{'/'.join(sources_seen)}", fitted, field_sources, fit_info, notes)
    bw_b_s, overhead_s = _fit_decode(used_runs, fit_info, notes)
    flop_s = _fit_prefill(used_runs, fit_info)

    params: dict[str, float] = {}
    if base_spec is not None:
        params.update(_sku_rows(str(base)))
        field_sources.update(dict.fromkeys(params, f"base {base} (twin catalog)"))
        if math.isfinite(bw_b_s):
            fitted["achieved_bandwidth_fraction"] = bw_b_s / base_spec.hbm_bandwidth_b_s
            field_sources["achieved_bandwidth_fraction"] = (
                f"decode: achieved {bw_b_s:.4g} B/s over {base} peak {base_spec.hbm_bandwidth_b_s:.4g} B/s"
            )
        if math.isfinite(flop_s):
            fitted["achieved_flop_fraction"] = flop_s / base_spec.bf16_flop_s
            field_sources["achieved_flop_fraction"] = (
                f"prefill: achieved {flop_s:.4g} FLOP/s over {base} bf16 peak {base_spec.bf16_flop_s:.4g} FLOP/s"
            )
        fraction_max = max(
            fitted.get("achieved_bandwidth_fraction", 0.0),
            fitted.get("achieved_flop_fraction", 0.0),
        )
        if fraction_max > 1.0:
            notes.append("an achieved fraction exceeds 1: check the base SKU")
    else:
        _cpu_parameters(runs, fitted, field_sources, bw_b_s, flop_s, notes)

    if math.isfinite(overhead_s):
        fitted["step_overhead_s"] = overhead_s
        field_sources["step_overhead_s"] = "decode: intercept of t_step = t0 + bytes / B"
    if "idle_power_w" not in fitted or "max_power_w" not in fitted:
        if base_spec is None:
            raise TwinError(f"{paths[0]}: too few power samples to fit idle and max power")
        notes.append("idle/max power not fitted: base values kept")
    params.update(fitted)
    if estimated:
        notes.insert(
            0,
            "energy_source is 'estimated': the power fields restate the harness's CPU power "
            "model, they are not measured",
        )

    entry_name = name or (f"{base}-calibrated" if base else "cpu-calibrated")
    doc: dict[str, Any] = {
        "name": entry_name,
        **{k: float(params[k]) for k in _SPEC_FIELDS if k in params},
        "base": base,
        "device": kind,
        "device_name": device_name,
        "energy_source": "/".join(sources_seen),
        "fitted": sorted(fitted),
        "sources": {k: field_sources[k] for k in _SPEC_FIELDS if k in params},
        "fit": fit_info,
        "runs": [_run_row(p, s) for p, _, s in runs],
        "notes": notes,
    }
    out = calibration_path(path_or_paths) if out is None else out
    atomic_write_text(out, yaml.safe_dump(json_safe(doc), sort_keys=False, allow_unicode=True))
    return doc


def _fit_power(
    runs: list[tuple[Path, pd.DataFrame, dict[str, Any]]],
    what: str,
    fitted: dict[str, float],
    sources: dict[str, str],
    fit_info: dict[str, Any],
    notes: list[str],
) -> None:
    """Fit ``idle_power_w`` and ``max_power_w`` from the samples of ``runs``.

    Every row but each file's first is used (the first sample's power covers no interval);
    ``what`` names the samples in the source notes (energy source, estimate label).
    """
    rows = pd.concat([f.iloc[1:] for _, f, _ in runs], ignore_index=True)
    power = rows["power_w"].to_numpy(dtype=float)
    idle = power[(rows["phase"] == "idle").to_numpy() & np.isfinite(power)]
    try:
        line = fit_line(rows["utilization"].to_numpy(dtype=float), power)
    except ValueError as exc:
        line = None
        notes.append(f"power vs utilisation not fitted: {exc}")
    if line is not None:
        fit_info["power_vs_utilization"] = {
            "intercept_w": line.intercept,
            "slope_w": line.slope,
            "r2": line.r2,
            "n_samples": line.n,
        }
        fitted["max_power_w"] = line.intercept + line.slope
        sources["max_power_w"] = (
            f"{what}: P at u=1 of a least-squares line P = P0 + k u over {line.n} samples "
            f"(R2 {line.r2:.3f}); a lower bound of TDP where decode saturates u"
        )
    if idle.size:
        fitted["idle_power_w"] = float(idle.mean())
        fit_info["idle_power"] = {
            "mean_w": float(idle.mean()),
            "std_w": float(idle.std()),
            "n_samples": int(idle.size),
        }
        sources["idle_power_w"] = f"{what}: mean of {idle.size} idle-phase samples"
    elif line is not None:
        fitted["idle_power_w"] = line.intercept
        sources["idle_power_w"] = f"{what}: intercept of the power line (no idle samples)"


def _fit_decode(
    runs: list[tuple[Path, pd.DataFrame, dict[str, Any]]],
    fit_info: dict[str, Any],
    notes: list[str],
) -> tuple[float, float]:
    """Achieved decode bandwidth [B/s] and per-step overhead [s] (NaN where not fitted)."""
    step_t, step_b = [], []
    for _, _, s in runs:
        steps = _num(s, "decode_steps")
        time_s, bytes_total = _num(s, "decode_time_s"), _num(s, "decode_bytes_total")
        if steps > 0 and time_s > 0:
            step_t.append(time_s / steps)
            step_b.append(bytes_total / steps)
    if not step_t:
        notes.append("no decode steps: bandwidth not fitted")
        return math.nan, math.nan
    t, b = np.array(step_t), np.array(step_b)
    if np.ptp(b) > 0:
        line = fit_line(b, t)
        if line.slope > 0 and line.intercept >= 0:
            fit_info["decode_step"] = {
                "overhead_s": line.intercept,
                "bandwidth_b_s": 1.0 / line.slope,
                "r2": line.r2,
                "n_points": line.n,
            }
            return 1.0 / line.slope, line.intercept
        notes.append(
            "decode step time does not grow with bytes moved (overhead-bound): bandwidth taken "
            "as the best bytes/time of any run, overhead not fitted"
        )
    else:
        notes.append(
            "one decode size only: bandwidth = bytes/time includes per-step overhead; "
            "sweep batch sizes to separate them"
        )
    best = float(np.max(b / t))
    fit_info["decode_step"] = {"bandwidth_b_s": best, "n_points": int(t.size)}
    return best, math.nan


def _fit_prefill(runs: list[tuple[Path, pd.DataFrame, dict[str, Any]]], fit_info: dict[str, Any]) -> float:
    """Best achieved prefill FLOP/s over the runs (NaN with no prefill)."""
    rates = [
        _num(s, "prefill_flops_total") / _num(s, "prefill_time_s") for _, _, s in runs if _num(s, "prefill_time_s") > 0
    ]
    if not rates:
        return math.nan
    fit_info["prefill"] = {"flop_s": max(rates), "n_points": len(rates)}
    return max(rates)


def _cpu_parameters(
    runs: list[tuple[Path, pd.DataFrame, dict[str, Any]]],
    fitted: dict[str, float],
    sources: dict[str, str],
    bw_b_s: float,
    flop_s: float,
    notes: list[str],
) -> None:
    """Fill the SKU fields of a CPU entry: achieved values as peaks, fractions 1."""
    if not (math.isfinite(bw_b_s) and math.isfinite(flop_s)):
        raise TwinError("a CPU entry needs both decode and prefill data (the harness writes both)")
    cpu_note = "CPU: no datasheet peak, so the achieved value is written as the peak"
    fitted["hbm_bandwidth_b_s"] = bw_b_s
    sources["hbm_bandwidth_b_s"] = f"{cpu_note} (decode, fp32)"
    fitted["bf16_flop_s"] = flop_s
    sources["bf16_flop_s"] = f"{cpu_note} (prefill, fp32: the CPU harness does not run bf16)"
    fitted["fp8_flop_s"] = flop_s
    sources["fp8_flop_s"] = "CPU: no fp8; the fp32 prefill value is used"
    fitted["achieved_bandwidth_fraction"] = 1.0
    sources["achieved_bandwidth_fraction"] = "CPU: 1 by construction (peak = achieved)"
    fitted["achieved_flop_fraction"] = 1.0
    sources["achieved_flop_fraction"] = "CPU: 1 by construction (peak = achieved)"
    memory = max(_num(s, "device_memory_bytes") for _, _, s in runs)
    if math.isfinite(memory):
        fitted["hbm_bytes"] = memory
        sources["hbm_bytes"] = "CPU: system memory reported by the OS"
    else:
        raise TwinError("the runs do not record the machine's memory (device_memory_bytes)")
    if "max_power_w" in fitted:
        for key in ("power_cap_min_w", "power_cap_max_w", "full_power_w"):
            fitted[key] = fitted["max_power_w"]
            sources[key] = "CPU: no power cap; set to the fitted max_power_w"
    for key in ("achieved_kv_bandwidth_fraction", "achieved_expert_bandwidth_fraction"):
        fitted[key] = 1.0
        sources[key] = "CPU: 1 by construction (peak = achieved)"
    fitted["link_bandwidth_b_s"] = bw_b_s
    sources["link_bandwidth_b_s"] = "CPU: no scale-up link; a replica spans one socket (set to its memory bandwidth)"
    fitted["achieved_link_fraction"] = 1.0
    sources["achieved_link_fraction"] = "CPU: 1 by construction (peak = achieved)"
    for key, value in _CPU_THERMAL_PLACEHOLDERS.items():
        fitted[key] = value
        sources[key] = "[EST] placeholder, not measured: typical x86 throttle point"
    notes.append("CPU entry: thermal limits are placeholders; fractions are 1 by construction")


def _run_row(path: Path, s: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "batch",
        "tokens_per_s",
        "j_per_token",
        "mean_power_w",
        "power_limit_w",
        "power_limit_status",
        "energy_source",
    )
    return {"file": path.name, **{k: s.get(k) for k in keys}}


def load_calibration(path: Path | str) -> AcceleratorSpec:
    """Load an entry written by :func:`calibrate` as an :class:`AcceleratorSpec`.

    The numeric top-level keys are the parameters; they go to
    :func:`twin.catalog.accelerator_from_mapping`, which fills the fields the entry leaves out
    from the catalog's shared defaults (as a scenario's ``fleet.accelerator_file`` is read).
    """
    path = Path(path)
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or "name" not in doc:
        raise TwinError(f"{path}: not an accelerator entry (no 'name')")
    numeric = {k: v for k, v in doc.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return accelerator_from_mapping(str(doc["name"]), numeric, str(path))


__all__ = ["LineFit", "calibrate", "calibration_path", "fit_line", "guess_base", "load_calibration"]
