"""Outputs under hostile conditions: undefined values, interrupted saves, bad output folders,
tampered sweep points, a taken Dask port and a held apt lock. Each ends in a correct result or a
clear error."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from rich.console import Console
from test_sweep import TINY  # the sweep tests' two-server pod
from typer.testing import CliRunner

import twin.simulation
from twin import load_scenario, simulate
from twin.cli import app, kpi_table
from twin.dashboard import frames
from twin.report import report_figure, write_report
from twin.results import Result, check_output_dir, events_frame
from twin.sweep import load_point, load_sweep, read_summary, run_sweep
from twin.sweep.store import INVALID, OK, PointFileError, point_path, status, write_point

REPO = Path(__file__).resolve().parent.parent

#: Two racks of four 8-GPU servers training; the utility drops at 130 s for 900 s. The battery
#: (5 min) carries part of the 120-180 s interval, then whole intervals (nothing metered), then
#: runs out: every server is dark until the utility is back and they have booted (1330 s).
OUTAGE = {
    "fleet.rows": 1,
    "fleet.racks_per_row": 2,
    "duration_s": 1800,
    "step_s": 1,
    "report_interval_s": 60,
    "workloads": [
        {"name": "train", "kind": "training", "model": "Llama-3.1-8B", "mfu": 0.45, "checkpoint_interval_s": 600}
    ],
    "cooling": {"model": "ideal", "type": "liquid", "supply_temp_c": 30.0},
    "weather": {"source": "constant"},
    "power.ups.rated_w": 120e3,
    "power.transformer.rated_w": 250e3,
    "site.other_facility_power_w": 500,
    "power.ups.battery": {"runtime_s": 300, "min_soc": 0.1},
    "events": [{"time_s": 130, "kind": "utility_loss", "duration_s": 900}],
}

#: A pod with nothing to run: no token, so no energy per token.
EMPTY = {"workloads": [], "duration_s": 600, "report_interval_s": 60}

#: The same, through `twin run --set`.
EMPTY_SETS = ["--set", "workloads=[]", "--set", "duration_s=600", "--set", "report_interval_s=60"]


@pytest.fixture(scope="module")
def outage() -> Result:
    return simulate(load_scenario("default", OUTAGE))


@pytest.fixture(scope="module")
def empty() -> Result:
    return simulate(load_scenario("default", EMPTY))


def strict_json(text: str) -> Any:
    """Parse JSON refusing ``NaN`` and ``Infinity`` (which are not JSON)."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# === 1. undefined values are null, never a made-up number ====================================


def test_interval_pue_and_die_temperature_are_undefined_not_zero_or_minus_infinity(outage: Result) -> None:
    ts = outage.timeseries
    metered = ts["facility_power_w"] * ts["duration_s"]
    on_battery = ts["battery_net_power_w"] < 0
    dark = ts["servers_up"] == 0
    assert (metered == 0).any() and on_battery.any() and dark.any()  # the scenario covers every case
    # Nothing metered, part of the load on the battery, or no IT load: PUE is undefined.
    assert ts.loc[(metered == 0) | on_battery | (ts["it_power_w"] == 0), "pue"].isna().all()
    assert (ts["pue"].dropna() >= 1.0).all()  # never the 0.0 (or 0.2) a ratio of the meter would read
    # No GPU up: no die temperature, no clock, no GPU power; never -inf.
    for col in ("die_temp_max_c", "clock_fraction_mean", "gpu_power_mean_w"):
        assert ts.loc[dark & (ts["it_power_w"] == 0), col].isna().all(), col
    floats = ts.select_dtypes("float")
    assert not np.isinf(floats.to_numpy()).any()
    assert math.isfinite(outage.kpis["max_die_temp_c"])
    # The battery ends the run emptier than it began: metered input over IT would read 0.68, not a PUE.
    assert outage.kpis["energy_battery_net_j"] < 0 and math.isnan(outage.kpis["pue"])


