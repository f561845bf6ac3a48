"""Telemetry replay (measured utilisation or power drives the GPUs) and training jobs from a job trace."""

from pathlib import Path

import numpy as np
import pytest
from hand_board import BOARD

from twin import load_scenario, simulate
from twin.catalog import accelerator_spec, model_spec
from twin.errors import ScenarioError
from twin.physics.accelerator import busy_for_power

DATA = Path(__file__).resolve().parent / "data"
H100 = accelerator_spec("H100-SXM")
IDEAL = {"model": "ideal", "supply_temp_c": 30.0}


def scenario(workload, servers=2, duration_s=600.0, source_dir=None, **updates):
    base = {
        "fleet.rows": 1,
        "fleet.racks_per_row": 1,
        "fleet.servers_per_rack": servers,
        "duration_s": duration_s,
        "step_s": 1,
        "report_interval_s": 60,
        "cooling": IDEAL,
        "workloads": [{"servers": servers, **workload}],
    }
    base.update(updates)
    sc = load_scenario("default", base)
    return sc.model_copy(update={"source_dir": source_dir}) if source_dir is not None else sc


def write_smi(path, rows, header="timestamp, index, power.draw [W]"):
    lines = [header]
    for t, gpu, *values in rows:
        lines.append(f"2024/05/01 12:00:{t:02d}.000, {gpu}, " + ", ".join(values))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def power_log(tmp_path):
    # GPU 0: 200 W for 10 s then 500 W for 10 s; GPU 1: 385 W throughout. Period 20 s.
    rows = []
    for t in range(20):
        rows.append((t, 0, f"{200.0 if t < 10 else 500.0:.2f} W"))
        rows.append((t, 1, "385.00 W"))
    write_smi(tmp_path / "power.csv", rows)
    return tmp_path


def test_power_inversion_by_hand():
    # Linear model (activity per busy = 1): u = (P - P_idle) / (P_full - P_idle) = (385 - 70) / 630.
    board = BOARD  # tests/hand_board.py: 70-700 W, k_static 0.15, k_mem 0.30
    assert float(busy_for_power(385.0, params=board)) == pytest.approx(0.5)
    # Other profile: k_static + k_mem a_m + k_sm a_s = 0.15 + 0.30 x 0.8 + 0.55 x 0.9 = 0.885.
    u = float(busy_for_power(500.0, params=board, mem_per_busy=0.8, sm_per_busy=0.9))
    assert u == pytest.approx(430 / (630 * 0.885))
    assert float(busy_for_power(50.0, params=board)) == 0.0  # below idle
    assert float(busy_for_power(900.0, params=board)) == 1.0  # above the maximum


@pytest.mark.parametrize(("mem", "sm"), [(1.0, 1.0), (0.8, 0.9)])
def test_replayed_power_reproduces_the_measured_power(power_log, mem, sm):
    # Power is inverted to a busy fraction and fed back through the same model: over whole
    # periods (600 s = 30 x 20 s) every server's shifted copy draws the measured mean,
    # (200 + 500)/2 for GPU 0 and 385 for GPU 1: (350 + 385) / 2 = 367.5 W.
    w = {
        "name": "replay",
        "kind": "telemetry",
        "path": "power.csv",
        "mem_activity_per_busy": mem,
        "sm_activity_per_busy": sm,
    }
    r = simulate(scenario(w, servers=4, source_dir=power_log), debug=True)
    assert r.kpis["replay_gpu_power_mean_w"] == pytest.approx(367.5, rel=1e-9)
    assert r.kpis["tokens_out"] == 0
    busy = [
        busy_for_power(p, params=H100.power_params, mem_per_busy=mem, sm_per_busy=sm) for p in (200.0, 500.0, 385.0)
    ]
    assert r.kpis["replay_busy_mean"] == pytest.approx(((busy[0] + busy[1]) / 2 + busy[2]) / 2, rel=1e-9)
    # Second by second: in lockstep every server steps between (200 + 385)/2 and (500 + 385)/2,
    # a standard deviation of 75 W over the period; shifted copies smear the step.
    second = {"source_dir": power_log, "report_interval_s": 1, "duration_s": 20}
    lock = simulate(scenario({**w, "offsets": False}, servers=4, **second))
    spread = simulate(scenario(w, servers=4, **second))
    assert lock.timeseries["replay_gpu_power_mean_w"].std(ddof=0) == pytest.approx(75.0, rel=1e-9)
    assert spread.timeseries["replay_gpu_power_mean_w"].std(ddof=0) < 60.0


