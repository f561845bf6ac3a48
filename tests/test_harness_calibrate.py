"""Calibration: recover known power and roofline figures from synthetic harness files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from twin.catalog import accelerator_from_mapping, accelerator_spec
from twin.errors import TraceFormatError, TwinError
from twin.harness.calibrate import calibrate, fit_line, guess_base, load_calibration
from twin.harness.io import HARNESS_COLUMNS, atomic_write_frame, summary_path, write_json

P_IDLE_W = 72.0
SLOPE_W = 540.0
BW_B_S = 2.1e12  # achieved decode bandwidth of the synthetic GPU
OVERHEAD_S = 4e-4  # per decode step
FLOP_S = 4.0e14  # achieved prefill FLOP/s


def _write_run(path, rng, batch=8, step_bytes=2e9, n_idle=40, n_load=200, summary=None):
    """A synthetic harness file: idle at P_IDLE_W, load on P = P_IDLE_W + SLOPE_W u, noise 0.3 W."""
    u = np.concatenate([np.zeros(n_idle), rng.uniform(0.2, 1.0, n_load)])
    power = P_IDLE_W + SLOPE_W * u + rng.normal(0.0, 0.3, u.size)
    dt = 0.1
    frame = pd.DataFrame(
        {
            "time_s": np.arange(u.size) * dt,
            "gpu_index": 0,
            "power_w": power,
            "energy_j": np.concatenate([[0.0], np.cumsum(power[1:] * dt)]),
            "utilization": u,
            "memory_utilization": u * 0.6,
            "temperature_c": 50.0,
            "sm_clock_hz": 1.98e9,
            "mem_clock_hz": 2.6e9,
            "power_limit_w": 700.0,
            "tokens": np.where(u > 0, batch * 10.0, 0.0),
            "phase": ["idle"] * n_idle + ["decode"] * n_load,
        }
    )[list(HARNESS_COLUMNS)]
    atomic_write_frame(path, frame)
    steps = 10_000
    info = {
        "device": "cuda",
        "device_name": "NVIDIA H100 80GB HBM3",
        "energy_source": "nvml",
        "batch": batch,
        "tokens_per_s": 1000.0,
        "j_per_token": 0.3,
        "mean_power_w": 400.0,
        "power_limit_w": 700.0,
        "power_limit_status": "default",
        "decode_steps": steps,
        "decode_time_s": steps * (OVERHEAD_S + step_bytes / BW_B_S),
        "decode_bytes_total": steps * step_bytes,
        "prefill_flops_total": 8.0e14,
        "prefill_time_s": 8.0e14 / FLOP_S,
        "device_memory_bytes": 80e9,
        **(summary or {}),
    }
    write_json(summary_path(path), info)
    return path


def test_fit_line_exact():
    f = fit_line(np.array([0.0, 0.5, 1.0]), np.array([70.0, 385.0, 700.0]))
    assert (f.intercept, f.slope, f.r2, f.n) == pytest.approx((70.0, 630.0, 1.0, 3))
    with pytest.raises(ValueError, match="spread"):
        fit_line(np.array([1.0, 1.0]), np.array([2.0, 3.0]))


def test_recovers_idle_power_and_slope_within_one_percent(tmp_path):
    path = _write_run(tmp_path / "gpu.csv", np.random.default_rng(42))
    doc = calibrate(path, accelerator_base="H100-SXM", out=tmp_path / "entry.yaml")
    line = doc["fit"]["power_vs_utilization"]
    assert doc["idle_power_w"] == pytest.approx(P_IDLE_W, rel=0.01)
    assert line["intercept_w"] == pytest.approx(P_IDLE_W, rel=0.01)
    assert line["slope_w"] == pytest.approx(SLOPE_W, rel=0.01)
    assert doc["max_power_w"] == pytest.approx(P_IDLE_W + SLOPE_W, rel=0.01)
    assert line["r2"] > 0.99
    assert line["n_samples"] == 239  # 240 rows less the first
    assert doc["fit"]["idle_power"]["n_samples"] == 39
    # One decode size: bandwidth = bytes / time (overhead included), over the H100's 3.35 TB/s.
    step_t = OVERHEAD_S + 2e9 / BW_B_S
    assert doc["achieved_bandwidth_fraction"] == pytest.approx(2e9 / step_t / 3.35e12)
    assert doc["achieved_flop_fraction"] == pytest.approx(FLOP_S / 989.4e12)
    assert "step_overhead_s" not in doc["fitted"]
    assert doc["base"] == "H100-SXM"
    assert doc["energy_source"] == "nvml"
    assert set(doc["fitted"]) == {
        "idle_power_w",
        "max_power_w",
        "achieved_bandwidth_fraction",
        "achieved_flop_fraction",
    }


def test_batch_sweep_separates_step_overhead_from_bandwidth(tmp_path):
    rng = np.random.default_rng(1)
    files = [_write_run(tmp_path / f"b{b}.csv", rng, batch=b, step_bytes=2e9 + b * 1e8) for b in (1, 8, 32)]
    doc = calibrate(files, accelerator_base="H100-SXM", out=tmp_path / "sweep.yaml")
    assert doc["step_overhead_s"] == pytest.approx(OVERHEAD_S, rel=1e-6)
    assert doc["achieved_bandwidth_fraction"] == pytest.approx(BW_B_S / 3.35e12, rel=1e-6)
    assert doc["fit"]["decode_step"]["r2"] == pytest.approx(1.0)
    assert doc["fit"]["decode_step"]["n_points"] == 3


def test_entry_loads_through_accelerator_from_mapping(tmp_path):
    path = _write_run(tmp_path / "gpu.csv", np.random.default_rng(7))
    out = tmp_path / "h100-measured.yaml"
    doc = calibrate(path, name="H100-measured", out=out)  # base guessed from the device name
    assert doc["base"] == "H100-SXM"
    raw = yaml.safe_load(out.read_text())
    # As a scenario's fleet.accelerator_file is read: the numeric top-level keys.
    numeric = {k: v for k, v in raw.items() if isinstance(v, int | float)}
    spec = accelerator_from_mapping(raw["name"], numeric, str(out))
    base = accelerator_spec("H100-SXM")
    assert spec.name == "H100-measured"
    assert spec.idle_power_w == pytest.approx(doc["idle_power_w"])
    assert spec.max_power_w == pytest.approx(doc["max_power_w"])
    assert spec.hbm_bandwidth_b_s == base.hbm_bandwidth_b_s  # from the base SKU
    assert spec.clock_exponent == base.clock_exponent  # shared catalog default
    assert load_calibration(out) == spec
    for key in doc["fitted"]:
        assert raw["sources"][key]
    assert raw["fit"]["power_vs_utilization"]["r2"] > 0.99
    assert not list(tmp_path.glob(".*.tmp"))


def test_capped_runs_are_left_out_of_the_power_line(tmp_path):
    rng = np.random.default_rng(3)
    a = _write_run(tmp_path / "a.csv", rng)
    b = _write_run(tmp_path / "b.csv", rng, summary={"power_limit_status": "set", "power_limit_w": 300.0})
    doc = calibrate([a, b], accelerator_base="H100-SXM", out=tmp_path / "e.yaml")
    assert doc["fit"]["power_vs_utilization"]["n_samples"] == 239
    assert any("capped" in n for n in doc["notes"])


def test_errors_name_the_problem(tmp_path):
    rng = np.random.default_rng(0)
    gpu = _write_run(tmp_path / "gpu.csv", rng)
    with pytest.raises(TwinError, match="unknown accelerator"):
        calibrate(gpu, accelerator_base="Z9000", out=tmp_path / "x.yaml")
    pcie = _write_run(tmp_path / "pcie.csv", rng, summary={"device_name": "NVIDIA H100 PCIe"})
    with pytest.raises(TwinError, match="pass a base"):
        calibrate(pcie, out=tmp_path / "x.yaml")
    cpu = _write_run(tmp_path / "cpu.csv", rng, summary={"device": "cpu"})
    with pytest.raises(TwinError, match="CPU runs"):
        calibrate(cpu, accelerator_base="H100-SXM", out=tmp_path / "x.yaml")
    with pytest.raises(TwinError, match="CPU and GPU"):
        calibrate([gpu, cpu], out=tmp_path / "x.yaml")
    summary_path(gpu).unlink()
    with pytest.raises(TraceFormatError, match="did not finish"):
        calibrate(gpu, out=tmp_path / "x.yaml")


def test_guess_base():
    assert guess_base("NVIDIA H100 80GB HBM3") == "H100-SXM"
    assert guess_base("NVIDIA H200") == "H200-SXM"
    assert guess_base("NVIDIA A100-SXM4-80GB") == "A100-SXM4-80GB"
    assert guess_base("NVIDIA H100 NVL") is None
    assert guess_base("Tesla T4") is None


def test_cpu_entry_from_a_real_run_is_labelled(tmp_path):
    pytest.importorskip("torch")
    from twin.harness.run import run_harness_sweep
    from twin.harness.summary import read_summary

    run_harness_sweep("cpu", 0.5, [1, 4], None, tmp_path, idle_s=0.3, prompt_len=16, gen_len=16)
    doc = calibrate(tmp_path)  # a sweep directory: files from sweep.csv
    out = tmp_path / "accelerator.yaml"
    spec = load_calibration(out)
    assert spec.name == "cpu-calibrated"
    assert doc["base"] is None
    assert doc["device"] == "cpu"
    assert spec.achieved_bandwidth_fraction == 1.0
    assert spec.hbm_bandwidth_b_s > 0
    assert spec.bf16_flop_s > 0
    assert spec.max_power_w > 0
    assert "CPU" in doc["sources"]["hbm_bandwidth_b_s"]
    assert len(doc["runs"]) == 2
    assert math.isfinite(spec.idle_power_w)
    if doc["energy_source"] == "estimated":
        assert "not measured" in doc["notes"][0]
        assert doc["sources"]["idle_power_w"].startswith("ESTIMATED")
        # Fitting the estimate gives back the labelled model: P is linear in u by construction.
        model = read_summary(tmp_path / "batch1_default.csv").meter["energy_model"]
        assert doc["max_power_w"] == pytest.approx(model["max_power_w"], rel=1e-6)
        assert doc["fit"]["power_vs_utilization"]["r2"] == pytest.approx(1.0)
