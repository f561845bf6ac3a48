"""Mirroring a measured device across a simulated fleet: hand calculations, the ledger, live follow.

The synthetic run used here (:func:`_rows`) is sampled every 0.5 s for 4 s: 100 W for the first
2 s (idle, no tokens), then 400 W with 50 tokens per sample. Its energy counter is the exact
integral of that power, so the interval energies are 100, 100, 400 and 400 J, and the decode
intervals carry 100 tokens each.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import twin
from twin import catalog
from twin.errors import ScenarioError, TraceFormatError
from twin.harness import commands
from twin.harness.io import LiveCsvWriter, meta_path, read_harness, summary_path, write_json
from twin.harness.mirror import (
    DeviceSource,
    device_intervals,
    device_source,
    follow_mirror,
    mirror_file,
    mirror_frame,
    scale_fleet,
)
from twin.validation import commands as validation_commands
from twin.workload import read_trace

CPU_RUN = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "cpu-harness.csv"
NAN = float("nan")
ESTIMATED = DeviceSource("estimated", "AMD EPYC", "ENERGY IS ESTIMATED, NOT MEASURED: a model")


def _row(t: float, power_w: float, energy_j: float, tokens: float, phase: str) -> dict:
    return {
        "time_s": t,
        "gpu_index": 0,
        "power_w": power_w,
        "energy_j": energy_j,
        "utilization": NAN,
        "memory_utilization": NAN,
        "temperature_c": NAN,
        "sm_clock_hz": NAN,
        "mem_clock_hz": NAN,
        "power_limit_w": NAN,
        "tokens": tokens,
        "phase": phase,
    }


def _rows(idle_w: float = 100.0, load_w: float = 400.0, n: int = 9) -> list[dict]:
    rows = []
    for i in range(n):
        t = 0.5 * i
        if t <= 2.0:
            rows.append(_row(t, idle_w, idle_w * t, 0.0, "idle"))
        else:
            rows.append(_row(t, load_w, idle_w * 2.0 + load_w * (t - 2.0), 50.0, "decode"))
    return rows


def _write_run(path: Path, rows: list[dict], source: str = "estimated") -> Path:
    write_json(meta_path(path), {"energy_source": source, "device_name": "test", "energy_note": "a note"})
    w = LiveCsvWriter(path)
    for r in rows:
        w.write(r)
    w.close()
    write_json(summary_path(path), {"energy_source": source, "device_name": "test", "energy_note": "a note"})
    return path


@pytest.fixture(scope="module")
def small_pod():
    """The default pod's design resized to 16 GPUs: one rack of two 8-GPU servers."""
    return scale_fleet(twin.load_scenario("default"), 16)


def test_device_intervals_by_hand():
    d = device_intervals(pd.DataFrame(_rows()), interval_s=1.0)
    assert list(d["time_s"]) == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_allclose(d["device_energy_j"], [100.0, 100.0, 400.0, 400.0], rtol=1e-12)
    np.testing.assert_allclose(d["device_power_w"], [100.0, 100.0, 400.0, 400.0], rtol=1e-12)
    assert list(d["device_tokens"]) == [0.0, 0.0, 100.0, 100.0]
    # An incomplete interval is left out: samples up to 3.5 s give three intervals.
    assert len(device_intervals(pd.DataFrame(_rows(n=8)), 1.0)) == 3
    # Without an energy column the power is integrated (trapezoid): 100 W then 400 W.
    no_energy = pd.DataFrame(_rows()).assign(energy_j=NAN)
    d2 = device_intervals(no_energy, 2.0)
    np.testing.assert_allclose(d2["device_energy_j"], [200.0, 0.5 * (100 + 400) * 0.5 + 400 * 1.5], rtol=1e-12)


def test_device_intervals_rejects_two_devices():
    rows = pd.DataFrame(_rows())
    rows.loc[3, "gpu_index"] = 1
    with pytest.raises(TraceFormatError, match="one device"):
        device_intervals(rows)