def test_utilisation_drives_the_gpus_and_a_cap_holds(tmp_path):
    rows = [(t, g, "50 %") for t in range(10) for g in range(8)]
    write_smi(tmp_path / "util.csv", rows, header="timestamp, index, utilization.gpu [%]")
    w = {"name": "replay", "kind": "telemetry", "path": "util.csv"}
    r = simulate(scenario(w, source_dir=tmp_path))
    # Linear in the utilisation between idle and full-activity power (P_full = 976 W, above the
    # 700 W limit that only u > 0.7 reaches): 70 + 906 x 0.5 = 523 W.
    half = H100.idle_power_w + (H100.full_power_w - H100.idle_power_w) * 0.5
    assert r.kpis["replay_gpu_power_mean_w"] == pytest.approx(half, rel=1e-12)
    capped = simulate(scenario(w, source_dir=tmp_path, **{"fleet.power_cap_w": 300}))
    assert capped.kpis["replay_gpu_power_mean_w"] <= 300.0 + 1e-9
    assert capped.kpis["capped_gpu_h"] == pytest.approx(16 * 600 / 3600)


def test_replay_without_loop_goes_idle(power_log):
    w = {"name": "replay", "kind": "telemetry", "path": "power.csv", "loop": False, "offsets": False}
    r = simulate(scenario(w, duration_s=60, source_dir=power_log, report_interval_s=20))
    gpu_w = r.timeseries["replay_gpu_power_mean_w"].to_numpy()
    np.testing.assert_allclose(gpu_w, [367.5, H100.idle_power_w, H100.idle_power_w], rtol=1e-9)


def test_builtin_nvidia_smi_sample_replays():
    r = simulate(scenario({"name": "replay", "kind": "telemetry", "path": "nvidia-smi-sample"}, duration_s=300))
    assert 0.5 < r.kpis["replay_busy_mean"] < 1.0


def test_malformed_telemetry_row_is_located(tmp_path):
    write_smi(tmp_path / "bad.csv", [(0, 0, "100.00 W"), (1, 0, "lots W")])
    sc = scenario({"name": "replay", "kind": "telemetry", "path": "bad.csv"}, source_dir=tmp_path)
    with pytest.raises(ScenarioError) as exc:
        simulate(sc)
    msg = str(exc.value)
    assert "workloads.0.path" in msg and "bad.csv, line 3" in msg and "power.draw [W]" in msg


# ------------------------------------------------------------------------------- training jobs

# tests/data/jobs_seconds.csv, times after the first start (40 s): job b holds 8 GPUs on
# [0, 3600), c 2 GPUs on [30.5, 50.5), a 1 GPU on [60, 120): 28 900 GPU-seconds.
JOB_GPU_S = 8 * 3600 + 2 * 20 + 1 * 60
#: MFU 0.2: low enough that the GPUs stay under their power limit at boost clock (at 0.45 an H100
#: training job reaches its 700 W limit and the governor lowers the clock).
MFU = 0.2
RATE_PER_GPU = MFU * H100.bf16_flop_s / (6 * model_spec("Llama-3.1-8B").active_params)  # 6N FLOPs per token


def job_pool(servers, duration_s=3600.0, **jobs):
    w = {
        "name": "train",
        "kind": "training",
        "model": "Llama-3.1-8B",
        "mfu": MFU,
        "jobs": {"path": "jobs_seconds.csv", **jobs},
    }
    return scenario(w, servers=servers, duration_s=duration_s, source_dir=DATA)


