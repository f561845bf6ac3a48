"""The request-level rank: hand-checked latencies, preemption, token conservation, idle gaps, statistics."""

from __future__ import annotations

import numpy as np
import pytest

from twin.physics.serving import step
from twin.physics.step_costs import example_costs, example_device
from twin.serving_requests import (
    SchedulerConfig,
    StreamingQuantiles,
    percentile_ci,
    physics_step_time,
    simulate_rank,
    step_clock,
    summarize,
)
from twin.serving_requests.scheduler import SchedulerInputError

STEP_S = 0.01


def constant(*_args: float) -> float:
    """A step of 10 ms whatever it holds."""
    return STEP_S


def test_hand_checked_latencies() -> None:
    """A (t=0, 50 prompt, 3 out), B (t=5 ms, 30, 2), C (t=100 s, 10, 1); 10 ms steps, budget 100.

    Step 1 [0, 10 ms]: A prefills 50 -> A's first token at 10 ms. Step 2 [10, 20]: A decodes, B
    (arrived at 5 ms) prefills 30 -> A's 2nd token and B's first at 20 ms. Step 3 [20, 30]: both
    decode -> A's 3rd (done) and B's 2nd (done) at 30 ms. C runs alone at 100 s: one step.
    """
    r = simulate_rank(
        np.array([0.0, 0.005, 100.0]), np.array([50, 30, 10]), np.array([3, 2, 1]), SchedulerConfig(2, 100), constant
    )
    np.testing.assert_allclose(r.ttft_s, [0.010, 0.015, 0.010])
    np.testing.assert_allclose(r.e2e_s, [0.030, 0.025, 0.010])
    np.testing.assert_allclose(r.tpot_s, [0.010, 0.010, np.nan])
    np.testing.assert_allclose(r.queue_s, [0.0, 0.005, 0.0])
    np.testing.assert_allclose(np.sort(r.itl.values()), [0.01, 0.01, 0.01])  # A: 2, B: 1
    assert r.steps == 4  # the 100 s idle gap costs no step
    assert r.busy_s == pytest.approx(0.04)
    assert r.end_s == pytest.approx(100.01)


def test_chunked_prefill_and_seat_limit() -> None:
    """Budget 64, one seat: a 100-token prompt takes two steps (64 + 36); the second request waits.

    A: steps 1-2 prefill (first token at 20 ms), step 3 decodes its 2nd token (done at 30 ms).
    B (t=0, 10 prompt, 1 out) gets the seat at step 4: first (and last) token at 40 ms.
    """
    r = simulate_rank(np.zeros(2), np.array([100, 10]), np.array([2, 1]), SchedulerConfig(1, 64), constant)
    np.testing.assert_allclose(r.ttft_s, [0.02, 0.04])
    np.testing.assert_allclose(r.queue_s, [0.0, 0.03])
    assert r.prefill_tokens == 110 and r.decode_tokens == 1


def test_step_gets_the_batch_and_clock() -> None:
    """The step function sees decode count, prefill tokens, mean context, mean prefill position, clock."""
    seen: list[tuple[float, ...]] = []

    def record(*args: float) -> float:
        seen.append(args)
        return STEP_S

    simulate_rank(
        np.zeros(2),
        np.array([40, 20]),
        np.array([2, 2]),
        SchedulerConfig(4, 100),
        record,
        step_clock(np.array([0.0, 0.01]), np.array([1.0, 0.5])),
    )
    # step 1: both prompts (60 tokens, mean position (40*20 + 20*10)/60); step 2: two decodes at
    # contexts 41 and 21 under the lower clock
    assert seen[0] == pytest.approx((0.0, 60.0, 0.0, 1000.0 / 60.0, 1.0))
    assert seen[1] == pytest.approx((2.0, 0.0, 31.0, 0.0, 0.5))
    assert len(seen) == 2


