"""The benchmark suite runs (at its tiny size): benchmarks are not timed tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_benchmark_runner_runs_every_case_at_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks", "--tiny", "--bandwidth", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())
    cases = record["cases"]
    assert set(cases) == {
        "day-tiny",
        "day-trace-tiny",
        "year-tiny",
        "quiet-1d",
        "quiet-3d",
        "quiet-3d-10f",
        "mix-tiny",
        "outage-tiny",
        "dashboard",
    }
    for name, r in cases.items():
        assert "error" not in r, (name, r)
        assert r["wall_s"] > 0 and r["peak_rss_mb"] > 0
    day = cases["day-tiny"]
    # The figures are what they say: GPUs x ticks per wall second, simulated per wall second.
    assert day["device_steps_per_s"] == pytest.approx(64 * 600 / day["wall_s"], rel=1e-9)
    assert day["sim_s_per_wall_s"] == pytest.approx(600 / day["wall_s"], rel=1e-9)
    assert abs(day["ledger_residual_j"]) <= 1e-9 * day["facility_energy_j"]
    # One row per report interval: two days at 1-minute reports.
    assert cases["year-tiny"]["rows"] == 2 * 1440
    # The heterogeneous mix: work rate is servers x ticks per CPU second.
    mix = cases["mix-tiny"]
    assert mix["server_ticks_per_s"] == pytest.approx(8 * 600 / mix["cpu_s"], rel=1e-9)
    # Serving cells per server-tick: the count over servers x ticks; every serving tick is solved at
    # least once (the per-server traces group nothing: one column per server).
    trace = cases["day-trace-tiny"]
    n_servers = trace["n_gpus"] // 8
    assert trace["serve_cells_per_server_tick"] == pytest.approx(trace["serve_cells"] / (n_servers * 600), rel=1e-12)
    assert trace["serve_cells_per_server_tick"] >= 1.0
    # Ten server faults are events (fail, repair, boot): more blocks than the quiet run without them.
    assert cases["quiet-3d-10f"]["blocks"] > cases["quiet-3d"]["blocks"]
    assert cases["dashboard"]["rerun_s"] > 0
    bw = record["bandwidth"]
    assert bw["copy_gb_s"] > 0
    # The bound is the bandwidth over the 11 bytes per device-step of the state update.
    assert bw["bound_device_steps_per_s"] == pytest.approx(bw["copy_gb_s"] * 1e9 / 11.0, rel=1e-12)
    assert "device-steps/s" in bw["statement"]


def test_random_jobs_are_drawn_from_the_seed_and_fit_the_pool() -> None:
    from benchmarks.cases import random_jobs

    text = random_jobs(308, 8, 86_400.0, 128, seed=42)
    assert text == random_jobs(308, 8, 86_400.0, 128, seed=42) != random_jobs(308, 8, 86_400.0, 128, seed=1)
    rows = [line.split(",") for line in text.strip().splitlines()[1:]]
    starts = [float(r[1]) for r in rows]
    durations = [float(r[2]) for r in rows]
    gpus = [int(r[3]) for r in rows]
    assert min(starts) == 0.0 and max(starts) < 86_400.0
    assert all(0 < d <= 12 * 3600.0 for d in durations)  # 1-12 h, less where clipped at the run's start
    assert all(8 <= g <= 128 * 8 and g % 8 == 0 for g in gpus)


def test_compare_flags_cases_slower_or_doing_more_work() -> None:
    from benchmarks.run import compare

    base = {
        "a": {"cpu_s": 10.0, "serve_cells": 1000, "duration_s": 3600.0},
        "b": {"cpu_s": 10.0, "serve_cells": 1000, "duration_s": 3600.0},
        "c": {"cpu_s": 10.0, "serve_cells": 1000, "duration_s": 3600.0},
        "d": {"cpu_s": 10.0, "duration_s": 86400.0},
        "e": {"cpu_s": 10.0, "duration_s": 3600.0},  # a record from before the cells were counted
        "g": {"cpu_s": "fast", "serve_cells": 1000, "duration_s": 3600.0},  # a hand-edited record
        "h": [1, 2],
        "i": {"cpu_s": 10.0, "serve_cells": 1000, "duration_s": 3600.0, "threads": 1},
    }
    now = {
        "a": {"cpu_s": 12.9, "serve_cells": 1099, "duration_s": 3600.0},  # within both margins
        "b": {"cpu_s": 13.1, "serve_cells": 1000, "duration_s": 3600.0},  # 31 % more CPU
        "c": {"cpu_s": 9.0, "serve_cells": 1101, "duration_s": 3600.0},  # faster, but more cells solved
        "d": {"cpu_s": 50.0, "duration_s": 3600.0},  # another simulated duration: not compared
        "e": {"cpu_s": 10.0, "serve_cells": 5000, "duration_s": 3600.0},
        "f": {"cpu_s": 1.0, "duration_s": 3600.0},  # not in the base
        "g": {"cpu_s": 99.0, "serve_cells": 9999, "duration_s": 3600.0},
        "h": {"cpu_s": 99.0, "duration_s": 3600.0},
        "i": {"cpu_s": 10.0, "serve_cells": 2000, "duration_s": 3600.0, "threads": 2},  # cells of other threads
    }
    lines, flagged = compare(now, base)
    assert flagged == ["b", "c"]
    assert any(line.split()[0] == "d" and "not compared" in line for line in lines)
    assert not any(line.split()[0] in ("f", "h") for line in lines)
    assert "(threads 1 then, 2 now)" in next(line for line in lines if line.split()[0] == "i")
    assert "no CPU time in the base" in next(line for line in lines if line.split()[0] == "g")
    assert "SLOWER" in next(line for line in lines if line.split()[0] == "b")
    assert "MORE WORK" in next(line for line in lines if line.split()[0] == "c")


def _json_values():  # type: ignore[no-untyped-def]
    from hypothesis import strategies as st

    figure = st.floats(min_value=0.5, max_value=1e6) | st.integers(min_value=1, max_value=10**6)
    scalar = figure | figure | st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    return st.recursive(scalar, lambda inner: st.lists(inner, max_size=3), max_leaves=5)


def _records():  # type: ignore[no-untyped-def]
    from hypothesis import strategies as st

    keys = st.sampled_from(["cpu_s", "serve_cells", "duration_s", "x"])
    case = st.dictionaries(keys, _json_values(), max_size=4) | _json_values()
    return st.dictionaries(st.sampled_from(["a", "b", "c"]), case, max_size=3)


def test_compare_takes_any_record_without_raising() -> None:
    """Records are JSON files a user may hand-edit: ``compare`` skips what it cannot read, never raises."""
    from hypothesis import given, settings

    from benchmarks.run import compare

    @settings(max_examples=300, deadline=None)
    @given(_records(), _records())
    def check(now: dict, base: dict) -> None:
        now = {k: v for k, v in now.items() if isinstance(v, dict)}  # a run's own cases are objects
        lines, flagged = compare(now, base)
        assert set(flagged) <= set(now) and lines

    check()
