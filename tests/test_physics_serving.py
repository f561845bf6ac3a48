import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.catalog import accelerator_spec, model_spec
from twin.physics.serving import (
    decode_batch_for_rate,
    decode_step_time_s,
    moe_weight_bytes_per_step,
    prefill_time_per_token_s,
    training_tokens_per_s,
)

H100 = accelerator_spec("H100-SXM")
L70 = model_spec("Llama-3-70B")


def test_parameters_md_70b_worked_example():
    # parameters.md 6: Llama-3-70B on 8x H100, batch 64, 2048-token context, BF16:
    # 141 GB weights + 43 GB KV over 26.8 TB/s = 6.9 ms/step, ~9 300 tokens/s (eta_bw = 1, no overhead).
    w = 141e9
    kv = L70.kv_bytes_per_token(2.0)
    t = float(
        decode_step_time_s(64, w, kv, 2048, 2 * L70.active_params, 8 * H100.hbm_bandwidth_b_s, 8 * H100.bf16_flop_s)
    )
    assert t * 1e3 == pytest.approx(6.9, abs=0.05)
    assert 64 / t == pytest.approx(9300, rel=0.01)


def test_batch_one_bandwidth_bound():
    # parameters.md 6 table: Llama-3-8B BF16 on one H100, batch 1, weights only: 209 tok/s.
    m = model_spec("Llama-3.1-8B")
    t = float(decode_step_time_s(1, m.params * 2, 0.0, 0, 2 * m.params, H100.hbm_bandwidth_b_s, H100.bf16_flop_s))
    assert 1 / t == pytest.approx(209, rel=0.01)


def test_ridge_point_crossover_near_295():
    # Decode turns compute-bound when B ~ ridge * b_w / 2 = 295 for BF16 on H100 (parameters.md 6),
    # with weights only: t_mem = 2N/BW, t_cmp = 2N B / F  ->  B* = F / BW.
    n = 8e9
    b = np.arange(1, 600)
    t_mem = 2 * n / H100.hbm_bandwidth_b_s
    t = decode_step_time_s(b, 2 * n, 0.0, 0, 2 * n, H100.hbm_bandwidth_b_s, H100.bf16_flop_s)
    crossover = int(b[np.argmax(t > t_mem * (1 + 1e-12))])
    assert crossover == pytest.approx(H100.bf16_flop_s / H100.hbm_bandwidth_b_s, abs=1)
    assert crossover == pytest.approx(295, abs=2)


@given(rate=st.floats(1, 20000), ctx=st.floats(100, 8000), clock=st.floats(0.3, 1.0), overhead=st.floats(0, 0.01))
def test_batch_for_rate_reproduces_rate(rate, ctx, clock, overhead):
    args = (141e9, 327680.0, ctx, 2 * 70.6e9, 21.4e12, 3.9e15, clock, overhead)
    b = float(decode_batch_for_rate(rate, *args))
    if np.isfinite(b):
        assert b / float(decode_step_time_s(b, *args)) == pytest.approx(rate, rel=1e-9)
    else:
        # Infeasible: even a huge batch cannot reach the rate.
        assert 1e6 / float(decode_step_time_s(1e6, *args)) < rate


def test_clock_hurts_prefill_more_than_decode():
    m = model_spec("Llama-3.1-8B")
    bw, f = 0.8 * H100.hbm_bandwidth_b_s, 0.5 * H100.bf16_flop_s
    dec = [
        float(decode_step_time_s(32, 16e9, m.kv_bytes_per_token(), 1000, 2 * m.params, bw, f, c, 0.003))
        for c in (1.0, 0.7)
    ]
    pre = [float(prefill_time_per_token_s(2 * m.params, 1000, m.n_layers, m.d_model, f, c)) for c in (1.0, 0.7)]
    assert pre[1] / pre[0] == pytest.approx(1 / 0.7)  # compute-bound: time ~ 1/f
    assert dec[1] / dec[0] == pytest.approx(1.0)  # memory-bound decode: unchanged


def test_moe_reads_all_experts_at_large_batch():
    mix = model_spec("Mixtral-8x7B")
    dense = (mix.params - mix.expert_params) * 2
    experts = mix.expert_params * 2
    one = float(moe_weight_bytes_per_step(1, dense, experts, mix.n_experts, mix.experts_per_token))
    many = float(moe_weight_bytes_per_step(256, dense, experts, mix.n_experts, mix.experts_per_token))
    # One token reads the shared weights and 2 of 8 experts: the 12.9B active parameters.
    assert one / 2 == pytest.approx(mix.active_params, rel=0.01)
    assert many / 2 == pytest.approx(mix.params, rel=1e-6)


def test_training_six_n_rule():
    # Kaplan et al. 2020: 6N FLOPs per token. 8B on 8 H100 at MFU 0.4, by hand:
    expected = 0.4 * 8 * 989.4e12 / (6 * 8.03e9)
    assert float(training_tokens_per_s(8.03e9, 8 * 989.4e12, 0.4)) == pytest.approx(expected)
    assert float(training_tokens_per_s(8.03e9, 8 * 989.4e12, 0.4, 0.5)) == pytest.approx(expected / 2)