def test_kv_full_preempts_the_latest_and_recomputes() -> None:
    """Cache of 4 blocks (64 tokens). A (32 prompt) and B (31 prompt) fill it; B is preempted.

    Step 1 admits A (2 blocks) and B (2 blocks): both first tokens at 10 ms, caches 32 and 31.
    Step 2: A's 33rd token needs a 3rd block, none free: B (admitted last) is preempted, its 31
    tokens lost; A decodes. A runs to its end (5 tokens, done at 50 ms), then B re-prefills its
    prompt plus its one generated token (32) and decodes the rest.
    """
    r = simulate_rank(
        np.zeros(2), np.array([32, 31]), np.array([5, 3]), SchedulerConfig(8, 256, kv_capacity_tokens=64), constant
    )
    np.testing.assert_array_equal(r.preemptions, [0, 1])
    np.testing.assert_array_equal(r.lost_tokens, [0, 31])
    np.testing.assert_allclose(r.ttft_s, [0.01, 0.01])
    np.testing.assert_allclose(r.finish_s, [0.05, 0.07])  # B: re-prefill step 6 (2nd token), step 7 (3rd)
    # conservation: every output once; every token computed once plus the lost ones
    np.testing.assert_array_equal(r.computed_tokens, r.prompt_tokens + r.output_tokens - 1 + r.lost_tokens)
    assert r.prefill_tokens == 32 + 31 + 32  # the prompts, then B's recompute of prompt + 1 output


def test_request_too_long_for_the_cache_is_refused() -> None:
    r = simulate_rank(
        np.zeros(2), np.array([100, 10]), np.array([2, 2]), SchedulerConfig(8, 256, kv_capacity_tokens=64), constant
    )
    np.testing.assert_array_equal(r.refused, [True, False])
    assert np.isnan(r.ttft_s[0]) and np.isfinite(r.ttft_s[1])


def test_token_conservation_under_pressure() -> None:
    """Many requests, a tight cache: outputs produced once each, computed = useful + lost, deterministic."""
    rng = np.random.default_rng(3)
    n = 300
    a = np.sort(rng.uniform(0, 5, n))
    p = rng.integers(1, 400, n)
    o = rng.integers(1, 200, n)
    cfg = SchedulerConfig(32, 512, kv_capacity_tokens=4096)
    st = physics_step_time(example_costs(), example_device())
    r = simulate_rank(a, p, o, cfg, st)
    assert not r.refused.any() and r.preemptions.sum() > 0
    assert np.all(np.isfinite(r.finish_s))
    assert r.itl.count == int((o - 1).sum())
    np.testing.assert_array_equal(r.computed_tokens, p + o - 1 + r.lost_tokens)
    assert r.prefill_tokens + r.decode_tokens == int(r.computed_tokens.sum())
    again = simulate_rank(a, p, o, cfg, st)
    np.testing.assert_array_equal(again.finish_s, r.finish_s)
    assert np.all(r.first_token_s >= r.scheduled_s) and np.all(r.scheduled_s >= r.arrival_s)


def test_physics_step_time_is_the_twin_step() -> None:
    st = physics_step_time(example_costs(), example_device())
    assert st(64, 0, 1000, 0, 1.0) == pytest.approx(
        float(step(example_costs(), example_device(), 64, 0, 1000, 0).time_s)
    )


def test_bad_input_is_refused() -> None:
    with pytest.raises(SchedulerInputError):
        SchedulerConfig(0, 10)
    with pytest.raises(SchedulerInputError):
        simulate_rank(np.array([1.0, 0.0]), np.array([1, 1]), np.array([1, 1]), SchedulerConfig(1, 10), constant)
    with pytest.raises(SchedulerInputError):
        simulate_rank(np.zeros(1), np.array([0]), np.array([1]), SchedulerConfig(1, 10), constant)


def test_streaming_quantiles_fold_within_a_bin() -> None:
    rng = np.random.default_rng(0)
    v = rng.lognormal(-4, 0.5, 50_000)
    exact = StreamingQuantiles()
    exact.add(v)
    folded = StreamingQuantiles(cap=1000)
    for chunk in np.array_split(v, 100):
        folded.add(chunk)
    assert exact.exact and not folded.exact
    for q in (0.5, 0.9, 0.99):
        assert exact.quantile(q) == pytest.approx(float(np.quantile(v, q)))
        assert folded.quantile(q) == pytest.approx(float(np.quantile(v, q)), rel=2.5e-3)
    edges, counts = folded.histogram()
    assert counts.sum() == v.size and edges.size == counts.size + 1


