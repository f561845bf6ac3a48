import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from twin.results import Result

TWIN = [sys.executable, "-m", "twin.cli"]


def test_readme_run_command_on_default(tmp_path):
    # The README's first command (`twin run --out DIR`) on the built-in default, full 24 h.
    out = tmp_path / "default"
    proc = subprocess.run([*TWIN, "run", "--out", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Tokens per kWh" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    k = summary["kpis"]
    for key in (
        "facility_energy_j",
        "facility_energy_kwh",
        "it_energy_j",
        "tokens_out",
        "tokens_per_kwh",
        "j_per_token_facility",
        "j_per_token_it",
        "pue",
        "peak_facility_power_w",
        "ledger_residual_j",
    ):
        assert key in k
    assert abs(k["ledger_residual_j"]) < 1e-9 * k["facility_energy_j"]
    # About 1 MW: the default pod's mean draw lies between 0.7 and 1.3 MW.
    assert 0.7e6 < k["mean_facility_power_w"] < 1.3e6
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert len(ts) == 1440 and "facility_power_w" in ts.columns
    png = (out / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert Result.load(out).kpis == k


def test_bad_scenario_exit_2_and_nothing_written(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: default\nfleet:\n  racks: -3\n")
    out = tmp_path / "out"
    proc = subprocess.run([*TWIN, "run", str(bad), "--out", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "fleet.racks (line 3): unknown field" in proc.stderr
    assert not out.exists()
    proc = subprocess.run([*TWIN, "validate", str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2


def test_validate_and_set(tmp_path):
    proc = subprocess.run(
        [*TWIN, "validate", "default", "--set", "fleet.power_cap_w=100"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "outside H100-SXM's settable range 200-700 W" in proc.stdout
    proc = subprocess.run(
        [*TWIN, "run", "--set", "fleet.rows=0", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "fleet.rows" in proc.stderr


def test_run_prints_what_validate_warns_about(tmp_path):
    cap = ["--set", "fleet.power_cap_w=100", "--set", "duration_s=600"]
    proc = subprocess.run(
        [*TWIN, "run", *cap, "--quiet", "--out", str(tmp_path / "x")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "outside H100-SXM's settable range 200-700 W" in proc.stderr


def test_a_multimodal_model_serves_its_text_path_and_says_so(tmp_path):
    vl = ["--set", "workloads.1.model=Qwen/Qwen3-VL-8B-Instruct", "--set", "duration_s=600"]
    proc = subprocess.run([*TWIN, "validate", "default", *vl], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Qwen/Qwen3-VL-8B-Instruct is multimodal; the twin serves its language model" in " ".join(
        proc.stdout.split()
    )
    proc = subprocess.run([*TWIN, "run", *vl, "-q", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "is multimodal" in proc.stderr


def test_weights_that_leave_no_kv_cache_are_an_error(tmp_path):
    # Llama 3.1 405B in BF16 (2 bytes x 405.9e9 parameters / 8 = 101 GB per GPU) on 8 H100s of 80 GB:
    # vLLM gives a model 0.9 x 80 = 72 GB, so the replica cannot serve a single sequence.
    bad = ["--set", "workloads.0.model=meta-llama/Llama-3.1-405B-Instruct"]
    for cmd in (["validate", "default"], ["run", "--out", str(tmp_path / "x")]):
        proc = subprocess.run([*TWIN, *cmd, *bad], capture_output=True, text=True, check=False)
        assert proc.returncode == 2, proc.stdout
        text = " ".join(proc.stderr.split())
        assert "workloads.0.tensor_parallel" in text and "101 GB of weights per GPU with TP8" in text
        assert "72 GB" in text
    assert not (tmp_path / "x").exists()
    # Its FP8 checkpoint (51 GB per GPU) fits.
    ok = ["--set", "workloads.0.model=meta-llama/Llama-3.1-405B-Instruct-FP8"]
    proc = subprocess.run([*TWIN, "validate", "default", *ok], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("cmd", [["catalog"], ["--help"]])
def test_other_commands(cmd):
    proc = subprocess.run([*TWIN, *cmd], capture_output=True, text=True, check=False)
    assert proc.returncode == 0


def test_run_reports_fault_events(tmp_path):
    # A feed loss under 2N on a short run: the events appear in the report and in events.csv.
    out = tmp_path / "fault"
    sets = ["duration_s=1800", "step_s=60", "report_interval_s=600",
            "events=[{time_s: 600, kind: feed_loss, target: B, duration_s: 300}]"]  # fmt: skip
    args = [*TWIN, "run", "--out", str(out)] + [x for s in sets for x in ("--set", s)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    assert "Events (2)" in proc.stdout and "feed_loss_repaired" in proc.stdout
    events = pd.read_csv(out / "events.csv")
    assert list(events["event"]) == ["feed_loss", "feed_loss_repaired"]
    assert list(events["time_s"]) == [600.0, 900.0]
    back = Result.load(out)
    assert list(back.events["detail"]) == ["side=B", ""]


def test_kpi_table_shows_energy_in_kwh_and_power_in_kw():
    # One convention per quantity (summary.json keeps joules and watts): 7.866e8 J = 218.5 kWh.
    import io

    from rich.console import Console

    from twin.cli import kpi_table

    kpis = {
        "facility_energy_kwh": 931.2,
        "mean_facility_power_w": 931_185.0,
        "peak_facility_power_w": 935_234.0,
        "cooling_energy_j": 7.866e8,
        "conversion_loss_energy_j": 4.807e8,
        "load_shed_j": 3.6e6,
        "grid_ramp_max_w_per_s": 2_500.0,
        "ledger_residual_j": 2.98e-8,
    }
    out = io.StringIO()
    Console(file=out, width=120).print(kpi_table(kpis, "t"))
    rows = {line.split("│")[1].strip(): line.split("│")[2:4] for line in out.getvalue().splitlines() if "│" in line}
    shown = {label: (value.strip(), unit.strip()) for label, (value, unit) in rows.items()}
    assert shown["Facility energy"] == ("931.2", "kWh")
    assert shown["Mean facility power"] == ("931.2", "kW")
    assert shown["Peak facility power"] == ("935.2", "kW")
    assert shown["Cooling energy"] == ("218.5", "kWh")
    assert shown["Conversion losses"] == ("133.5", "kWh")
    assert shown["Load shed"] == ("1.0", "kWh")
    assert shown["Largest grid ramp"] == ("2.5", "kW/s")
    assert shown["Ledger residual"] == ("8.3e-15", "kWh")
