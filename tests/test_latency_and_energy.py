"""Latency estimates of the fluid queue, and decode energy per token against batch size."""

import numpy as np
import pytest

from twin import simulate
from twin.catalog import accelerator_spec, model_spec
from twin.engine.pool_stats import BINS_PER_DECADE, WeightedHistogram
from twin.physics.accelerator import accelerator_power_w
from twin.physics.serving import decode_batch_for_rate, decode_step_time_s, prefill_time_per_token_s

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
    # One server, 8 replicas of Llama-3.1-8B (TP 1), 20 requests/s of 500 prompt + 200 output
    # tokens: 2.5 requests/s per replica, no queue. The replica runs at eta_f x 989.4 TFLOP/s
    # and eta_bw x 3.35 TB/s (catalog: 0.5 and 0.8), 3 ms overhead per step.
    r = simulate(one_server)
    flop_s = H100.achieved_flop_fraction * H100.bf16_flop_s
    bw = H100.achieved_bandwidth_fraction * H100.hbm_bandwidth_b_s
    c_p = float(prefill_time_per_token_s(2 * L8.active_params, 500, L8.n_layers, L8.d_model, flop_s))
    ttft = 500 * c_p  # no wait, then the prompt's prefill
    phi_p = 2.5 * 500 * c_p  # share of each second spent in prefill
    lam = 2.5 * 200 / (1 - phi_p)  # decode tokens/s while decoding
    args = (L8.params * 2, L8.kv_bytes_per_token(), 500 + 200 / 2, 2 * L8.active_params, bw, flop_s, 1.0, 0.003)
    batch = float(decode_batch_for_rate(lam, *args))
    t_step = float(decode_step_time_s(batch, *args))
    tpot = t_step / (1 - phi_p)
    assert r.kpis["chat_ttft_p50_s"] == pytest.approx(ttft, rel=1e-9)
    assert r.kpis["chat_ttft_p99_s"] == pytest.approx(ttft, rel=1e-9)
    assert r.kpis["chat_tpot_p50_s"] == pytest.approx(tpot, rel=1e-9)
    assert r.timeseries["chat_tpot_p99_s"].to_numpy() == pytest.approx(tpot, rel=1e-9)
    assert r.timeseries["chat_batch_mean"].iloc[-1] == pytest.approx(batch, rel=1e-9)


def decode_j_per_token(batch, model, n_gpu=1, context=2048):
    """Energy per generated token of one replica decoding at ``batch`` (the engine's activity model)."""
    flop_s = n_gpu * H100.achieved_flop_fraction * H100.bf16_flop_s
    bw = n_gpu * H100.achieved_bandwidth_fraction * H100.hbm_bandwidth_b_s
    w, kv, flops = model.params * 2, model.kv_bytes_per_token(), 2 * model.active_params
    t = decode_step_time_s(batch, w, kv, context, flops, bw, flop_s, 1.0, H100.step_overhead_s)
    busy = 1 - H100.step_overhead_s / t
    mem = (w + batch * context * kv) / (t * bw)
    sm = batch * flops / (t * flop_s)
    p = accelerator_power_w(H100.idle_power_w, H100.max_power_w, busy, mem, sm, 1.0, 0.15, 0.30)
    return n_gpu * p * t / batch


@pytest.mark.parametrize(("model", "n_gpu"), [(L8, 1), (L70, 8)])
def test_decode_energy_per_token_falls_with_batch(model, n_gpu):
    batches = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float)
    j = decode_j_per_token(batches, model, n_gpu)
    assert np.all(np.diff(j) < 0)
    # Batch 1 is memory-bound: a token costs one step, weights + KV over the achieved bandwidth
    # plus the overhead (8B: 16 GB / 2.68 TB/s + 3 ms = 9.1 ms), at a board power between idle and TDP.
    bw = n_gpu * H100.achieved_bandwidth_fraction * H100.hbm_bandwidth_b_s
    t1 = (model.params * 2 + 2048 * model.kv_bytes_per_token()) / bw + H100.step_overhead_s
    assert n_gpu * H100.idle_power_w * t1 < j[0] < n_gpu * H100.max_power_w * t1
    assert j[-1] < j[0] / 20  # the weight read is shared by 256 sequences


def test_engine_energy_per_token_falls_as_load_fills_batches(one_server):
    rates = (2.0, 20.0, 80.0)
    runs = [simulate(one_server.with_updates({"workloads.0.arrivals.requests_per_s": q})) for q in rates]
    j = [r.kpis["j_per_token_it"] for r in runs]
    batch = [r.timeseries["chat_batch_mean"].mean() for r in runs]
    assert j[0] > j[1] > j[2]
    assert batch[0] < batch[1] < batch[2]
