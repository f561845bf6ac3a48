"""The compiled serving solve (twin.engine.serve_kernel) is the numpy solve of twin.engine.serving, to the bit."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_reference import assert_same_run, cases
from hypothesis import given, settings
from hypothesis import strategies as st

import twin.engine.kernel as engine_kernel
from benchmarks.cases import TINY_MIX, mix_case
from twin import catalog, load_scenario, simulate
from twin.catalog.architecture import load_architecture
from twin.engine import clock_solves
from twin.engine.power_kernel import clocks_for_limits
from twin.engine.server_constants import ServerConstants, ServeResult, result_columns
from twin.engine.serving import serve_block, serve_governed_into
from twin.physics.accelerator import accelerator_power_w, clock_for_power_limit
from twin.physics.governor import CLOCK_EPS, CONVERGED_RTOL, FIT_RTOL
from twin.physics.step_costs import StepCosts
from twin.replica import Layout, expert_format, serving_device, step_costs

#: Dense models of every kind the compiled solve covers: full attention (on one GPU and tensor parallel),
#: windowed attention, a hybrid SSM; and the accelerators with a linear (H100) and a smooth (B200)
#: roofline.
RANKS = (
    ("Llama-3.1-8B", 1),
    ("Llama-3-70B", 8),
    ("google/gemma-3-27b-it", 2),
    ("nvidia/NVIDIA-Nemotron-Nano-12B-v2", 1),
)
ACCELERATORS = ("H100-SXM", "B200")


def _constants(acc_name: str) -> ServerConstants:
    acc = catalog.accelerator_spec(acc_name)
    archs = [load_architecture(m) for m, _ in RANKS]
    costs = StepCosts.stack(
        [step_costs(a, Layout(tensor_parallel=tp), acc) for a, (_, tp) in zip(archs, RANKS, strict=True)]
    )
    assert not costs.has_experts
    device = serving_device(acc, [expert_format(a) for a in archs])
    n = len(RANKS)
    const = ServerConstants.for_ranks(
        costs, device, np.array([256.0, 512.0, 128.0, 64.0][:n]), np.full(n, 8192.0), np.full(n, 40e9)
    )
    # The third column a disaggregated pool's prefill server: it sends each prompt's KV cache.
    sent = np.array([0.0, 0.0, 1.0, 0.0])
    return replace(
        const,
        kv_bytes_per_token=sent * 2.6e5,
        kv_s_per_token=sent * 2.6e5 / 50e9,
        kv_latency_s=sent * 2e-5,
        kv_j_per_byte=sent * 8 * 5e-12,
    )


CONSTANTS = {name: _constants(name) for name in ACCELERATORS}


def _block(seed: int, n_ticks: int, load: float, queued: bool) -> tuple[np.ndarray, ...]:
    """Demand around ``load`` times what a rank serves, some ticks idle, some prompt-only, clocks lowered."""
    rng = np.random.default_rng(seed)
    shape = (n_ticks, len(RANKS))
    decode = rng.gamma(2.0, load * 1500.0, shape) * (rng.random(shape) > 0.1)
    prefill = decode * rng.uniform(0.5, 20.0, shape)
    prefill = np.where(rng.random(shape) < 0.1, rng.uniform(1e3, 1e5, shape), prefill)  # prompt-only ticks
    prompt = rng.uniform(50.0, 4000.0, shape)
    context = prompt + rng.uniform(10.0, 2000.0, shape)
    clock = rng.choice([1.0, 0.8, 0.55], shape)
    qp = rng.uniform(0.0, 5e4, len(RANKS)) * queued
    qd = rng.uniform(0.0, 5e3, len(RANKS)) * queued * (rng.random(len(RANKS)) > 0.3)
    dts = np.where(rng.random(n_ticks) < 0.2, 0.25, 1.0)
    return prefill, decode, prompt, context, clock, qp, qd, dts


def _serve(compiled: bool, c: ServerConstants, block: tuple[np.ndarray, ...]) -> ServeResult:
    prefill, decode, prompt, context, clock, qp, qd, dts = block
    c = replace(c, compiled=compiled)
    return serve_block(c, prefill, decode, prompt, context, clock, qp, qd, dts, requests=prefill / prompt)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ticks=st.integers(1, 40),
    load=st.floats(0.01, 20.0),
    queued=st.booleans(),
    acc=st.sampled_from(ACCELERATORS),
)
def test_the_compiled_solve_serves_as_the_numpy_solve_to_the_bit(
    seed: int, n_ticks: int, load: float, queued: bool, acc: str
) -> None:
    block = _block(seed, n_ticks, load, queued)
    numpy_solve, compiled = _serve(False, CONSTANTS[acc], block), _serve(True, CONSTANTS[acc], block)
    for f in fields(ServeResult):
        a, b = getattr(numpy_solve, f.name), getattr(compiled, f.name)
        if CONSTANTS[acc].device.linear_roofline:  # the same operations in the same order
            assert np.array_equal(a, b, equal_nan=True), f.name
        else:  # numpy's SIMD power differs from the C library's in the last bit now and then
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-9, err_msg=f.name)


def test_the_compiled_solve_carries_queues_from_tick_to_tick() -> None:
    """Demand over capacity queues, the queue drains once demand falls, tokens are conserved."""
    c = CONSTANTS["H100-SXM"]
    block = list(_block(7, 30, 1.0, True))
    block[0][:10] *= 50.0  # ten ticks far over capacity, then the usual load
    block[1][:10] *= 50.0
    res = _serve(True, c, tuple(block))
    assert np.all(res.backlog_decode_tokens[9] > 0)  # a queue at the end of the busy ticks
    # Every token that arrived (with the queue at the start) is served or still queued.
    for served, backlog, demand, q0 in (
        (res.prefill_tokens, res.backlog_prefill_tokens, block[0], block[5]),
        (res.decode_tokens, res.backlog_decode_tokens, block[1], block[6]),
    ):
        np.testing.assert_allclose(served.sum(axis=0) + backlog[-1], demand.sum(axis=0) + q0, rtol=1e-12)


def test_a_dense_column_comes_out_the_same_beside_a_column_with_experts() -> None:
    """The solve is chosen per column (compiled without experts, numpy with), so a column's result never
    depends on the company it is solved in (the governor re-solves columns alone; threads split them)."""
    acc = catalog.accelerator_spec("H100-SXM")
    dense_arch, moe_arch = load_architecture("Llama-3.1-8B"), load_architecture("Qwen/Qwen3-30B-A3B-Instruct-2507")
    costs = [step_costs(a, Layout(tensor_parallel=1), acc) for a in (dense_arch, moe_arch, dense_arch)]
    fmts = [expert_format(a) for a in (dense_arch, moe_arch, dense_arch)]

    def constants(idx: list[int]) -> ServerConstants:
        n = len(idx)
        stacked = StepCosts.stack([costs[i] for i in idx])
        dev = serving_device(acc, [fmts[i] for i in idx])
        return ServerConstants.for_ranks(stacked, dev, np.full(n, 256.0), np.full(n, 8192.0), np.full(n, 40e9))

    prefill, decode, prompt, context, clock, qp, qd, dts = _block(11, 25, 3.0, True)

    def cols(idx: list[int]) -> tuple[np.ndarray, ...]:
        return (prefill[:, idx], decode[:, idx], prompt[:, idx], context[:, idx], clock[:, idx], qp[idx], qd[idx], dts)

    mixed = _serve(True, constants([0, 1, 2]), cols([0, 1, 2]))
    dense = _serve(True, constants([0, 2]), cols([0, 2]))
    numpy_solve = _serve(False, constants([0, 1, 2]), cols([0, 1, 2]))
    assert np.any(mixed.backlog_decode_tokens > 0)
    for f in fields(ServeResult):
        assert np.array_equal(getattr(mixed, f.name)[:, [0, 2]], getattr(dense, f.name)), f.name
        assert np.array_equal(getattr(mixed, f.name), getattr(numpy_solve, f.name)), f.name


@pytest.mark.parametrize(("name", "midway"), [("default", 1e5), ("faults-mixed", 4e3)])
def test_a_whole_run_is_the_same_compiled_or_not(name: str, midway: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole runs where no GPU reaches its power limit (queues, faults) give the same result compiled from the
    start, from about half way (``midway`` inference cells; the engine switches once a run has solved enough),
    or never."""
    sc = cases()[name]
    runs = []
    for threshold in (float("inf"), 0.0, midway):
        monkeypatch.setattr(engine_kernel, "COMPILED_FROM_CELLS", threshold)
        runs.append(simulate(sc))
    assert_same_run(runs[0], runs[1])
    assert_same_run(runs[0], runs[2])