def test_scale_fleet_keeps_the_design_loading(small_pod):
    base = twin.load_scenario("default")
    f = small_pod.fleet
    assert (f.n_gpus, f.n_servers, f.n_racks, f.servers_per_rack) == (16, 2, 1, 2)
    ratio = 2 / 128
    assert small_pod.power.transformer.rated_w == pytest.approx(base.power.transformer.rated_w * ratio)
    assert small_pod.power.ups.rated_w == pytest.approx(base.power.ups.rated_w * ratio)
    assert small_pod.site.other_facility_power_w == pytest.approx(base.site.other_facility_power_w * ratio)
    assert scale_fleet(base, 64).fleet.racks_per_row == 2  # 8 servers = two 4-server racks
    with pytest.raises(ScenarioError, match="whole number of 8-GPU servers"):
        scale_fleet(base, 12)
    with pytest.raises(ScenarioError, match="4-server racks"):
        scale_fleet(base, 48)


def test_mirrored_it_power_is_measured_power_times_gpus_plus_hosts(small_pod):
    m = mirror_frame(pd.DataFrame(_rows()), small_pod, source=ESTIMATED)
    assert m is not None
    f = m.frame
    acc = catalog.accelerator_spec("H100-SXM")  # 70 W idle, 700 W limit: 100 and 400 W lie inside
    server = small_pod.fleet.server
    p = np.array([100.0, 100.0, 400.0, 400.0])
    # Hand calculation: every GPU draws the measured power; the replay's busy fraction is the
    # power's place in the accelerator's range, and it drives each host's non-GPU power.
    busy = (p - acc.idle_power_w) / (acc.full_power_w - acc.idle_power_w)  # linear between idle and full power
    other = 2 * (server.other_idle_power_w + (server.other_max_power_w - server.other_idle_power_w) * busy)
    np.testing.assert_allclose(f["accelerators_power_w"], 16 * p, rtol=1e-9)
    np.testing.assert_allclose(f["server_other_power_w"], other, rtol=1e-9)
    np.testing.assert_allclose(f["it_power_w"], 16 * p + other, rtol=1e-9)
    assert f["mirror_exact"].all()
    # Tokens: the device's measured tokens times the 16 mirrored GPUs, exactly.
    assert list(f["tokens"]) == [0.0, 0.0, 1600.0, 1600.0]
    assert m.kpis["tokens"] == 16 * 200.0
    assert m.kpis["device_tokens"] == 200.0
    # The facility costs more than the IT (conversion losses, cooling, offices): PUE > 1.
    assert (f["facility_energy_j"] > f["it_energy_j"]).all()
    assert (f["pue"] > 1.0).all()
    assert m.kpis["facility_energy_j"] > m.kpis["it_energy_j"]
    assert m.kpis["j_per_token_facility"] == pytest.approx(m.kpis["facility_energy_j"] / 3200.0)
    assert m.kpis["tokens_per_kwh"] == pytest.approx(3200.0 / (m.kpis["facility_energy_j"] / 3.6e6))
    # The fleet's ledger balances in every interval.
    ledger = m.result.ledger
    booked = ledger[[c for c in ledger.columns if c.endswith("_j") and c not in ("metered_j", "residual_j")]]
    np.testing.assert_allclose(booked.sum(axis=1), ledger["metered_j"], rtol=1e-9)
    np.testing.assert_allclose(f["facility_energy_j"], ledger["metered_j"], rtol=0)
    assert f["device_power_estimated"].all()
    assert not f["device_power_measured"].any()


def test_a_device_outside_the_accelerator_range_is_still_mirrored_exactly(small_pod):
    # A CPU drawing 3-8 W is below an H100's 70 W idle: the range is widened to include it.
    m = mirror_frame(pd.DataFrame(_rows(idle_w=3.0, load_w=8.0)), small_pod)
    assert m is not None
    np.testing.assert_allclose(m.frame["accelerators_power_w"], 16 * np.array([3.0, 3.0, 8.0, 8.0]), rtol=1e-9)
    assert m.scenario.fleet.accelerator_overrides.idle_power_w == pytest.approx(3.0)
    assert m.frame["mirror_exact"].all()
    assert m.source.energy_source == "unknown"
    assert "not known to be measured" in m.source.label