def test_job_trace_tokens_from_six_n(tmp_path):
    # The fitted power model alone (no leakage beyond it, no boost bins: twin.physics.silicon).
    fitted = {"fleet.accelerator_overrides": {"leakage_power_fraction": 0.0, "boost_bin_fraction": 0.0}}
    r = simulate(job_pool(2).with_updates(fitted), debug=True)
    assert r.kpis["train_job_gpu_h_run"] == pytest.approx(JOB_GPU_S / 3600, rel=1e-12)
    assert r.kpis["train_job_gpu_h_demanded"] == pytest.approx(JOB_GPU_S / 3600, rel=1e-12)
    assert r.kpis["tokens_training"] == pytest.approx(RATE_PER_GPU * JOB_GPU_S, rel=1e-9)
    # Power is linear in the busy share at boost clock: the pool's mean GPU power by hand.
    k_st, k_m, k_u = H100.static_power_fraction, H100.mem_power_fraction, H100.uncore_power_fraction
    busy_share = JOB_GPU_S / (16 * 3600)
    # k_static + k_uncore + k_mem m + k_sm MFU/eta
    per_busy = k_st + k_u + k_m * 0.5 + (1 - k_st - k_u - k_m) * (MFU / H100.achieved_flop_fraction)
    span = H100.full_power_w - H100.idle_power_w
    assert r.kpis["train_gpu_power_mean_w"] == pytest.approx(H100.idle_power_w + span * per_busy * busy_share, rel=1e-9)


def test_jobs_beyond_the_pool_are_clipped_and_reported():
    r = simulate(job_pool(1))  # 8 GPUs: c and a do not fit beside b
    assert r.kpis["train_job_gpu_h_run"] == pytest.approx(8.0, rel=1e-12)
    assert r.kpis["train_job_gpu_h_demanded"] == pytest.approx(JOB_GPU_S / 3600, rel=1e-12)
    assert r.kpis["tokens_training"] == pytest.approx(RATE_PER_GPU * 8 * 3600, rel=1e-9)


def test_job_trace_loops_and_stretches():
    looped = simulate(job_pool(2, duration_s=7200, loop=True))
    assert looped.kpis["train_job_gpu_h_run"] == pytest.approx(2 * JOB_GPU_S / 3600, rel=1e-12)
    once = simulate(job_pool(2, duration_s=7200))
    assert once.kpis["train_job_gpu_h_run"] == pytest.approx(JOB_GPU_S / 3600, rel=1e-12)
    slow = simulate(job_pool(2, duration_s=7200, time_scale=2.0))
    assert slow.kpis["train_job_gpu_h_run"] == pytest.approx(2 * JOB_GPU_S / 3600, rel=1e-12)


def test_jobs_pack_whole_servers():
    from twin.engine.demand import DemandModel
    from twin.facility import build_facility

    d = DemandModel(build_facility(job_pool(3))).block(np.array([0.0, 40.0, 70.0]), np.array([1.0, 41.0, 71.0]))
    # 8 GPUs, then 10 (b + c), then 9 (b + a): server 0 full, server 1 takes the rest, server 2 idle.
    np.testing.assert_allclose(d.train_fraction, [[1, 0, 0], [1, 0.25, 0], [1, 0.125, 0]])


def test_bad_job_trace_is_located(tmp_path):
    (tmp_path / "jobs.csv").write_text("jobid,num_gpu,start,finish_time\na,1,100,160\nb,8,50,20\n")
    sc = scenario(
        {"name": "train", "kind": "training", "model": "Llama-3.1-8B", "jobs": {"path": "jobs.csv"}},
        source_dir=tmp_path,
    )
    with pytest.raises(ScenarioError) as exc:
        simulate(sc)
    msg = str(exc.value)
    assert "workloads.0.jobs.path" in msg and "jobs.csv, line 3" in msg


def test_dcgm_telemetry_replays():
    # tests/data/dcgm_wide.csv records DCGM_FI_DEV_GPU_UTIL at 0, 1, 2 s: GPU 0 98, 100, 100 %,
    # GPU 1 0, 0, 2 %. Averaged over GPUs and held 1 s each: 0.49, 0.50, 0.51, a 3 s period with
    # mean 0.5; 60 s are 20 periods, so the GPUs draw P_idle + (P_full - P_idle) x 0.5.
    w = {"name": "replay", "kind": "telemetry", "path": "dcgm_wide.csv", "offsets": False}
    r = simulate(scenario(w, duration_s=60, source_dir=DATA, report_interval_s=60))
    assert r.kpis["replay_busy_mean"] == pytest.approx(0.5, rel=1e-12)
    half = H100.idle_power_w + (H100.full_power_w - H100.idle_power_w) * 0.5
    assert r.kpis["replay_gpu_power_mean_w"] == pytest.approx(half, rel=1e-12)