def test_a_governed_run_compiled_agrees_with_the_governor_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the 700 W limit binds (the Azure trace's busy ticks), the compiled governor finds each tick's clock
    in one pass in time and the numpy governor by steps over the block: the runs agree to the steps' own
    precision (a step's cell behind a queue can end below its limit), and the compiled run is repeatable."""
    sc = cases()["azure-llm-trace"]
    runs = []
    for threshold in (float("inf"), 0.0, 2.3e5, 2.3e5):
        monkeypatch.setattr(engine_kernel, "COMPILED_FROM_CELLS", threshold)
        runs.append(simulate(sc))
    numpy_steps, compiled = runs[0], runs[1]
    for key in ("facility_energy_j", "it_energy_j", "tokens_per_kwh", "tokens_out"):
        assert compiled.kpis[key] == pytest.approx(numpy_steps.kpis[key], rel=1e-6), key
    assert compiled.kpis["facility_energy_j"] != numpy_steps.kpis["facility_energy_j"]  # the governor did bind
    assert_same_run(runs[2], runs[3])
    assert abs(compiled.kpis["ledger_residual_j"]) <= 1e-9 * compiled.kpis["facility_energy_j"]


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ticks=st.integers(1, 40),
    load=st.floats(0.05, 20.0),
    limit_w=st.floats(150.0, 700.0),
)
def test_the_compiled_governor_puts_each_cell_on_its_limit(
    seed: int, n_ticks: int, load: float, limit_w: float
) -> None:
    """Each cell at its top clock where that fits, else on its limit from below (to CONVERGED_RTOL, or within
    CLOCK_EPS of a clock that does not fit), or at the floor; the result is the solve at those clocks; and
    started from the solve at the top clocks (copying the cells it keeps) it is the same."""
    prefill, decode, prompt, context, _, qp, qd, dts = _block(seed, n_ticks, load, True)
    c = replace(CONSTANTS["H100-SXM"], compiled=True)
    board = catalog.accelerator_spec("H100-SXM").power_params
    rng = np.random.default_rng(seed)
    top = np.where(rng.random(prefill.shape) < 0.3, rng.uniform(0.9, 1.0, prefill.shape), 1.0)
    limit = np.full(prefill.shape, limit_w)
    requests = prefill / prompt
    at_top = serve_block(c, prefill, decode, prompt, context, top, qp, qd, dts, requests=requests)

    def governed(cols: np.ndarray, prev_clock: np.ndarray | None) -> tuple[np.ndarray, dict[str, np.ndarray], Any]:
        """The columns ``cols`` governed in a copy of the top solve's arrays (``prev_clock``: kept where they fit)."""
        whole = clock_solves.wholes(at_top)
        f, moved = serve_governed_into(
            c,
            cols,
            (prefill, decode, prompt, context),
            (qp, qd),
            dts,
            limit[:, cols],
            top[:, cols],
            board,
            whole,
            requests=requests,
            prev_clock=prev_clock,
        )
        return f, whole, moved

    every = np.arange(prefill.shape[1])
    f, got, _ = governed(every, None)  # every cell solved afresh
    res = ServeResult(**got)
    p = accelerator_power_w(res.power_busy, res.mem_activity, res.sm_activity, f, params=board)
    f_min = board.min_clock_fraction
    assert np.all((f >= f_min) & (f <= top))
    fits = p <= limit * (1 + FIT_RTOL)
    assert np.all(fits | (f == f_min))  # above the limit only at the floor
    searched = (f < top) & (f > f_min)
    on_limit = p >= limit * (1 - CONVERGED_RTOL)
    for k, s in zip(*np.nonzero(searched & ~on_limit), strict=True):  # else a jump: the clock just above does not fit
        higher = f.copy()
        higher[k, s] = min(f[k, s] + 2 * CLOCK_EPS, top[k, s])
        r = serve_block(c, prefill, decode, prompt, context, higher, qp, qd, dts, requests=requests)
        assert accelerator_power_w(r.power_busy, r.mem_activity, r.sm_activity, higher, params=board)[k, s] > limit_w
    again = serve_block(c, prefill, decode, prompt, context, f, qp, qd, dts, requests=requests)
    for fld in fields(ServeResult):
        assert np.array_equal(getattr(res, fld.name), getattr(again, fld.name)), fld.name
    # Started from the solve at the top clocks (the engine's), the cells it keeps are left: the same.
    f_seeded, seeded, _ = governed(every, top)
    assert np.array_equal(f_seeded, f)
    for fld in fields(ServeResult):
        assert np.array_equal(seeded[fld.name], getattr(res, fld.name)), fld.name
    # Some columns governed in the top solve's own arrays (the engine's way): those columns' cells are the
    # governed solve's, the others' are left as they were.
    cols = np.sort(rng.permutation(prefill.shape[1])[: max(1, prefill.shape[1] // 2)])
    others = np.setdiff1d(every, cols)
    f_sub, whole, moved = governed(cols, top[:, cols])
    assert np.array_equal(f_sub, f[:, cols])
    for fld in fields(ServeResult):
        assert np.array_equal(whole[fld.name][:, cols], getattr(res, fld.name)[:, cols]), fld.name
        before = np.broadcast_to(getattr(at_top, fld.name), prefill.shape)
        assert np.array_equal(whole[fld.name][:, others], before[:, others]), fld.name
    # The ticks where a governed cell left other backlogs than the top solve's, as govern needs them.
    tops = [
        np.broadcast_to(getattr(at_top, n), prefill.shape) for n in ("backlog_prefill_tokens", "backlog_decode_tokens")
    ]
    want = np.any(whole["backlog_prefill_tokens"] != tops[0], axis=1) | np.any(
        whole["backlog_decode_tokens"] != tops[1], axis=1
    )
    assert np.array_equal(moved, want)


def test_a_run_on_a_smooth_roofline_agrees_compiled_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """On B200 (roofline exponent 1.23) the two solves differ in the last bit of a power now and then;
    a whole run agrees to the engine reference's tolerance."""
    sc = load_scenario("default", {"fleet.accelerator": "B200", "duration_s": 6 * 3600.0})
    runs = []
    for threshold in (float("inf"), 0.0):
        monkeypatch.setattr(engine_kernel, "COMPILED_FROM_CELLS", threshold)
        runs.append(simulate(sc))
    a, b = runs
    for col in a.timeseries.columns:
        x, y = a.timeseries[col].to_numpy(), b.timeseries[col].to_numpy()
        if x.dtype.kind == "f":
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-9, err_msg=col)
    assert a.kpis["tokens_per_kwh"] == pytest.approx(b.kpis["tokens_per_kwh"], rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ticks=st.integers(1, 40), load=st.floats(0.01, 20.0), moved=st.floats(0, 1))
def test_a_solve_from_a_previous_one_is_the_solve_afresh(seed: int, n_ticks: int, load: float, moved: float) -> None:
    """The governor's next step copies the cells of its last whose clock and starting backlog did not change."""
    prefill, decode, prompt, context, clock, qp, qd, dts = _block(seed, n_ticks, load, True)
    c = replace(CONSTANTS["H100-SXM"], compiled=True)
    rng = np.random.default_rng(seed)
    clock2 = np.where(rng.random(clock.shape) < moved, clock * rng.uniform(0.7, 1.0, clock.shape), clock)

    def serve(clk: np.ndarray, previous: tuple[np.ndarray, ServeResult] | None = None) -> ServeResult:
        return serve_block(
            c, prefill, decode, prompt, context, clk, qp, qd, dts, requests=prefill / prompt, previous=previous
        )

    first = serve(clock)
    again, afresh = serve(clock2, (clock, first)), serve(clock2)
    for f in fields(ServeResult):
        assert np.array_equal(getattr(again, f.name), getattr(afresh, f.name)), f.name


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ticks=st.integers(1, 30), acc=st.sampled_from(("H100-SXM", "B200", "MI300X")))
def test_the_compiled_clock_for_a_power_limit_is_numpys(seed: int, n_ticks: int, acc: str) -> None:
    """Cell by cell the same Newton iteration as clock_for_power_limit (to the last bit of a power), with ticks
    that repeat their tick before's inputs (training columns) taking its clock; cells that fit at the top
    clock, cells stuck at the floor and cells on flat stretches (no busy share) among them."""
    rng = np.random.default_rng(seed)
    board = catalog.accelerator_spec(acc).power_params
    shape = (n_ticks, 6)
    busy = np.where(rng.random(shape) < 0.2, 0.0, rng.uniform(0.0, 1.0, shape))
    mem, sm = rng.uniform(0.0, 1.0, shape), rng.uniform(0.0, 1.0, shape)
    top = np.where(rng.random(shape) < 0.5, 1.0, rng.uniform(0.3, 1.0, shape))
    limit = rng.uniform(0.5 * board.idle_power_w, 1.1 * board.full_power_w, shape)
    repeat = rng.random(shape) < 0.5
    repeat[0] = False
    for x in (busy, mem, sm, top, limit):
        for t in range(1, n_ticks):
            x[t] = np.where(repeat[t], x[t - 1], x[t])
    got = clocks_for_limits(limit, busy, mem, sm, top, board)
    want = clock_for_power_limit(limit, busy, mem, sm, params=board, max_clock=top)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0.0)
    p = accelerator_power_w(busy, mem, sm, got, params=board)
    slack = 2e-12 * (board.full_power_w - board.idle_power_w)  # the solve's rounding slack, with a margin
    assert np.all((p <= limit + slack) | (got == board.min_clock_fraction))


def test_training_columns_governed_in_closed_form_are_the_governor_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compiled run governs the columns that serve nothing (training under the thermal limit and the caps:
    their activity does not depend on the clock) by the clock that meets the limit at that activity, as the
    governor's first step finds it (exact there): the same run as the steps, to float tolerance."""
    sc = load_scenario("default", mix_case("mix-tiny", TINY_MIX).with_files(tmp_path))
    monkeypatch.setattr(engine_kernel, "COMPILED_FROM_CELLS", 0.0)
    held = clock_solves._governed_held
    taken: list[int] = []

    def counted(solves: Any, cols: np.ndarray, *a: Any) -> Any:
        taken.append(cols.size)
        return held(solves, cols, *a)

    monkeypatch.setattr(clock_solves, "_governed_held", counted)
    closed_form = simulate(sc)
    assert sum(taken) > 0

    def steps(solves: Any, cols: np.ndarray, lim: Any, hi: Any, at_top: Any, p_top_w: Any, params: Any, pause: Any):
        # The governor's steps in its place, solving the columns again at each clock; the closed form
        # takes every field but the training tokens from the top clock's result: they are those.
        f, p, res = clock_solves._governed_steps(solves, cols, lim, hi, at_top, params, pause)
        top = result_columns(at_top, cols)
        for field in fields(res):
            if field.name != "training_tokens":
                np.testing.assert_array_equal(getattr(res, field.name), getattr(top, field.name), err_msg=field.name)
        return f, p, res.training_tokens

    monkeypatch.setattr(clock_solves, "_governed_held", steps)
    stepped = simulate(sc)
    a, b = closed_form.timeseries, stepped.timeseries
    for col in a.columns:
        if a[col].dtype.kind == "f":
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-12, atol=1e-9, err_msg=col)