def test_a_power_cap_in_the_scenario_marks_intervals_as_not_exact(small_pod):
    capped = small_pod.with_updates({"fleet.power_cap_w": 300.0})
    m = mirror_frame(pd.DataFrame(_rows()), capped)
    assert m is not None
    assert list(m.frame["mirror_exact"]) == [True, True, False, False]
    with pytest.raises(ScenarioError, match="power_cap_w"):  # overrides are validated like --set
        mirror_frame(pd.DataFrame(_rows()), small_pod, overrides={"fleet.power_cap_w": -1})
    assert m.kpis["intervals_not_exact"] == 2.0
    assert any("not an exact mirror" in n for n in m.notes)


def test_mirror_of_the_committed_cpu_run():
    m = mirror_file(CPU_RUN, "default")
    assert m is not None
    assert m.finished
    assert m.source.energy_source == "estimated"
    assert "ESTIMATED" in m.source.label
    f = m.frame
    assert len(f) == 7  # samples run to 7.006 s: seven whole seconds
    assert (f["gpus"] == 1024).all()
    np.testing.assert_array_equal(f["tokens"], f["device_tokens"] * 1024)
    np.testing.assert_allclose(f["accelerators_power_w"], f["device_power_w"] * 1024, rtol=1e-9)
    samples, summary = read_harness(CPU_RUN)
    assert summary["energy_source"] == "estimated"
    # Up to 7 s the device made all its tokens but those of the last sample (at 7.006 s).
    upto = samples.loc[samples["time_s"] <= 7.0, "tokens"].sum()
    assert upto <= m.kpis["device_tokens"] <= samples["tokens"].sum()
    assert m.kpis["pue"] > 1.0
    assert abs(m.kpis["ledger_residual_j"]) < 1e-9 * m.kpis["facility_energy_j"]


def test_harness_csv_is_a_telemetry_format_a_scenario_can_replay(tmp_path):
    path = _write_run(tmp_path / "run.csv", _rows())
    data, meta = read_trace(path)
    assert meta.format == "harness"
    assert list(data["power_w"].iloc[:2]) == [100.0, 100.0]
    sc = twin.load_scenario(
        "default",
        {
            "duration_s": 4,
            "report_interval_s": 1,
            "workloads": [
                {"kind": "telemetry", "name": "measured", "path": str(path), "signal": "power", "offsets": False}
            ],
        },
    )
    # Zero-order hold of the 0.5 s samples over [0, 4 s): 100 W at 0 ... 2 s, 400 W at 2.5 ... 3.5 s.
    assert twin.simulate(sc).kpis["measured_gpu_power_mean_w"] == pytest.approx((5 * 100 + 3 * 400) / 8)
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,gpu_index,power_w\n0,0,100\n0.5,0,lots\n")
    with pytest.raises(TraceFormatError, match=r"line 3.*power_w"):
        read_trace(bad)


def test_follow_mirror_updates_while_rows_are_appended_and_ends_with_the_summary(tmp_path, small_pod):
    out = tmp_path / "live.csv"
    rows = _rows(n=13)  # 6 s

    def writer() -> None:
        write_json(meta_path(out), {"energy_source": "estimated", "device_name": "cpu", "energy_note": "model"})
        w = LiveCsvWriter(out)
        for r in rows:
            w.write(r)
            time.sleep(0.06)
        w.close()
        time.sleep(0.1)
        write_json(summary_path(out), {"energy_source": "estimated", "device_name": "cpu", "energy_note": "model"})

    thread = threading.Thread(target=writer)
    thread.start()
    updates = list(follow_mirror(out, small_pod, poll_s=0.05))
    thread.join()
    assert len(updates) >= 3  # it mirrored while the file grew
    sizes = [len(u.frame) for u in updates]
    assert sizes == sorted(sizes)
    assert sizes[-1] == 6
    assert updates[-1].finished
    assert not updates[0].finished
    assert all(u.source.energy_source == "estimated" for u in updates)
    assert updates[-1].kpis["tokens"] == 16 * 50.0 * 8  # eight decode samples of 50 tokens
    assert device_source(out).energy_source == "estimated"


