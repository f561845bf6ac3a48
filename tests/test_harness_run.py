"""End-to-end harness runs on the CPU (real torch workload), with the real and a fake meter."""

from __future__ import annotations

import json
import math
import threading
import time

import pandas as pd
import pytest
from harness_fakes import FakeNvml

torch = pytest.importorskip("torch")

from twin.harness import HarnessError  # noqa: E402
from twin.harness.cpu import find_rapl_zones  # noqa: E402
from twin.harness.follow import follow  # noqa: E402
from twin.harness.io import HARNESS_COLUMNS, meta_path, read_harness, summary_path, write_json  # noqa: E402
from twin.harness.nvml import NvmlMeter  # noqa: E402
from twin.harness.run import SWEEP_COLUMNS, run_harness, run_harness_sweep  # noqa: E402
from twin.harness.summary import read_summary  # noqa: E402

FAST = {"prompt_len": 16, "gen_len": 16}


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu") / "run.csv"
    summary = run_harness("cpu", seconds=2.0, batch=2, out=out, idle_s=0.5, **FAST)
    return out, summary


def test_cpu_run_writes_schema_rows_with_tokens(cpu_run):
    out, summary = cpu_run
    frame, on_disk = read_harness(out)
    assert tuple(frame.columns) == HARNESS_COLUMNS
    assert frame["tokens"].sum() > 0
    assert frame["tokens"].sum() == summary.tokens
    assert set(frame["phase"]) <= {"idle", "prefill", "decode"}
    assert "idle" in set(frame["phase"])
    assert "decode" in set(frame["phase"])
    assert (frame.loc[frame["phase"] == "idle", "tokens"] == 0).all()
    assert frame["time_s"].is_monotonic_increasing
    assert frame["energy_j"].is_monotonic_increasing
    assert frame["time_s"].iloc[-1] == pytest.approx(2.5, abs=0.5)
    assert on_disk["tokens"] == summary.tokens


def test_cpu_run_says_energy_is_estimated(cpu_run):
    out, summary = cpu_run
    if find_rapl_zones():
        pytest.skip("this machine has readable RAPL: energy is measured")
    assert summary.energy_source == "estimated"
    assert not summary.measured
    assert "ESTIMATED, NOT MEASURED" in summary.energy_note
    on_disk = json.loads(summary_path(out).read_text())
    assert on_disk["energy_source"] == "estimated"
    assert "ESTIMATED, NOT MEASURED" in on_disk["energy_note"]
    assert on_disk["meter"]["energy_model"]["formula"].startswith("P = ")
    # Written before the first sample, so a follower can label the power while the run goes.
    meta = json.loads(meta_path(out).read_text())
    assert meta["energy_source"] == "estimated"
    assert meta["energy_note"] == on_disk["energy_note"]


def test_cpu_run_summary_is_consistent(cpu_run):
    out, s = cpu_run
    assert s.tokens_per_s == pytest.approx(s.tokens / s.duration_s)
    assert s.j_per_token == pytest.approx(s.energy_j / s.tokens)
    assert s.mean_power_w == pytest.approx(s.energy_j / s.duration_s)
    assert s.peak_power_w >= s.mean_power_w * 0.99
    assert s.dtype == "float32"
    assert s.torch_version == torch.__version__
    assert (s.batch, s.prompt_len, s.gen_len) == (2, 16, 16)
    assert s.decode_steps > 0
    assert s.decode_bytes_total > 0
    assert s.prefill_flops_total > 0
    assert s.prompt_tokens % (2 * 16) == 0
    assert s.power_limit_status == "default"
    assert math.isnan(s.power_limit_w)
    back = read_summary(out)
    assert back.tokens == s.tokens
    assert back.energy_source == s.energy_source
    assert math.isnan(back.power_limit_w)  # null in JSON comes back as NaN


def test_fake_nvml_run_energy_per_token_by_hand(tmp_path):
    fake = FakeNvml(power_mw=250_000, energy0_mj=5_000_000, tick=True)
    meter = NvmlMeter(nvml=fake)
    out = tmp_path / "nvml.csv"
    s = run_harness("cpu", seconds=1.0, batch=2, out=out, idle_s=0.3, meter=meter, **FAST)
    frame, _ = read_harness(out)
    assert s.energy_source == "nvml"
    assert (frame["power_w"] == 250.0).all()  # 250 000 mW
    assert frame["energy_j"].iloc[0] == 0.0  # counter rebased (it started at 5e6 mJ)
    # By hand: the load window starts at the last idle row (the boundary sample).
    boundary = frame.index[frame["phase"] == "idle"][-1]
    energy = frame["energy_j"].iloc[-1] - frame["energy_j"].iloc[boundary]
    tokens = frame["tokens"].iloc[boundary + 1 :].sum()
    assert s.j_per_token == pytest.approx(energy / tokens)
    # The counter grows 250 J per second, so the window's energy is 250 W x its length (the fake
    # reads its own clock a few microseconds after the meter does).
    assert s.energy_j == pytest.approx(250.0 * s.duration_s, rel=1e-4)
    assert s.mean_power_w == pytest.approx(250.0, rel=1e-3)
    assert s.idle_power_w == 250.0
    assert s.power_limit_w == 700.0
    assert frame["sm_clock_hz"].iloc[-1] == pytest.approx(1.98e9)
    meter.close()