def test_the_closed_form_of_paused_training_columns_is_the_governor_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where some training columns are paused (checkpoint, restart), the closed form takes the top clock's
    result with the training tokens at its clocks, paused ones zero: what the governor's steps, solving those
    columns again, give (blocks of a compiled mix-tiny run, every other column paused)."""
    sc = load_scenario("default", mix_case("mix-tiny", TINY_MIX).with_files(tmp_path))
    monkeypatch.setattr(engine_kernel, "COMPILED_FROM_CELLS", 0.0)
    held = clock_solves._governed_held
    calls: list[tuple[Any, ...]] = []

    def kept(*args: Any) -> Any:
        calls.append(args)
        return held(*args)

    monkeypatch.setattr(clock_solves, "_governed_held", kept)
    simulate(sc)
    assert calls
    for solves, cols, lim, hi, at_top, _, params, _ in calls[:4]:
        paused = np.arange(solves.shape[1]) % 2 == 0

        def pause(res: ServeResult, idx: np.ndarray, paused: np.ndarray = paused) -> ServeResult:
            p = paused[idx]
            names = ("busy", "power_busy", "mem_activity", "sm_activity", "training_tokens")
            return replace(res, **{n: np.where(p, 0.0, getattr(res, n)) for n in names})

        top = pause(at_top, np.arange(solves.shape[1]))
        p_top = accelerator_power_w(top.power_busy, top.mem_activity, top.sm_activity, solves.last[0], params=params)
        f, p, tokens = held(solves, cols, lim, hi, top, p_top, params, pause)
        f_steps, p_steps, res = clock_solves._governed_steps(solves, cols, lim, hi, top, params, pause)
        np.testing.assert_allclose(f, f_steps, rtol=1e-12)
        np.testing.assert_allclose(p, p_steps, rtol=1e-12)
        np.testing.assert_allclose(tokens, res.training_tokens, rtol=1e-12, atol=0.0)
        assert np.all(tokens[:, paused[cols]] == 0.0) and np.any(tokens[:, ~paused[cols]] > 0.0)
        at_cols = result_columns(top, cols)
        for field in fields(res):
            if field.name != "training_tokens":
                np.testing.assert_array_equal(getattr(res, field.name), getattr(at_cols, field.name), field.name)


def test_the_numpy_and_compiled_solves_give_the_same_outputs() -> None:
    """The kernel's output names (its own copy: it imports nothing of the engine) are the numpy solve's, whose
    dict the serving solve pads with zeros for columns that serve nothing."""
    from twin.engine import serve_kernel, serve_numpy

    assert serve_kernel.OUTPUTS == serve_numpy.OUTPUTS
    prefill, decode, prompt, context, clock, qp, qd, dts = _block(1, 3, 1.0, True)
    got = serve_numpy.serve_numpy(
        CONSTANTS["H100-SXM"], prefill, decode, prompt, context, clock, qp, qd, dts[:, None], prefill / prompt
    )
    assert tuple(got) == serve_numpy.OUTPUTS


@settings(max_examples=200, deadline=None)
@given(x=st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, 0.0, 1.0, -1e-300, 1.0 + 2e-16]))
def test_the_kernels_clip_of_an_activity_is_numpys(x: float) -> None:
    """The compiled governor clips the activities it writes as ``_result``'s ``np.clip`` does (signed zeros, NaN)."""
    from twin.engine.governor_kernel import _clip01

    want = np.clip(np.array([x]), 0.0, 1.0)[0]
    got = _clip01(x)
    assert (np.isnan(got) and np.isnan(want)) or (got == want and np.signbit(got) == np.signbit(want))