def test_cli_follow_mirror_labels_every_line_of_an_estimated_run(tmp_path):
    path = _write_run(tmp_path / "cpu.csv", _rows())
    app = typer.Typer()
    app.command()(commands.follow)
    app.command()(validation_commands.calibrate)  # two commands: typer then expects the command name
    runner = CliRunner()
    result = runner.invoke(app, ["follow", str(path), "--mirror", "default", "--gpus", "16", "--poll", "0.01"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) >= 6  # header, four intervals, summary
    assert all("ESTIMATED" in line for line in lines)
    assert "16 GPUs" in result.output
    assert "3200 tokens (measured x 16)" in result.output
    plain = runner.invoke(app, ["follow", str(path), "--poll", "0.01"])
    assert plain.exit_code == 0
    assert all("ESTIMATED" in line for line in plain.output.splitlines() if line.strip())
    bad = runner.invoke(app, ["follow", str(path), "--mirror", "default", "--gpus", "12"])
    assert bad.exit_code == 2
    assert "whole number of 8-GPU servers" in bad.output
    measured = _write_run(tmp_path / "gpu.csv", _rows(), source="nvml")
    ok = runner.invoke(app, ["follow", str(measured), "--mirror", "default", "--gpus", "16", "--poll", "0.01"])
    assert ok.exit_code == 0
    assert "ESTIMATED" not in ok.output
    assert "[device power measured: nvml]" in ok.output


def test_follow_mirror_says_why_its_totals_differ_from_the_harness_summary(tmp_path):
    # Samples to 3.5 s: idle 0-2 s at 100 W, then 400 W and 50 tokens a sample. The summary counts the
    # load window 2-3.5 s (150 tokens, 600 J); 1 s intervals mirror 0-3 s (100 tokens, 200 + 400 J), so
    # the mirror adds 2 s x 100 W of idle and leaves out 3-3.5 s: 50 tokens and 0.5 s x 400 W = 200 J.
    path = _write_run(tmp_path / "cpu.csv", _rows(n=8))
    full = {
        "energy_source": "estimated",
        "device_name": "test",
        "energy_note": "a note",
        "tokens": 150,
        "energy_j": 600.0,
        "duration_s": 1.5,
        "idle_s": 2.0,
        "idle_power_w": 100.0,
    }
    write_json(summary_path(path), full)
    app = typer.Typer()
    app.command()(commands.follow)
    app.command()(validation_commands.calibrate)
    result = CliRunner().invoke(app, ["follow", str(path), "--mirror", "default", "--gpus", "8", "--poll", "0.01"])
    assert result.exit_code == 0, result.output
    assert "adds the 2 s idle baseline (about 200 J at 100 W)" in result.output
    assert "leaves out the 0.5 s after its last whole interval (50 tokens, about 200 J)" in result.output
    assert max(len(line) for line in result.output.splitlines() if line.startswith(" ") and "-" in line[:12]) < 140


def test_follow_mirror_refuses_a_broken_summary_by_name(tmp_path):
    path = _write_run(tmp_path / "cpu.csv", _rows())
    summary_path(path).write_bytes(b"\xff\xfe not json")
    app = typer.Typer()
    app.command()(commands.follow)
    app.command()(validation_commands.calibrate)
    result = CliRunner().invoke(app, ["follow", str(path), "--mirror", "default", "--gpus", "8", "--poll", "0.01"])
    assert result.exit_code == 2, result.output
    assert "cpu.summary.json" in result.output