def test_parquet_holds_nulls_and_summary_json_is_strict(outage: Result, empty: Result, tmp_path: Path) -> None:
    for name, result in (("outage", outage), ("empty", empty)):
        out = tmp_path / name
        result.save(out)
        for file in ("timeseries.parquet", "ledger.parquet"):
            table = pq.read_table(out / file)
            for col in table.column_names:
                column = table[col]
                if column.type in ("double", "float"):
                    values = column.drop_null()
                    assert pc.sum(pc.is_nan(values)).as_py() in (0, None), (file, col)
                    assert pc.sum(pc.is_inf(values)).as_py() in (0, None), (file, col)
        summary = strict_json((out / "summary.json").read_text())
        strict_json((out / "scenario.json").read_text())
        back = Result.load(out)
        assert all(isinstance(v, float | int) for v in back.kpis.values())  # null reads back as NaN
        if name == "outage":
            table = pq.read_table(out / "timeseries.parquet")
            assert table["pue"].null_count == int(result.timeseries["pue"].isna().sum()) > 0
            assert table["die_temp_max_c"].null_count > 0
        else:
            assert summary["kpis"]["j_per_token_facility"] is None
            assert summary["kpis"]["j_per_token_it"] is None
            assert math.isnan(back.kpis["j_per_token_facility"])


def test_kpi_table_report_and_dashboard_show_null_as_n_a(empty: Result, tmp_path: Path) -> None:
    kpis = {**empty.kpis, "chat_ttft_p50_s": math.nan}
    console = Console(record=True, width=200)
    console.print(kpi_table(kpis, "empty"))
    text = console.export_text()
    assert "nan" not in text.lower().replace("nano", "")
    line = next(row for row in text.splitlines() if "Energy per token (facility)" in row)
    assert "n/a" in line
    assert "n/a" in next(row for row in text.splitlines() if "chat TTFT p50" in row)
    # the report's title
    fig = report_figure(empty)
    title = fig._suptitle.get_text() if fig._suptitle is not None else ""
    assert "n/a J/token" in title and "nan" not in title
    # the dashboard: a card of a null KPI (as read from summary.json), the strict download, the flow line
    card = next(c for c in frames.KPI_CARDS if c.key == "j_per_token_facility")
    empty.save(tmp_path / "e")
    nulls = json.loads((tmp_path / "e" / "summary.json").read_text())["kpis"]
    assert nulls["j_per_token_facility"] is None
    assert card.text(nulls) == "n/a" and card.text(empty.kpis) == "n/a"
    assert strict_json(frames.summary_json(empty))["kpis"]["j_per_token_facility"] is None
    dark = {**empty.kpis, "facility_energy_kwh": 0.0, "it_energy_kwh": 0.0, "tokens_per_kwh": math.nan}
    assert "(n/a)" in frames.flow_sentence(dark)
    assert pq.read_table(frames.io.BytesIO(frames.timeseries_parquet(empty))).num_rows == len(empty.timeseries)


