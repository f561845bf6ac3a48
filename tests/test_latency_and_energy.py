"""Latency estimates of the fluid queue, and decode energy per token against batch size."""

import numpy as np
import pytest

from twin import simulate
from twin.catalog import accelerator_spec, model_spec
from twin.engine.pool_stats import BINS_PER_DECADE, WeightedHistogram
from twin.physics.accelerator import accelerator_power_w
from twin.physics.serving import step
from twin.physics.serving_rates import batch_for_rates
from twin.replica import Layout, serving_device, step_costs

H100 = accelerator_spec("H100-SXM")
L8 = model_spec("Llama-3.1-8B")
L70 = model_spec("Llama-3-70B")


def weighted_quantile(values, weights, q):
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    return v[np.searchsorted(cum, q * cum[-1])]


def test_histogram_quantiles_within_one_bin():
    rng = np.random.default_rng(5)
    values = rng.lognormal(-3.0, 1.5, 20_000)
    weights = rng.uniform(0.0, 3.0, values.size)
    h = WeightedHistogram()
    for part in np.array_split(np.arange(values.size), 7):  # added block by block, as the engine does
        h.add(values[part], weights[part])
    bin_width = 10 ** (1 / BINS_PER_DECADE) - 1  # 1.16 %
    for q in (0.5, 0.9, 0.99):
        assert h.quantile(q) == pytest.approx(weighted_quantile(values, weights, q), rel=bin_width)
    assert h.mean() == pytest.approx(np.average(values, weights=weights), rel=1e-12)
    one = WeightedHistogram()
    one.add(np.full(10, 0.0421), np.ones(10))
    assert one.quantile(0.99) == pytest.approx(0.0421, rel=1e-15)  # a single value comes back exactly
    assert np.isnan(WeightedHistogram().quantile(0.5))


def test_ttft_and_tpot_by_hand(one_server):
    # One server, 8 ranks of Llama-3.1-8B (TP 1), 20 requests/s of 500 prompt + 200 output
    # tokens: 2.5 requests/s per rank, no queue: 500 output and 1 250 prompt tokens/s. The batch
    # is the one whose steps make 500 tokens/s with 2.5 prompt tokens per output token in them;
    # TTFT is one step carrying a whole prompt more, TPOT the step.
    r = simulate(one_server)
    costs, dev = step_costs(L8, Layout(), H100), serving_device(H100)
    ctx, pos = 500 + 200 / 2, 500 / 2
    batch = float(batch_for_rates(costs, dev, 500.0, 1250.0, ctx, pos, 256))
    t_step = float(step(costs, dev, batch, 2.5 * batch, ctx, pos).time_s)
    assert batch / t_step == pytest.approx(500.0, rel=1e-6)
    ttft = float(step(costs, dev, batch, 2.5 * batch + 500, ctx, pos).time_s)
    assert r.kpis["chat_ttft_p50_s"] == pytest.approx(ttft, rel=1e-6)
    assert r.kpis["chat_ttft_p99_s"] == pytest.approx(ttft, rel=1e-6)
    assert r.kpis["chat_tpot_p50_s"] == pytest.approx(t_step, rel=1e-6)
    assert r.timeseries["chat_tpot_p99_s"].to_numpy() == pytest.approx(t_step, rel=1e-6)
    assert r.timeseries["chat_batch_mean"].iloc[-1] == pytest.approx(batch, rel=1e-6)


def decode_j_per_token(batch, model, n_gpu=1, context=2048):
    """Energy per generated token of one replica decoding at ``batch`` (the engine's activity model)."""
    c, dev = step_costs(model, Layout(tensor_parallel=n_gpu), H100), serving_device(H100)
    s = step(c, dev, batch, 0.0, context, 0.0)
    p = accelerator_power_w(s.busy, s.mem_activity(dev), s.sm_activity(dev), 1.0, params=H100.power_params)
    return n_gpu * np.minimum(p, H100.max_power_w) * s.time_s / batch


@pytest.mark.parametrize(("model", "n_gpu"), [(L8, 1), (L70, 8)])
def test_decode_energy_per_token_falls_with_batch(model, n_gpu):
    batches = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float)
    j = decode_j_per_token(batches, model, n_gpu)
    assert np.all(np.diff(j) < 0)
    # Batch 1 is memory-bound: a token costs one step (weights + KV over the achieved bandwidth,
    # the host's share, the all-reduces), at a board power between idle and the power limit.
    t1 = float(step(step_costs(model, Layout(tensor_parallel=n_gpu), H100), serving_device(H100), 1, 0, 2048, 0).time_s)
    assert n_gpu * H100.idle_power_w * t1 < j[0] < n_gpu * H100.max_power_w * t1
    assert j[-1] < j[0] / 20  # the weight read is shared by 256 sequences


def test_engine_energy_per_token_falls_as_load_fills_batches(one_server):
    rates = (2.0, 20.0, 80.0)
    runs = [simulate(one_server.with_updates({"workloads.0.arrivals.requests_per_s": q})) for q in rates]
    j = [r.kpis["j_per_token_it"] for r in runs]
    batch = [r.timeseries["chat_batch_mean"].mean() for r in runs]
    assert j[0] > j[1] > j[2]
    assert batch[0] < batch[1] < batch[2]
