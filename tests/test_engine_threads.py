"""A block's columns computed in chunks on threads: the same run to the bit, and the user's cap on threads."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from engine_reference import assert_same_run, cases

import twin
from benchmarks.cases import TINY_MIX, mix_case
from twin.engine import kernel, threads
from twin.engine.threads import THREADS_ENV, ThreadsError, chunks, cores, rebalanced, resolve_threads
from twin.errors import InvalidInputError

TWIN = [sys.executable, "-m", "twin.cli"]


def _runs(
    sc: twin.Scenario, monkeypatch: pytest.MonkeyPatch, block_cells: int = kernel.MAX_BLOCK_CELLS
) -> tuple[twin.Result, twin.Result, int]:
    """The scenario run serially and on 3 threads with every block split; and how many blocks were split."""
    monkeypatch.setattr(kernel, "MAX_BLOCK_CELLS", block_cells)
    monkeypatch.setattr(kernel, "MIN_CHUNK_CELLS", 1)  # split even these small ones (3 chunks, uneven)
    split = []
    run_all = kernel.run_all

    def counted(n: int, tasks: list) -> list:
        split.append(len(tasks))
        return run_all(n, tasks)

    monkeypatch.setattr(kernel, "run_all", counted)
    monkeypatch.setenv(THREADS_ENV, "1")
    serial = twin.simulate(sc)
    assert not split
    monkeypatch.setenv(THREADS_ENV, "3")
    threaded = twin.simulate(sc)
    return serial, threaded, len(split)


def test_threaded_heterogeneous_mix_equals_serial_to_the_bit(tmp_path, monkeypatch):
    # Servers on their own trace offsets (chat and code pools) and training jobs: nothing groups,
    # every column has its own queues, governor solve and die.
    case = mix_case("mix-tiny", TINY_MIX)
    sc = twin.load_scenario("default", case.with_files(tmp_path))
    serial, threaded, split = _runs(sc, monkeypatch, block_cells=128)  # many blocks of 16 ticks
    assert split > 30  # the 10 minutes' blocks were computed in chunks
    assert_same_run(serial, threaded)


def test_threaded_compiled_mix_equals_serial_to_the_bit(tmp_path, monkeypatch):
    # The same with the compiled serving solve and governor from the first block (each column's
    # pass is its own, so chunks of columns on threads give the serial run, wherever the chunks'
    # edges fall: they follow the time each chunk took, so two threaded runs split differently).
    monkeypatch.setattr(kernel, "COMPILED_FROM_CELLS", 0.0)
    case = mix_case("mix-tiny", TINY_MIX)
    sc = twin.load_scenario("default", case.with_files(tmp_path))
    serial, threaded, split = _runs(sc, monkeypatch, block_cells=128)
    assert split > 30
    assert_same_run(serial, threaded)
    assert_same_run(serial, twin.simulate(sc))  # (still on 3 threads)


def test_chunk_edges_moved_every_block_leave_the_run_unchanged_to_the_bit(tmp_path, monkeypatch):
    """The chunks' edges follow the time each chunk took; given random times they move every block,
    and the run is still the serial one to the bit (a column computes the same in any chunk)."""
    rng = np.random.default_rng(7)
    rebalance = kernel.Engine._rebalance  # called once per block after the chunks join: the draws keep their order
    monkeypatch.setattr(
        kernel.Engine, "_rebalance", lambda self, seconds: rebalance(self, list(rng.uniform(0.1, 1.0, len(seconds))))
    )
    monkeypatch.setattr(threads, "REBALANCE_TOLERANCE", 0.0)
    edges = set()
    set_parts = kernel.Engine._set_parts

    def recording(self, e):
        edges.add(tuple(e))
        set_parts(self, e)

    monkeypatch.setattr(kernel.Engine, "_set_parts", recording)
    case = mix_case("mix-tiny", TINY_MIX)
    sc = twin.load_scenario("default", case.with_files(tmp_path))
    serial, threaded, split = _runs(sc, monkeypatch, block_cells=128)
    assert split > 30 and len(edges) > 4  # many blocks, between many of the edges 8 columns allow
    assert_same_run(serial, threaded)


def test_rebalanced_edges_share_the_time_and_keep_every_chunk():
    # Columns 0-99 cost 3, 100-199 cost 1: the even share of 400 is at column 66.7. Each edge moves
    # halfway toward where the last times put it, until the chunks' times are within the tolerance.
    cost = np.where(np.arange(200) < 100, 3.0, 1.0)
    edges = [0, 100, 200]
    for _ in range(12):
        edges = rebalanced(edges, [cost[a:b].sum() for a, b in itertools.pairwise(edges)])
    times = [cost[a:b].sum() for a, b in itertools.pairwise(edges)]
    assert 66 <= edges[1] < 100 and max(times) - min(times) <= threads.REBALANCE_TOLERANCE * np.mean(times)
    assert rebalanced([0, 1, 2, 3], [5.0, 0.0, 0.0]) == [0, 1, 2, 3]  # never an empty chunk


def test_threaded_faults_floor_and_site_limit_equal_serial_to_the_bit(monkeypatch):
    # Paused training (checkpoint restarts), a training power floor, a demand-response window (a
    # site limit: computed serially while it holds), battery and generator, random faults.
    serial, threaded, split = _runs(cases()["faults-mixed"], monkeypatch)
    assert split > 10
    assert_same_run(serial, threaded)


def test_small_blocks_stay_serial():
    # Below MIN_CHUNK_CELLS a chunk's numpy calls are too short for threads to pay: one thread.
    eng = twin.simulation.build_engine(twin.load_scenario("default"))
    eng.threads = 4
    assert eng._chunks(1) is None  # the default pod: a few hundred columns
    assert eng._chunks(10**9) is not None  # cells enough for every thread


def test_chunks_cover_the_columns_in_order():
    parts = chunks(10, 3)
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 10)]
    assert [(p.start, p.stop) for p in chunks(2, 4)] == [(0, 1), (1, 2)]  # never an empty chunk


def test_thread_count_from_option_environment_or_cores(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert resolve_threads() == cores() >= 1
    monkeypatch.setenv(THREADS_ENV, " 3 ")
    assert resolve_threads() == 3
    assert resolve_threads(1) == 1  # the caller's value first
    for bad in ("0", "-2", "1.5", "all"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ThreadsError, match=THREADS_ENV) as err:
            resolve_threads()
        assert isinstance(err.value, InvalidInputError)


@pytest.mark.parametrize("args", [["--threads", "0"], ["--threads", "-1"], ["--threads", "two"]])
def test_cli_bad_threads_option_exits_2(tmp_path, args):
    out = tmp_path / "out"
    proc = subprocess.run([*TWIN, "run", "-q", "--out", str(out), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "--threads" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("command", [["run", "-q"], ["sweep", "no-such-spec.yaml"]])
def test_cli_bad_threads_variable_exits_2(tmp_path, command):
    env = os.environ | {THREADS_ENV: "0"}
    proc = subprocess.run([*TWIN, *command], capture_output=True, text=True, check=False, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert THREADS_ENV in proc.stderr.replace("\n", "")


def test_cli_run_with_threads_option(tmp_path):
    out = tmp_path / "out"
    cmd = [*TWIN, "run", "-q", "--out", str(out), "--threads", "2", "--set", "duration_s=600"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (out / "summary.json").exists()


def test_cli_threads_option_holds_for_the_command_only(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from twin.cli import app

    monkeypatch.delenv(THREADS_ENV, raising=False)
    seen = []
    monkeypatch.setattr(twin.simulation, "run_checks", lambda *a, **k: seen.append(os.environ[THREADS_ENV]) or [])
    res = CliRunner().invoke(app, ["run", "-q", "--threads", "1", "--set", "duration_s=600", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert seen == ["1"]  # the run saw it
    assert THREADS_ENV not in os.environ  # and the process is as it was
