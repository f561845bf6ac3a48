"""Sweeps: spec validation, a LocalCluster run, a real kill then resume, failed points, bad specs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import twin
from twin.cli import app
from twin.errors import ScenarioError
from twin.sweep import load_point, load_sweep, read_summary, run_sweep
from twin.sweep.store import error_path, point_path

DATA = Path(__file__).resolve().parent / "data"

#: Two 8-GPU servers serving an 8B model at a constant rate, in constant 32 C / 24 C wet-bulb air;
#: the site's transformer and UPS sized to the pod. A 10-minute point runs in about 20 ms.
TINY = {
    "duration_s": 600,
    "fleet.rows": 1,
    "fleet.racks_per_row": 1,
    "fleet.servers_per_rack": 2,
    "site.other_facility_power_w": 0,
    "power.transformer.rated_w": 40000,
    "power.ups.rated_w": 30000,
    "weather": {"source": "constant", "dry_bulb_c": 32, "wet_bulb_c": 24},
    "workloads": [
        {
            "name": "chat",
            "kind": "inference",
            "model": "Llama-3.1-8B",
            "servers": 2,
            "max_batch": 128,
            "arrivals": {"kind": "constant", "requests_per_s": 40},
        }
    ],
}


def write_spec(folder: Path, body: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"base": "default", "overrides": TINY, **body}, sort_keys=False))
    return path


def broken_epw(folder: Path) -> Path:
    """An EPW weather file that exists (so the spec validates) but is cut off after two records."""
    path = folder / "broken.epw"
    path.write_text("".join((DATA / "synthetic.epw").read_text().splitlines(keepends=True)[:2]))
    return path


def file_state(path: Path) -> tuple[int, int, str]:
    """Inode, mtime and writing run of a point file: any rewrite changes them."""
    st = path.stat()
    _, record = load_point(path.parent.parent, path.stem)
    return st.st_ino, st.st_mtime_ns, record["run_id"]


# === the spec ==================================================================================


def test_points_are_entries_times_grid_cells_with_overrides(tmp_path):
    spec = write_spec(
        tmp_path,
        {
            "points": [{"fleet.power_cap_w": 500}, {"fleet.power_cap_w": 700, "seed": 7}],
            "grid": {"cooling.liquid_class": ["W17", "W45"], "cooling.heat_rejection": ["tower", "dry_cooler"]},
        },
    )
    sw = load_sweep(spec)
    assert sw.name == "spec"
    assert len(sw.points) == 2 * 2 * 2
    assert sw.fields == ["fleet.power_cap_w", "cooling.liquid_class", "cooling.heat_rejection", "seed"]
    # entries outer, grid inner with the last grid key varying fastest
    assert sw.points[1].values == {
        "fleet.power_cap_w": 500,
        "cooling.liquid_class": "W17",
        "cooling.heat_rejection": "dry_cooler",
    }
    assert sw.points[4].values["seed"] == 7
    assert sw.points[4].values["cooling.liquid_class"] == "W17"
    for p in sw.points:
        sc = p.scenario
        assert sc.duration_s == 600 and sc.fleet.n_servers == 2  # the overrides reach every point
        assert sc.fleet.power_cap_w == p.values["fleet.power_cap_w"]
        assert sc.cooling.liquid_class == p.values["cooling.liquid_class"]
    assert len({p.key for p in sw.points}) == 8


def test_key_is_the_resolved_scenario_however_it_is_spelt(tmp_path):
    a = load_sweep(write_spec(tmp_path, {"grid": {"fleet.power_cap_w": [500, 600]}}, "a.yaml"))
    # the same scenarios as a list of points, a float spelling and the other order
    b = load_sweep(
        write_spec(tmp_path, {"points": [{"fleet.power_cap_w": 600.0}, {"fleet.power_cap_w": 500}]}, "b.yaml")
    )
    assert [p.key for p in a.points] == [p.key for p in reversed(b.points)]
    # a change anywhere in the scenario is a new key
    c = load_sweep(write_spec(tmp_path, {"grid": {"fleet.power_cap_w": [500]}, "name": "c"}, "c.yaml"))
    d_body = {"grid": {"fleet.power_cap_w": [500]}}
    d_spec = write_spec(tmp_path, d_body, "d.yaml")
    d_spec.write_text(d_spec.read_text().replace("duration_s: 600", "duration_s: 660"))
    assert c.points[0].key == a.points[0].key
    assert load_sweep(d_spec).points[0].key != a.points[0].key


@pytest.mark.parametrize(
    "spec", sorted((Path(__file__).resolve().parent.parent / "scenarios" / "sweeps").glob("*.yaml"))
)
def test_shipped_specs_validate(spec):
    sw = load_sweep(spec)
    assert sw.points and len({p.key for p in sw.points}) == len(sw.points), spec.name


def test_cap_slo_spec_replays_every_point_with_targets():
    """scenarios/sweeps/power-cap-slo.yaml: uncapped then lower caps, each replayed request by request with SLOs."""
    sw = load_sweep(Path(__file__).resolve().parent.parent / "scenarios" / "sweeps" / "power-cap-slo.yaml")
    assert [p.values["fleet.power_cap_w"] for p in sw.points] == [None, 600, 500, 400, 300]
    for p in sw.points:
        sc = p.scenario
        assert sc.request_level is not None and sc.request_level.ranks == 2
        assert all(w.slo is not None for w in sc.workloads)


def test_base_path_is_relative_to_the_spec(tmp_path):
    (tmp_path / "scen").mkdir()
    (tmp_path / "scen" / "mine.yaml").write_text("base: default\nname: mine\nduration_s: 1200\n")
    spec = tmp_path / "sweeps" / "s.yaml"
    spec.parent.mkdir()
    spec.write_text("base: ../scen/mine.yaml\ngrid:\n  fleet.power_cap_w: [400, 500]\n")
    sw = load_sweep(spec)
    assert [p.scenario.name for p in sw.points] == ["mine", "mine"]
    assert sw.points[0].scenario.duration_s == 1200


BAD_SPECS = [
    # (spec text, field path in the error, line, words in the message)
    ("base: default\ngrids:\n  fleet.rows: [1]\n", "grids", 2, "unknown field"),
    ("base: default\ngrid:\n  cooling.liquid_class: [W17, W99]\n", "cooling.liquid_class", 3, "point 1"),
    ("base: default\ngrid:\n  cooling.liquid_clas: [W17]\n", "cooling.liquid_clas", 3, "unknown field"),
    ("base: default\npoints:\n  - {fleet.rows: 1}\n  - {fleet.rows.x: 2}\n", "fleet.rows.x", 4, "no such field path"),
    ("base: default\ngrid:\n  fleet.rows: []\n", "grid.fleet.rows", 3, "at least 1 item"),
    ("base: default\nname: nothing\n", "(top level)", None, "a sweep needs grid"),
    ("base: no-such-preset\ngrid:\n  fleet.rows: [1]\n", "base", 1, "no preset 'no-such-preset'"),
    (
        "base: default\npoints:\n  - {fleet.power_cap_w: 500}\n  - {fleet.power_cap_w: 500.0}\n",
        "(points)",
        None,
        "same scenario",
    ),
    (  # the pools follow a fleet size the point gives (twin.scenario.edits), unless it sizes them
        "base: default\npoints:\n  - {seed: 1}\n"
        "  - {fleet.rows: 2, workloads.0.servers: 60, workloads.1.servers: 16}\n",
        "(top level)",
        4,
        "workloads ask for 76 servers but the fleet has 64",
    ),
    (
        "base: default\npoints:\n  - {seed: 1}\n  - {fleet.rows: 2, workloads.0.servers: 96}\n",
        "fleet",
        4,
        "64 servers cannot hold 2 workloads (112 servers",
    ),
    ("base: default\noverrides: {fleet.rows: -1}\ngrid:\n  seed: [1]\n", "fleet.rows", 2, "must be > 0"),
    ("base: default\ngrid:\n  fleet rows: [1]\n", "grid", 3, "not a dotted field path"),
    ("- just\n- a list\n", "(top level)", 1, "expected a mapping"),
    ("", "(top level)", 1, "an empty file"),
    ("base: default\ngrid:\n  fleet.rows: [1\n", "(yaml)", 4, "not valid YAML"),
]


@pytest.mark.parametrize(("text", "field", "line", "words"), BAD_SPECS)
def test_bad_spec_names_file_field_and_line(tmp_path, text, field, line, words):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_sweep(spec)
    err = info.value
    assert err.source == str(spec)
    match = [p for p in err.problems if p.field == field]
    assert match, str(err)
    assert match[0].line == line, str(err)
    assert words in match[0].message, str(err)


def test_bad_spec_cli_exits_2_and_writes_nothing(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("base: default\ngrid:\n  cooling.liquid_class: [W17, W99]\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "0"])
    assert res.exit_code == 2
    assert "invalid sweep spec" in res.output and "point 1" in res.output and "(line 3)" in res.output
    assert not out.exists()


# === running on a LocalCluster ================================================================


@pytest.fixture(scope="module")
def cluster_sweep(tmp_path_factory):
    """3 W-classes x (constant air, a corrupt weather file), run on a 2-worker LocalCluster."""
    folder = tmp_path_factory.mktemp("cluster")
    broken_epw(folder)
    spec = write_spec(
        folder,
        {
            "points": [{"weather.source": "constant"}, {"weather.source": "broken.epw"}],
            "grid": {"cooling.liquid_class": ["W17", "W32", "W45"]},
        },
    )
    sw = load_sweep(spec)
    seen = []
    report = run_sweep(sw, folder / "out", workers=2, progress=lambda d, t, p, s: seen.append((d, t, p and p.index, s)))
    return sw, report, seen


def test_cluster_sweep_runs_every_point_once_and_writes_the_summary(cluster_sweep):
    sw, report, seen = cluster_sweep
    out = report.out
    assert (report.total, report.skipped, report.ran, len(report.failed)) == (6, 0, 3, 3)
    assert seen[0] == (0, 6, None, "start")
    assert sorted(i for _, _, i, _ in seen[1:]) == list(range(6))
    assert [d for d, *_ in seen] == list(range(7)) and {t for _, t, _, _ in seen} == {6}
    summary = read_summary(out)
    assert list(summary["point"]) == list(range(6))
    assert list(summary["key"]) == [p.key for p in sw.points]
    assert list(summary["status"]) == ["ok"] * 3 + ["failed"] * 3
    assert list(summary["cooling.liquid_class"]) == ["W17", "W32", "W45"] * 2
    assert {"pue", "tokens_per_kwh", "energy_cooling_chiller_j", "ledger_residual_j"} <= set(summary.columns)
    csv = pd.read_csv(out / "summary.csv")
    pd.testing.assert_series_equal(csv["pue"], summary["pue"])
    assert list(csv["key"]) == list(summary["key"])
    # they ran in the cluster's worker processes, not here
    assert all(int(w.rsplit(":", 1)[1]) != os.getpid() for w in summary["worker"])
    assert summary["run_id"].nunique() == 1
    assert sorted(p.name for p in (out / "points").iterdir()) == sorted(
        [f"{p.key}.parquet" for p in sw.points[:3]] + [f"{p.key}.error.json" for p in sw.points[3:]]
    )


def test_cluster_point_equals_a_direct_run(cluster_sweep):
    sw, report, _ = cluster_sweep
    point = sw.points[1]
    ts, record = load_point(report.out, point.key)
    direct = twin.simulate(point.scenario)
    pd.testing.assert_frame_equal(ts, direct.timeseries)
    assert record["kpis"] == pytest.approx(direct.kpis, rel=0, abs=0, nan_ok=True)
    assert record["values"] == {"weather.source": "constant", "cooling.liquid_class": "W32"}
    assert record["scenario"] == point.scenario.model_dump(mode="json")


def test_cluster_points_balance_and_warmer_water_needs_less_chiller(cluster_sweep):
    _, report, _ = cluster_sweep
    ok = report.summary[report.summary["status"] == "ok"]
    for _, row in ok.iterrows():
        assert abs(row["ledger_residual_j"]) <= 1e-9 * row["facility_energy_j"]
        assert row["pue"] > 1.0
    # In 32 C / 24 C air a warmer facility-water supply leaves more to the economiser and tower.
    # W32 and W45 need no chillers for the liquid side; the chillers carry the air side, which
    # takes a share of the warmer dies' leakage (twin.physics.silicon): relatively less than the
    # GPUs' energy grows.
    chiller, gpu = list(ok["energy_cooling_chiller_j"]), list(ok["energy_accelerators_j"])
    assert chiller[0] > chiller[1] and chiller[0] > chiller[2]
    assert gpu[2] > gpu[1]
    assert chiller[2] / chiller[1] - 1.0 < gpu[2] / gpu[1] - 1.0


def test_failed_point_is_recorded_with_its_error(cluster_sweep):
    sw, report, _ = cluster_sweep
    failed = report.summary[report.summary["status"] == "failed"]
    assert [p.index for p in report.failed] == [3, 4, 5]
    for _, row in failed.iterrows():
        assert row["error"].startswith("TraceFormatError: ")
        assert "broken.epw" in row["error"]
        assert pd.isna(row["pue"])
    record = json.loads(error_path(report.out, sw.points[3].key).read_text())
    assert record["error_type"] == "TraceFormatError"
    assert "Traceback (most recent call last)" in record["traceback"] and "read_epw" in record["traceback"]
    assert record["values"]["weather.source"] == "broken.epw"


def test_rerun_retries_failed_points_and_keeps_finished_ones(tmp_path):
    epw = broken_epw(tmp_path)
    points = [{"weather.source": "constant"}, {"weather.source": "broken.epw"}]
    # The repaired file holds 48 h from 1 January: the run must lie inside them.
    spec = write_spec(tmp_path, {"overrides": {**TINY, "start": "2001-01-01T00:00:00"}, "points": points})
    sw = load_sweep(spec)
    out = tmp_path / "out"
    # through the CLI, in this process: a failed point is exit code 1, named with its error file
    res = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "0"])
    assert res.exit_code == 1
    said = "".join(res.output.split())  # rich wraps long paths anywhere
    assert f"failedpoint1(weather.source='broken.epw'):see{out}/points/{sw.points[1].key}.error.json" in said
    listing = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out), "--dry-run"])
    assert listing.exit_code == 0
    assert [line.split()[2] for line in listing.output.splitlines()[:2]] == ["ok", "failed"]
    before = file_state(point_path(out, sw.points[0].key))
    shutil.copy(DATA / "synthetic.epw", epw)  # repair the file: same path, so the same key
    again = run_sweep(load_sweep(spec), out, workers=0)
    assert (again.skipped, again.ran, again.failed) == (1, 1, [])
    assert file_state(point_path(out, sw.points[0].key)) == before
    assert not error_path(out, sw.points[1].key).exists()
    assert list(again.summary["status"]) == ["ok", "ok"]
    assert list(again.summary["error"].fillna("")) == ["", ""]


def test_cli_progress_counts_out_of_every_point_from_the_start(tmp_path, monkeypatch):
    import twin.cli

    seen: list[tuple[float, float | None]] = []

    class Recording(twin.cli.Progress):
        def add_task(self, *args, **kwargs):
            task = super().add_task(*args, **kwargs)
            seen.append((self.tasks[0].completed, self.tasks[0].total))
            return task

        def update(self, task, **kwargs):
            super().update(task, **kwargs)
            seen.append((self.tasks[0].completed, self.tasks[0].total))

    monkeypatch.setattr(twin.cli, "Progress", Recording)
    spec = write_spec(tmp_path, {"grid": {"fleet.servers_per_rack": [1, 2]}})
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert seen == [(0, 2), (0, 2), (1, 2), (2, 2)]  # never "0/None"
    seen.clear()
    res = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert seen == [(0, 2), (2, 2)]  # resumed: both points already done


# === kill, then resume ========================================================================


def test_killed_sweep_resumes_losing_nothing_and_running_nothing_twice(tmp_path):
    # 16 points of 6 simulated hours (~0.2 s each) on a 2-worker LocalCluster, through the CLI.
    spec = write_spec(
        tmp_path,
        {
            "overrides": {**TINY, "duration_s": 21600},
            "grid": {
                "fleet.power_cap_w": [400, 450, 500, 550, 600, 650, 700, 750],
                "cooling.liquid_class": ["W17", "W45"],
            },
        },
    )
    sw = load_sweep(spec)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "twin.cli", "sweep", str(spec), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen([*cmd, "-q"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "points").glob("*.parquet"))) < 4:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no point finished within 60 s"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client, its scheduler and the worker processes
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    done = {p.stem: file_state(p) for p in (out / "points").glob("*.parquet")}
    assert 4 <= len(done) < 16, "the kill must land mid-sweep"
    assert not (out / "summary.parquet").exists()  # killed before the end
    (run1,) = {state[2] for state in done.values()}

    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert f"ran {16 - len(done)}, skipped {len(done)} finished, failed 0" in " ".join(res.stdout.split())
    summary = read_summary(out)
    assert list(summary["status"]) == ["ok"] * 16 and list(summary["key"]) == [p.key for p in sw.points]
    after = {p.key: file_state(point_path(out, p.key)) for p in sw.points}
    # the points finished before the kill are the same files, written once by the first run ...
    assert {k: after[k] for k in done} == done
    # ... and every other point was written once, by the second run
    run2 = {after[k][2] for k in after if k not in done}
    assert len(run2) == 1 and run1 not in run2
    assert (summary["run_id"] == run1).sum() == len(done)
    assert not list(out.rglob(".*.tmp"))