def test_cli_kpi_table_says_n_a_for_an_empty_scenario(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", *EMPTY_SETS, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    line = next(row for row in res.output.splitlines() if "Energy per token (facility)" in row)
    assert "n/a" in line and "nan" not in line
    strict_json((tmp_path / "out" / "summary.json").read_text())


def test_event_details_never_read_nan() -> None:
    frame = events_frame([{"time_s": 1.0, "event": "x", "soc": math.nan, "power_w": 2.5}])
    assert frame["detail"].iloc[0] == "soc=n/a power_w=2.5"


def test_sweep_point_record_is_strict_json(tmp_path: Path) -> None:
    ts = pd.DataFrame({"time_s": [0.0, 60.0], "pue": [1.2, math.nan], "die_temp_max_c": [50.0, -math.inf]})
    path = write_point(tmp_path, "k1", ts, {"key": "k1", "kpis": {"pue": math.nan, "tokens_out": 0.0}})
    meta = pq.read_schema(path).metadata[b"twin.sweep"].decode()
    assert strict_json(meta)["kpis"]["pue"] is None
    table = pq.read_table(path)
    assert table["pue"].null_count == 1 and table["die_temp_max_c"].null_count == 1
    frame, record = load_point(tmp_path, "k1")
    assert math.isnan(record["kpis"]["pue"]) and frame["die_temp_max_c"].isna().iloc[1]


# === 2. an output folder always holds one whole run ===========================================


def test_interrupted_save_leaves_the_former_run_whole(
    empty: Result, outage: Result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    empty.save(out)
    before = folder_bytes(out)
    real_write = pq.write_table
    calls = []

    def dies_on_the_second(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:  # the time series is written, the ledger is not
            raise KeyboardInterrupt
        real_write(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        outage.save(out)
    monkeypatch.undo()
    assert folder_bytes(out) == before  # not a new time series beside the old summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left
    # a save that goes through replaces every file, the report of the former run included
    empty.save(out, report=write_report)
    assert (out / "report.png").exists()
    files = outage.save(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files)
    assert "report.png" not in {p.name for p in out.iterdir()}
    assert strict_json((out / "summary.json").read_text())["scenario_name"] == outage.scenario["name"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_save_killed_between_its_renames_loses_nothing(empty: Result, tmp_path: Path) -> None:
    out = tmp_path / "out"
    empty.save(out)
    before = folder_bytes(out)
    pid = _dead_pid()
    # the state a SIGKILL between "former run aside" and "new run in" leaves
    out.rename(tmp_path / f".out.{pid}-aaaa.old")
    (tmp_path / f".out.{pid}-bbbb.new").mkdir()
    (tmp_path / f".out.{pid}-bbbb.new" / "summary.json").write_text("{")
    previous = check_output_dir(out)
    assert previous is not None and previous.scenario_name == empty.scenario["name"]
    assert folder_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# === 3. the output location is checked before the run; a replaced run is named ================


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("simulated although the output location is unusable")

    monkeypatch.setattr(twin.simulation, "simulate", refuse)


def test_run_into_a_file_fails_before_simulating(tmp_path: Path, no_simulation: None) -> None:
    target = tmp_path / "results.txt"
    target.write_text("mine")
    res = CliRunner().invoke(app, ["run", "--out", str(target)])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    assert f"{target} is a file, not a folder" in said and "Traceback" not in res.output
    assert target.read_text() == "mine"


def test_run_into_a_folder_of_other_files_is_refused_not_wiped(tmp_path: Path, no_simulation: None) -> None:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    (folder / "summary.json").write_text("{}")
    res = CliRunner().invoke(app, ["run", "--out", str(folder)])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    assert "chapter1.tex" in said and "refusing to replace it" in said and "Traceback" not in res.output
    assert sorted(p.name for p in folder.iterdir()) == ["chapter1.tex", "summary.json"]


def test_rerun_says_which_run_it_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = CliRunner().invoke(app, ["run", *EMPTY_SETS, "--out", str(out), "-q"])
    assert first.exit_code == 0, first.output
    assert "replacing" not in first.output
    written = json.loads((out / "summary.json").read_text())["written_at"]
    again = CliRunner().invoke(app, ["run", *EMPTY_SETS, "--out", str(out), "-q"])
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert f"replacing the run in {out}/ (scenario default-h100-inference-pod, written {written})" in said
    assert {p.name for p in out.iterdir()} == {
        "summary.json",
        "timeseries.parquet",
        "ledger.parquet",
        "scenario.json",
        "events.csv",
        "report.png",
    }


# === 4. sweep points: the stored key is checked, a truncated file is found and recomputed ======


@pytest.fixture
def swept(tmp_path: Path) -> tuple[Path, Path]:
    """A finished 2-point sweep (power caps 400 and 700 W), run in this process."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": "default", "overrides": TINY, "grid": {"fleet.power_cap_w": [400, 700]}}))
    out = tmp_path / "out"
    report = run_sweep(load_sweep(spec), out, workers=0)
    assert report.ran == 2
    return spec, out


def _dry_run(spec: Path, out: Path) -> tuple[list[str], str]:
    """The states ``twin sweep --dry-run`` lists, and its output without white space (rich wraps paths)."""
    res = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    states = [line.split()[2] for line in res.output.splitlines()[:2]]
    return states, "".join(res.output.split())


def test_a_point_file_copied_over_another_is_found_and_recomputed(swept: tuple[Path, Path]) -> None:
    spec, out = swept
    a, b = load_sweep(spec).points
    pue_a, pue_b = (read_summary(out)["pue"].iloc[i] for i in (0, 1))
    assert pue_a != pue_b
    shutil.copy(point_path(out, a.key), point_path(out, b.key))
    assert status(out, b.key) == INVALID
    states, said = _dry_run(spec, out)
    assert states == [OK, INVALID]
    assert f"{point_path(out, b.key)}:holdstheresultofpoint{a.key},notofpoint{b.key}" in said
    with pytest.raises(PointFileError, match=f"holds the result of point {a.key}"):
        load_point(out, b.key)
    res = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "0"])
    assert res.exit_code == 0, res.output
    said = "".join(res.output.split())
    assert "recomputingpoint1(fleet.power_cap_w=700)" in said and f"notofpoint{b.key}" in said
    summary = read_summary(out)
    assert list(summary["status"]) == [OK, OK]
    assert summary["pue"].iloc[1] == pytest.approx(pue_b, rel=1e-12)  # the 700 W point's own result
    assert load_point(out, b.key)[1]["values"] == {"fleet.power_cap_w": 700}


def test_a_truncated_point_file_is_named_and_recomputed(swept: tuple[Path, Path]) -> None:
    spec, out = swept
    _, b = load_sweep(spec).points
    path = point_path(out, b.key)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    states, said = _dry_run(spec, out)
    assert states == [OK, INVALID]
    assert f"{path}:unreadablesweeppointfile(ArrowInvalid:" in said
    with pytest.raises(PointFileError, match="unreadable sweep point file"):
        load_point(out, b.key)
    seen: list[tuple[int, str]] = []
    report = run_sweep(load_sweep(spec), out, workers=0, on_invalid=lambda p, why: seen.append((p.index, why)))
    assert (report.skipped, report.ran, report.failed) == (1, 1, [])
    assert [i for i, _ in seen] == [1] and str(path) in seen[0][1]
    assert list(report.summary["status"]) == [OK, OK]
    load_point(out, b.key)  # whole again
    assert not list(out.rglob(".*.tmp"))


# === 5. a taken Dask dashboard port; apt's lock held by another apt ===========================


def test_sweep_on_a_local_cluster_while_port_8787_is_taken(swept: tuple[Path, Path]) -> None:
    spec, out = swept
    shutil.rmtree(out)
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # taken already: what this test needs
    try:
        report = run_sweep(load_sweep(spec), out, workers=1)
    finally:
        holder.close()
    assert (report.ran, report.failed) == (2, [])


def _fake_bin(tmp_path: Path, chromium: bool) -> tuple[dict[str, str], Path]:
    """A PATH of a fake apt-get that cannot get its lock (and a fake sudo), plus id and sleep."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "$@" >> {log}\n'
        'echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1 (apt)" >&2\nexit 100\n'
    )
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    if chromium:
        (bin_dir / "chromium").write_text("#!/bin/sh\nexit 0\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    for tool in ("id", "sleep"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    env = {"PATH": str(bin_dir), "APT_RETRY_SLEEP_S": "0", "HOME": str(tmp_path)}
    return env, log


def _install_chromium(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash") or "/bin/bash"
    script = f"source {REPO / 'tests' / 'run_all.sh'}; install_chromium; echo tests-run"
    return subprocess.run([bash, "-c", script], env=env, capture_output=True, text=True, check=False, timeout=60)


def test_run_all_retries_apt_and_goes_on_when_its_lock_stays_held(tmp_path: Path) -> None:
    env, log = _fake_bin(tmp_path, chromium=False)
    proc = _install_chromium(env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tests-run"  # the suite goes on to the tests
    calls = log.read_text().splitlines()
    assert len(calls) == 3 and all("-o DPkg::Lock::Timeout=120" in c and "update" in c for c in calls)
    assert "installing chromium with apt-get failed (try 3 of 3)" in proc.stderr
    assert "could not install chromium after 3 tries" in proc.stderr


def test_run_all_skips_the_install_when_chromium_is_there(tmp_path: Path) -> None:
    env, log = _fake_bin(tmp_path, chromium=True)
    proc = _install_chromium(env)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "tests-run", "")
    assert not log.exists()