def test_percentile_ci_covers() -> None:
    """The order-statistic interval of the p99 of 2000 exponential draws covers the true p99 about 95 % of the time."""
    rng = np.random.default_rng(1)
    truth = -np.log(0.01)
    hits = [lo <= truth <= hi for _, lo, hi in (percentile_ci(rng.exponential(size=2000), 99.0) for _ in range(200))]
    assert 0.9 <= np.mean(hits) <= 1.0


def test_slo_attainment_and_goodput() -> None:
    r = simulate_rank(
        np.array([0.0, 0.005, 100.0]), np.array([50, 30, 10]), np.array([3, 2, 1]), SchedulerConfig(2, 100), constant
    )
    s = summarize(r.ttft_s, r.tpot_s, r.e2e_s, r.queue_s, r.itl, 200.0, slo_ttft_s=0.012, slo_tpot_s=0.02)
    assert s.attainment == pytest.approx(2 / 3)  # B's TTFT of 15 ms misses
    assert s.goodput_per_s == pytest.approx(2 / 200.0)
    assert s.percentiles["ttft"][50.0][0] == pytest.approx(0.010)


def test_azure_trace_through_one_rank() -> None:
    """The first 10 minutes of the Azure 2023 code trace on one 8B rank: every request served, TTFT >= one step."""
    from twin.serving_requests import simulate_frame
    from twin.workload.requests import AZURE_LLM_2023, read_azure_llm

    data, _ = read_azure_llm(AZURE_LLM_2023["code"])
    data = data[data["arrival_s"] < 600]
    st = physics_step_time(example_costs(), example_device())
    r = simulate_frame(data, SchedulerConfig(256, 8192, kv_capacity_tokens=400_000), st)
    assert np.all(np.isfinite(r.finish_s)) and r.itl.count == int((data["output_tokens"] - 1).sum())
    assert np.all(r.ttft_s >= st(0, 1, 0, 0, 1.0))


def test_bursty_arrivals_raise_p99_ttft() -> None:
    """Gamma arrivals with CV 4 against Poisson at the same mean rate: a longer TTFT tail."""
    from twin.serving_requests import simulate_frame
    from twin.workload.synthetic import LognormalTokens, gamma_requests, poisson_requests

    tokens = LognormalTokens(1000.0, 200.0, 0.5, 0.5)
    st = physics_step_time(example_costs(), example_device())
    cfg = SchedulerConfig(64, 4096, kv_capacity_tokens=200_000)
    p99 = {}
    for name, frame in (
        ("poisson", poisson_requests(10.0, 120.0, np.random.default_rng(5), tokens)),
        ("gamma", gamma_requests(10.0, 4.0, 120.0, np.random.default_rng(5), tokens)),
    ):
        r = simulate_frame(frame, cfg, st)
        p99[name] = float(np.nanpercentile(r.ttft_s, 99))
    assert p99["gamma"] > 1.5 * p99["poisson"]


def test_idle_gaps_cost_no_steps() -> None:
    """Moving the second half of the requests a million seconds later changes no step count or latency."""
    rng = np.random.default_rng(7)
    a = np.sort(rng.uniform(0, 2, 40))
    p, o = rng.integers(1, 300, 40), rng.integers(1, 50, 40)
    cfg = SchedulerConfig(8, 256)
    first = simulate_rank(a[:20], p[:20], o[:20], cfg, constant)
    second = simulate_rank(a[20:], p[20:], o[20:], cfg, constant)
    late = a.copy()
    late[20:] += 1e6
    both = simulate_rank(late, p, o, cfg, constant)
    assert both.steps == first.steps + second.steps
    np.testing.assert_allclose(both.ttft_s, np.concatenate([first.ttft_s, second.ttft_s]), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["burstgpt_sample.csv", "mooncake_sample.jsonl"])
def test_burstgpt_and_mooncake_samples_through_one_rank(name: str) -> None:
    """The shipped BurstGPT and Mooncake samples, read by twin.workload, served request by request."""
    from pathlib import Path

    from twin.serving_requests import simulate_frame
    from twin.workload.readers import read_trace

    data, _ = read_trace(Path(__file__).parent / "data" / name)
    data = data.assign(
        output_tokens=data["output_tokens"].clip(lower=1), prompt_tokens=data["prompt_tokens"].clip(lower=1)
    )
    r = simulate_frame(data, SchedulerConfig(64, 8192), constant)
    assert np.all(np.isfinite(r.finish_s)) and r.itl.count == int((data["output_tokens"] - 1).sum())
