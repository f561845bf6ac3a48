"""The governor's steps solve again only the columns whose clocks moved: the same run to the bit, for less work."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields

import numpy as np
import pytest
from engine_reference import assert_same_run, cases

import twin
from benchmarks.cases import TINY_MIX, mix_case
from twin.engine import clock_solves, governed
from twin.engine.clock_solves import ClockSolves
from twin.engine.server_constants import ServeResult


def _runs(sc: twin.Scenario, monkeypatch: pytest.MonkeyPatch) -> tuple[twin.Result, twin.Result, list[int]]:
    """``sc`` run solving every column at every governor step, then the moved columns only; the cells each solved."""
    solved: list[int] = []
    serve_block = clock_solves.serve_block

    def counted(c, prefill, *a, **kw):
        solved[-1] += int(np.prod(np.shape(prefill)))
        return serve_block(c, prefill, *a, **kw)

    monkeypatch.setattr(clock_solves, "serve_block", counted)
    monkeypatch.setattr(clock_solves, "WHOLE_ABOVE", -1.0)  # every call solves every column
    monkeypatch.setattr(governed, "GOVERN_COLUMNS_BELOW", -1.0)  # the governor steps every column
    solved.append(0)
    whole = twin.simulate(sc)
    monkeypatch.setattr(clock_solves, "WHOLE_ABOVE", 1.0)  # every call after the first: the moved columns only
    monkeypatch.setattr(governed, "GOVERN_COLUMNS_BELOW", 1.0)  # the governor steps the columns over their limits
    solved.append(0)
    moved = twin.simulate(sc)
    return whole, moved, solved


def test_heterogeneous_mix_solving_moved_columns_only_is_the_run_to_the_bit(tmp_path, monkeypatch):
    # Servers on their own trace offsets, chat and code pools and training jobs, under the
    # thermal limit and the default caps: the governor searches on some columns of many blocks.
    sc = twin.load_scenario("default", mix_case("mix-tiny", TINY_MIX).with_files(tmp_path))
    whole, moved, solved = _runs(sc, monkeypatch)
    assert_same_run(whole, moved)
    assert solved[1] < 0.8 * solved[0], solved


@pytest.mark.parametrize("name", ["faults-mixed", "site-cap-2mw"])
def test_site_limit_faults_and_floor_solving_moved_columns_only_is_the_run_to_the_bit(name, monkeypatch):
    # A site limit's bisection calls the governor again and again over one block; paused training,
    # a training power floor, battery and generator, random faults.
    whole, moved, solved = _runs(cases()[name], monkeypatch)
    assert_same_run(whole, moved)
    assert solved[1] < solved[0], solved


def test_the_same_clocks_again_solve_nothing_and_one_moved_column_solves_one():
    eng = twin.simulation.build_engine(twin.load_scenario("default"))
    c = eng.const
    n, k = c.inference.size, 4
    rng = np.random.default_rng(3)
    demand = tuple(rng.uniform(1.0, 2.0, (k, n)) * s for s in (2.0e4, 4.0e3, 1.0e3, 1.5e3))
    solves = ClockSolves(c, demand, (np.zeros(n), np.zeros(n)), np.ones(k))
    first = solves(np.ones((k, n)))
    assert solves.columns_solved == n
    assert solves(np.ones((k, n))) is first and solves.columns_solved == n
    clock = np.ones((k, n))
    clock[2, 5] = 0.7
    got = solves(clock)
    assert solves.columns_solved == n + 1
    alone = ClockSolves(c, demand, (np.zeros(n), np.zeros(n)), np.ones(k))(clock)
    for f in ("decode_tokens", "busy", "power_busy", "backlog_decode_tokens", "ttft_s"):
        assert np.array_equal(getattr(got, f), getattr(alone, f)), f
    assert not np.array_equal(got.busy[:, 5], first.busy[:, 5])  # the slower column is busier


def test_queue_slots_compacted_or_not_give_the_run_to_the_bit(monkeypatch):
    # The fluid queue follows each column's backlog tick by tick; slots whose queue ended are
    # computed on (elementwise, not kept) until few are left. Never dropping them, or dropping
    # them at every tick, is the same run (the Azure trace day queues in ~2 800 of its ticks' solves).
    from twin.engine import serve_numpy

    sc = cases()["azure-llm-trace"]
    monkeypatch.setattr(serve_numpy, "COMPACT_BELOW", 0.0)
    kept = twin.simulate(sc)
    monkeypatch.setattr(serve_numpy, "COMPACT_BELOW", 1.01)
    dropped = twin.simulate(sc)
    assert_same_run(kept, dropped)


def test_a_solve_of_training_columns_alone_serves_nothing_and_trains_at_its_clock(tmp_path):
    # A governor step that moves training GPUs only solves columns with no inference among them.
    import operator

    from twin.engine.serving import serve_block

    sc = twin.load_scenario("default", mix_case("mix-tiny", TINY_MIX).with_files(tmp_path))
    c = twin.simulation.build_engine(sc).const
    idx = np.flatnonzero(c.training)
    assert idx.size and not c.inference[idx].any()
    sub = c.columns(operator.itemgetter(idx))
    k, n = 3, idx.size
    zeros, dts = np.zeros((k, n)), np.full(k, 2.0)
    res = serve_block(sub, zeros, zeros, zeros + 1.0, zeros + 1.0, np.full((k, n), 0.5), np.zeros(n), np.zeros(n), dts)
    # Training tokens by hand: per-GPU rate x clock x tick x duty (all GPUs in jobs).
    want = sub.train_tokens_per_s_per_gpu * 0.5 * 2.0 * sub.train_duty
    assert np.allclose(res.training_tokens, want, rtol=1e-12) and np.all(want > 0)
    assert not res.decode_tokens.any() and not res.prefill_tokens.any() and not res.batch.any()


def test_a_splice_in_place_is_the_copy_and_spends_only_its_own_whole_arrays():
    rng = np.random.default_rng(5)
    shape = (4, 6)
    names = [f.name for f in dataclass_fields(ServeResult)]

    def result(shape: tuple[int, int]) -> ServeResult:
        got = {n: rng.random(shape) for n in names}
        got["tpot_s"] = got["step_time_s"]  # one array for two fields, as the solve gives them
        got["kv_transfer_w"] = np.broadcast_to(rng.random((shape[0], 1)), shape)  # read-only, not whole
        return ServeResult(**got)

    base = result(shape)
    kept = {n: np.array(getattr(base, n)) for n in names}
    parts = [(np.array([1, 4]), result((4, 2))), (np.array([2]), result((4, 1)))]
    sub = {n: [getattr(p, n) for _, p in parts] for n in names}
    want = {n: kept[n].copy() for n in names}
    for n in names:
        for (cols, _), s in zip(parts, sub[n], strict=True):
            want[n][:, cols] = s
    copied = clock_solves.spliced(base, *parts)
    for n in names:
        np.testing.assert_array_equal(getattr(copied, n), want[n])
        np.testing.assert_array_equal(getattr(base, n), kept[n])  # a copy leaves base as it was
    in_place = clock_solves.spliced(base, *parts, in_place=clock_solves.SPLICED_IN_PLACE)
    for n in names:
        np.testing.assert_array_equal(getattr(in_place, n), want[n])
    assert in_place.busy is base.busy and in_place.step_time_s is base.step_time_s
    assert in_place.backlog_prefill_tokens is base.backlog_prefill_tokens  # (govern is told where they moved)
    # The second field of a shared array and a broadcast are copies.
    for n in ("tpot_s", "kv_transfer_w"):
        assert getattr(in_place, n) is not getattr(base, n)
    np.testing.assert_array_equal(base.kv_transfer_w, kept["kv_transfer_w"])