def test_power_cap_refused_is_recorded(tmp_path):
    meter = NvmlMeter(nvml=FakeNvml(allow_set_limit=False))
    s = run_harness("cpu", 0.3, 1, tmp_path / "cap.csv", idle_s=0.0, meter=meter, power_limit_w=300.0, **FAST)
    assert s.power_limit_status.startswith("not permitted")
    assert s.power_limit_requested_w == 300.0
    assert s.power_limit_w == 700.0  # the run went on at the default limit
    assert any("not permitted" in n for n in s.notes)


def test_parquet_output_has_live_csv_beside_it(tmp_path):
    out = tmp_path / "run.parquet"
    s = run_harness("cpu", 0.3, 1, out, idle_s=0.0, **FAST)
    frame, summary = read_harness(out)
    csv_frame, _ = read_harness(tmp_path / "run.csv")
    pd.testing.assert_frame_equal(frame, csv_frame, check_exact=False, rtol=1e-12)
    assert summary["tokens"] == s.tokens
    assert (tmp_path / "run.summary.json").exists()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes left no temp files


def test_sweep_over_batches_and_refused_caps(tmp_path):
    meter = NvmlMeter(nvml=FakeNvml(tick=True, allow_set_limit=False))
    table = run_harness_sweep("cpu", 0.3, [1, 4], [300.0, 500.0], tmp_path, meter=meter, idle_s=0.0, **FAST)
    assert tuple(table.columns) == SWEEP_COLUMNS
    on_disk = pd.read_csv(tmp_path / "sweep.csv", keep_default_na=False, na_values=[""])
    assert len(on_disk) == len(table) == 2 + 4  # two runs at the default limit, four refused caps
    refused = table[table["status"].str.startswith("not permitted")]
    assert sorted(refused["power_limit_w"].unique()) == [300.0, 500.0]
    assert refused["tokens_per_s"].isna().all()
    ran = table[table["status"] == "default"]
    assert list(ran["batch"]) == [1, 4]
    assert (ran["tokens_per_s"] > 0).all()
    assert (ran["energy_source"] == "nvml").all()
    for name in ran["file"]:
        assert (tmp_path / name).exists()
        assert summary_path(tmp_path / name).exists()


def test_sweep_applies_caps_where_permitted(tmp_path):
    fake = FakeNvml(tick=True, allow_set_limit=True)
    meter = NvmlMeter(nvml=fake)
    table = run_harness_sweep("cpu", 0.2, [1], [300.0], tmp_path, meter=meter, idle_s=0.0, **FAST)
    assert list(table["status"]) == ["set"]
    assert list(table["power_limit_w"]) == [300.0]
    assert fake.limit_mw == 700_000  # restored after the point


def test_bad_arguments_and_missing_cuda(tmp_path):
    with pytest.raises(HarnessError, match="batch=0"):
        run_harness("cpu", 1.0, 0, tmp_path / "x.csv")
    with pytest.raises(HarnessError, match="unknown device"):
        run_harness("tpu", 1.0, 1, tmp_path / "x.csv")
    with pytest.raises(HarnessError, match="max_seq"):
        run_harness("cpu", 1.0, 1, tmp_path / "x.csv", prompt_len=500, gen_len=100)
    if not torch.cuda.is_available():
        with pytest.raises(HarnessError, match="CUDA not available on this machine"):
            run_harness("cuda", 1.0, 1, tmp_path / "x.csv")


def test_follow_a_live_run_over_a_stale_summary(tmp_path):
    out = tmp_path / "live.csv"
    write_json(summary_path(out), {"stale": True})  # left by an earlier run into the same file
    thread = threading.Thread(target=run_harness, args=("cpu", 1.0, 1, out), kwargs={"idle_s": 0.2, **FAST})
    thread.start()
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    frames = list(follow(out, poll_s=0.05))
    thread.join()
    live = pd.concat(frames, ignore_index=True)
    final, summary = read_harness(out)
    assert len(frames) >= 2  # rows arrived while the run went on
    assert "stale" not in summary
    pd.testing.assert_frame_equal(live, final)
