from dataclasses import astuple, fields, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.catalog import accelerator_spec, model_spec
from twin.physics.experts import busiest_share, experts_touched_fraction
from twin.physics.interconnect import allreduce_bytes_per_gpu, allreduce_steps, collective_time_s
from twin.physics.serving import StepPlan, median_prefills_per_step, step, training_tokens_per_s
from twin.physics.serving_rates import batch_for_rates, prefill_chunk_for_rate
from twin.physics.step_costs import ServingDevice, Step, StepCosts, example_device, roofline_time_s
from twin.replica import Layout, expert_sm_activity, serving_device, step_costs

H100 = accelerator_spec("H100-SXM")
L70 = model_spec("Llama-3-70B")
L8 = model_spec("Llama-3.1-8B")


def ideal_device(acc=H100, **kw) -> ServingDevice:
    """Datasheet peaks, sharp roofline, no host time, no collective latency."""
    base = {
        "bandwidth_b_s": acc.hbm_bandwidth_b_s,
        "kv_bandwidth_b_s": acc.hbm_bandwidth_b_s,
        "expert_bandwidth_b_s": acc.hbm_bandwidth_b_s,
        "peak_bandwidth_b_s": acc.hbm_bandwidth_b_s,
        "flop_s": acc.bf16_flop_s,
        "expert_flop_s": acc.bf16_flop_s,
        "expert_sm_activity": 0.0,
        "link_bandwidth_b_s": acc.link_bandwidth_b_s,
        "link_latency_s": 0.0,
        "overhead_s": 0.0,
        "overhead_per_sequence_s": 0.0,
        "gap_power_fraction": 0.0,
        "roofline_exponent": 1e6,
        "expert_routing_skew": 0.0,
    }
    base.update(kw)
    return ServingDevice(**{k: np.asarray(v) for k, v in base.items()})


def no_collectives(c: StepCosts) -> StepCosts:
    return replace(c, collective_steps=np.asarray(0.0), collective_bytes_per_token=np.asarray(0.0))


def test_parameters_md_70b_worked_example():
    # parameters.md 6: Llama-3-70B on 8x H100, batch 64, 2048-token context, BF16: 141 GB of
    # weights + 43 GB of KV over 26.8 TB/s is 6.9 ms per step, ~9 300 tokens/s (no overhead).
    # Per GPU: 1/8 of the weights (the embedding table is not read: 139 GB) and of the KV cache.
    c = no_collectives(step_costs(L70, Layout(tensor_parallel=8), H100))
    t = float(step(c, ideal_device(), 64, 0, 2048, 0).time_s)
    by_hand = ((L70.params - L70.params_by_part["embedding"]) * 2 / 8 + 64 * 2048 * 327680 / 8) / 3.35e12
    assert t == pytest.approx(by_hand, rel=1e-9)
    assert t * 1e3 == pytest.approx(6.9, rel=0.02)  # the 2.1 GB embedding table is the difference
    assert 64 / t == pytest.approx(9300, rel=0.02)


def test_batch_one_bandwidth_bound():
    # parameters.md 6 table: Llama-3-8B BF16 on one H100, batch 1, weights only: ~209 tok/s
    # (16 GB / 3.35 TB/s); the twin does not read the 1 GB embedding table, so a little faster.
    c = step_costs(L8, Layout(), H100)
    t = float(step(c, ideal_device(), 1, 0, 0, 0).time_s)
    assert 1 / t == pytest.approx(3.35e12 / ((L8.params - L8.params_by_part["embedding"]) * 2), rel=1e-3)
    assert 209 < 1 / t < 209 * 1.1


def test_ridge_point_crossover_near_295():
    # With weights only, decode turns compute-bound at B* = F / BW = 295 for BF16 on H100.
    c = replace(step_costs(L8, Layout(), H100), kv_bytes_per_token=np.asarray(0.0), attention_flops=np.asarray(0.0))
    b = np.arange(1, 600, dtype=float)
    t = step(c, ideal_device(), b, 0, 0, 0).time_s
    flat = t <= t[0] * (1 + 1e-9)
    crossover = int(b[np.argmin(flat)])
    assert crossover == pytest.approx(
        H100.bf16_flop_s / H100.hbm_bandwidth_b_s * float(c.dense_bytes) / 2 / (float(c.decode_flops_per_token) / 2),
        abs=1,
    )
    assert crossover == pytest.approx(295, abs=3)


def test_roofline_lies_between_max_and_sum():
    m, c = np.array([3.0, 1.0, 0.0]), np.array([4.0, 5.0, 2.0])
    for n in (1.0, 1.5, 3.0, 50.0):
        r = roofline_time_s(m, c, n)
        assert np.all(r >= np.maximum(m, c) - 1e-12)
        assert np.all(r <= m + c + 1e-12)
    assert roofline_time_s(3.0, 4.0, 1.0) == pytest.approx(7.0)
    assert roofline_time_s(3.0, 4.0, 200.0) == pytest.approx(4.0, rel=1e-3)


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(10, 20000), mix=st.floats(0, 6), ctx=st.floats(100, 8000), clock=st.floats(0.3, 1.0))
def test_batch_for_rates_reproduces_rate(rate, mix, ctx, clock):
    c = step_costs(model_spec("Mixtral-8x7B"), Layout(tensor_parallel=2, expert_parallel=True), H100)
    dev = serving_device(H100)
    b = float(batch_for_rates(c, dev, rate, mix * rate, ctx, 250.0, 4096, clock))
    made = b / float(step(c, dev, b, mix * b, ctx, 250.0, clock).time_s)
    if b < 4096:
        assert made == pytest.approx(rate, rel=1e-6)
    else:  # even the largest batch does not reach the rate: it runs flat out
        assert made <= rate * (1 + 1e-9)


def test_batch_for_rates_settles_in_one_step_where_the_step_is_affine(monkeypatch):
    # A dense model on H100 (linear roofline: the step is affine in the batch along a fixed prompt
    # mix): the secant through the bracket's two ends is the root, so the solve takes the two ends
    # and one step, and the batch found makes the rate.
    c = step_costs(model_spec("Llama-3.1-8B"), Layout(tensor_parallel=1), H100)
    dev = serving_device(H100)
    assert dev.linear_roofline
    rates = np.array([500.0, 3000.0, 9000.0])
    calls = []
    real = StepPlan.time_s
    monkeypatch.setattr(StepPlan, "time_s", lambda plan, b, p: calls.append(1) or real(plan, b, p))
    b = batch_for_rates(c, dev, rates, 0.6 * rates, 1000.0, 125.0, 512)
    assert len(calls) == 3
    monkeypatch.undo()
    made = b / step(c, dev, b, 0.6 * b, 1000.0, 125.0).time_s
    np.testing.assert_allclose(made, rates, rtol=1e-9)


def test_prefill_chunk_for_rate_keeps_up_or_runs_flat_out():
    """One prompt a step while it keeps up; then the chunk whose steps make the rate; the budget beyond."""
    c = step_costs(model_spec("Mixtral-8x7B"), Layout(tensor_parallel=2, expert_parallel=True), H100)
    plan = StepPlan.at(c, serving_device(H100), 0.0, 500.0, 0.8, 1000.0)
    one_rate = 1000.0 / float(plan.time_s(0.0, 1000.0))
    full_rate = 8192.0 / float(plan.time_s(0.0, 8192.0))
    rates = np.array([0.5 * one_rate, 0.5 * (one_rate + full_rate), 1.1 * full_rate])
    chunk = prefill_chunk_for_rate(plan, 1000.0, 8192.0, rates)
    assert chunk[0] == 1000.0
    assert 1000.0 < chunk[1] < 8192.0
    assert chunk[1] / plan.time_s(0.0, chunk[1]) == pytest.approx(rates[1], rel=1e-8)
    assert chunk[2] == 8192.0


def test_costs_and_device_taken_at_replicas_pick_every_field_with_an_axis_and_keep_single_numbers():
    """StepCosts.take, ServingDevice.take: every field over replicas is picked; one number (ndim 0) stays."""
    costs = StepCosts.stack([step_costs(L8, Layout(), H100), step_costs(L70, Layout(tensor_parallel=4), H100)])
    dev = replace(serving_device(H100), flop_s=np.array([1.0e15, 0.9e15]))
    pick = np.array([1, 1, 0])
    for whole in (costs, dev):
        part = whole.take(lambda x: x[pick])
        assert type(part) is type(whole)
        for f in fields(whole):
            v, got = getattr(whole, f.name), getattr(part, f.name)
            if np.ndim(v):
                assert got.tolist() == v[pick].tolist(), f.name
            else:
                assert got is v, f.name


@pytest.mark.parametrize("columns", [[1, 0, 2, 1, 2], [0, 1, 1, 0, 0]])
def test_a_plan_taken_at_cells_is_the_plan_made_there(columns):
    """StepPlan.take: a block's plan indexed at cells equals the plan made at them, to the bit.

    The columns: an expert-parallel MoE, a dense model and the dense model with windowed layers
    (the second set of cells has no windowed column: the plan made there skips their terms).
    """
    dense = step_costs(L8, Layout(), H100)
    half = 0.5 * dense.kv_bytes_per_token
    windowed = replace(
        dense,
        kv_bytes_per_token=half,
        window_kv_bytes_per_token=half,
        window_tokens=np.asarray(1024.0),
        window_attention_flops=dense.attention_flops,
        prefill_window_attention_flops=dense.prefill_attention_flops,
    )
    moe = step_costs(model_spec("Mixtral-8x7B"), Layout(tensor_parallel=2, expert_parallel=True), H100)
    costs = StepCosts.stack([moe, dense, windowed])
    dev = serving_device(H100)
    dev = replace(dev, flop_s=dev.flop_s * np.array([1.0, 0.9, 0.8]))
    rng = np.random.default_rng(3)
    ctx, pos, clock = rng.uniform(0, 8000, (4, 3)), rng.uniform(0, 2000, (4, 3)), rng.uniform(0.3, 1.0, (4, 3))
    plan = StepPlan.at(costs, dev, ctx, pos, clock, 2.0 * pos)
    k, s = np.array([0, 3, 2, 2, 1]), np.array(columns)

    def rank(x):
        return x[s]

    taken = plan.take(lambda x: np.broadcast_to(x, ctx.shape)[k, s], rank)
    made = StepPlan.at(
        costs.take(rank),
        dev.take(rank),
        ctx[k, s],
        pos[k, s],
        clock[k, s],
        2.0 * pos[k, s],
    )
    b, p = rng.uniform(0, 256, k.size), rng.uniform(0, 4096, k.size)
    for got, want in zip(astuple(taken.step(b, p)), astuple(made.step(b, p)), strict=True):
        assert got.tobytes() == want.tobytes()


def test_clock_slows_compute_bound_work_not_memory_bound():
    c = step_costs(L8, Layout(), H100)
    dev = ideal_device()
    decode = [float(step(c, dev, 8, 0, 1000, 0, f).time_s) for f in (1.0, 0.7)]
    prefill = [float(step(c, dev, 0, 4096, 0, 2048, f).time_s) for f in (1.0, 0.7)]
    assert decode[1] == pytest.approx(decode[0])  # memory-bound: the clock does not matter
    assert prefill[1] / prefill[0] == pytest.approx(1 / 0.7)  # compute-bound: time ~ 1/f


def test_moe_reads_active_experts_at_one_token_and_all_at_large_batch():
    mix = model_spec("Mixtral-8x7B")
    c = step_costs(mix, Layout(), H100)
    dev = ideal_device()
    one = float(step(c, dev, 1, 0, 0, 0).bytes)
    many = float(step(c, dev, 256, 0, 0, 0).bytes)
    # One token reads the shared weights and 2 of 8 experts: the active parameters (less the embedding).
    assert one / 2 == pytest.approx(mix.active_params - mix.params_by_part["embedding"], rel=1e-9)
    assert many / 2 == pytest.approx(mix.params - mix.params_by_part["embedding"], rel=1e-6)
    assert experts_touched_fraction(1, 8, 2) == pytest.approx(0.25)


def test_whole_prompts_leave_dense_steps_as_they_were():
    """A dense step is linear in its prompt tokens (sum roofline): the stream's mean step is the mean step."""
    c = step_costs(L8, Layout(), H100)
    dev = ideal_device(roofline_exponent=1.0, overhead_s=0.003)
    fluid = step(c, dev, 16.0, 40.0, 1500.0, 640.0)
    whole = step(c, dev, 16.0, 40.0, 1500.0, 640.0, prompt_tokens=1280.0)
    for f in ("time_s", "bytes", "flops", "kernel_s"):
        assert float(getattr(whole, f)) == pytest.approx(float(getattr(fluid, f)), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.floats(1.0, 512.0),
    prefill=st.floats(1.0, 4000.0),
    prompt=st.floats(16.0, 8192.0),
)
def test_whole_prompts_read_fewer_experts_than_the_mean_step(batch, prefill, prompt):
    """Jensen: the experts touched saturate in the tokens, so the mean over steps with and without a
    prompt reads no more than one step carrying the mean tokens; FLOPs (linear) are the same; and
    tiny prompts (many per step) give back the mean step."""
    mix = model_spec("Qwen/Qwen3-30B-A3B-Instruct-2507")
    c = step_costs(mix, Layout(), H100)
    dev = ideal_device()
    fluid = step(c, dev, batch, prefill, 1000.0, 0.5 * prompt)
    whole = step(c, dev, batch, prefill, 1000.0, 0.5 * prompt, prompt_tokens=prompt)
    assert float(whole.bytes) <= float(fluid.bytes) * (1 + 1e-12)
    assert float(whole.flops) == pytest.approx(float(fluid.flops), rel=1e-12)
    many = step(c, dev, batch, prefill, 1000.0, 0.5 * prompt, prompt_tokens=prefill / 200.0)
    assert float(many.bytes) == pytest.approx(float(fluid.bytes), rel=1e-6)


def test_whole_prompts_by_hand():
    """One step in 32 prefills a 1 280-token prompt: exp(-1/32) of the steps read what 8 decode
    tokens touch, the rest all 128 experts (uniform routing, 8 per token)."""
    mix = model_spec("Qwen/Qwen3-30B-A3B-Instruct-2507")
    c = step_costs(mix, Layout(), H100)
    dev = ideal_device()
    expert = float(c.expert_bytes)
    q8 = 1.0 - (120.0 / 128.0) ** 8
    p0 = np.exp(-1.0 / 32.0)
    want = p0 * q8 * expert + (1.0 - p0) * expert * (1.0 - (120.0 / 128.0) ** (8 + 40.0 / (1.0 - p0)))
    got = step(c, dev, 8.0, 40.0, 0.0, 640.0, prompt_tokens=1280.0).bytes - step(c, dev, 8.0, 40.0, 0.0, 640.0).bytes
    fluid_expert = expert * (1.0 - (120.0 / 128.0) ** 48)
    assert float(got) + fluid_expert == pytest.approx(want, rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(gap=st.floats(0.0, 1.0), batch=st.floats(1.0, 256.0), overhead=st.floats(0.0, 0.02))
def test_power_busy_keeps_a_share_of_the_gaps(gap, batch, overhead):
    """The power model's busy share is the kernels' share plus ``gap`` of the rest, by hand:
    ``b + g (1 - b)``; 0 keeps the kernels' share, 1 the whole step; an empty step draws none."""
    c = no_collectives(step_costs(L8, Layout(), H100))
    dev = ideal_device(overhead_s=overhead, gap_power_fraction=gap)
    s = step(c, dev, batch, 0.0, 1000.0, 0.0)
    b = float(s.busy)
    assert b == pytest.approx(float(s.kernel_s / s.time_s), rel=1e-12)
    assert float(s.power_busy(dev)) == pytest.approx(b + gap * (1.0 - b), rel=1e-12, abs=1e-15)
    assert b <= float(s.power_busy(dev)) <= 1.0
    assert float(step(c, dev, 0.0, 0.0, 1000.0, 0.0).power_busy(dev)) == 0.0


def test_expert_parallel_waits_for_its_busiest_gpu():
    # Blom: E[max of n standard normals] ~ 0.564 (n=2), 1.029 (n=4), 1.424 (n=8) exactly.
    assert busiest_share(0.0, 1.0, [2, 4, 8]) == pytest.approx([0.564, 1.029, 1.424], abs=0.03)
    arch = model_spec("Mixtral-8x7B")
    ep = step_costs(arch, Layout(tensor_parallel=8, expert_parallel=True), H100)
    balanced = replace(ep, expert_gpus=np.asarray(1.0))  # the same bytes, no waiting on the busiest GPU
    dev = ideal_device()
    assert float(step(ep, dev, 4, 0, 100, 0).time_s) > float(step(balanced, dev, 4, 0, 100, 0).time_s)
    # At a large batch every GPU touches all its experts: no imbalance left in the reads.
    assert float(step(ep, dev, 4096, 0, 0, 0).bytes) == pytest.approx(float(step(balanced, dev, 4096, 0, 0, 0).bytes))


def test_tensor_parallel_pays_its_all_reduces():
    # Llama-3-70B on 4 H100: two all-reduces per layer of the step's tokens x d_model x 2 B.
    tp = step_costs(L70, Layout(tensor_parallel=4), H100)
    assert float(tp.collective_steps) == pytest.approx(160 * 6)  # 80 layers x 2, ring: 2 (n - 1) steps
    assert float(tp.collective_bytes_per_token) == pytest.approx(160 * float(allreduce_bytes_per_gpu(8192 * 2, 4)))
    dev = serving_device(H100)
    with_comm = float(step(tp, dev, 64, 0, 1000, 0).time_s)
    without = float(step(no_collectives(tp), dev, 64, 0, 1000, 0).time_s)
    by_hand = float(
        collective_time_s(
            160 * allreduce_steps(4),
            64 * float(tp.collective_bytes_per_token),
            dev.link_bandwidth_b_s,
            dev.link_latency_s,
        )
    )
    assert with_comm - without == pytest.approx(by_hand, rel=1e-9)
    # Four GPUs serve a 70B model slower than 4x what one GPU's share would suggest.
    assert with_comm > without


def test_median_prefills_per_step():
    r = np.linspace(0.0, 12.0, 241)
    med = median_prefills_per_step(r)
    assert np.all(np.diff(med) >= -1e-12)  # grows with the arrival rate
    assert np.max(np.abs(np.diff(med))) < 0.2  # and moves continuously
    assert median_prefills_per_step(np.log(2.0) - 1e-9) == pytest.approx(0.0, abs=1e-6)  # P(0) = 1/2
    assert median_prefills_per_step(40.0) == pytest.approx(40.0, abs=1.0)


def test_training_six_n_rule():
    # Kaplan et al. 2020: 6N FLOPs per token. 8B on 8 H100 at MFU 0.4, by hand:
    expected = 0.4 * 8 * 989.4e12 / (6 * 8.03e9)
    assert float(training_tokens_per_s(8.03e9, 8 * 989.4e12, 0.4)) == pytest.approx(expected)
    assert float(training_tokens_per_s(8.03e9, 8 * 989.4e12, 0.4, 0.5)) == pytest.approx(expected / 2)


def test_block_fp8_expert_kernels_add_their_sm_activity():
    # A 10 ms step whose FLOPs need 0.2 of the achievable FLOP/s, 4 ms of it in grouped expert
    # kernels: block-scaled FP8 experts busy the SMs beyond their FLOPs by the device's share
    # while they run (0.5 x 4 / 10 = 0.2 more), other formats add nothing; the sum is clipped at 1.
    dev = example_device()
    flops = 0.2 * 0.01 * float(dev.flop_s)
    st = Step(time_s=np.asarray(0.01), host_s=np.asarray(0.0), collective_s=np.asarray(0.0), bytes=np.asarray(1e9),
              flops=np.asarray(flops), kernel_s=np.asarray(0.01), expert_s=np.asarray(0.004))  # fmt: skip
    assert float(st.sm_activity(dev)) == pytest.approx(0.2)
    assert float(st.sm_activity(replace(dev, expert_sm_activity=np.asarray(0.5)))) == pytest.approx(0.4)
    assert float(st.sm_activity(replace(dev, expert_sm_activity=np.asarray(1.0)))) == pytest.approx(0.6)
    full = replace(st, flops=np.asarray(0.9 * 0.01 * float(dev.flop_s)))
    assert float(full.sm_activity(replace(dev, expert_sm_activity=np.asarray(1.0)))) == 1.0


def test_only_block_scaled_fp8_experts_take_the_extra_sm_activity():
    h100 = accelerator_spec("H100-SXM")
    assert expert_sm_activity(h100, "fp8-block") == h100.block_fp8_expert_sm_activity > 0
    assert all(expert_sm_activity(h100, f) == 0.0 for f in ("bf16", "fp8", "mxfp4"))
    dev = serving_device(h100, ["bf16", "fp8-block", "mxfp4"])
    np.testing.assert_array_equal(dev.expert_sm_activity, [0.0, h100.block_fp8_expert_sm_activity, 0.0])
    # A dense model's steps have no expert kernels: its SM activity is its FLOPs' alone.
    dense = step(step_costs(L8, Layout(), h100), serving_device(h100, "fp8-block"), 32.0, 64.0, 1000.0, 500.0)
    assert float(dense.expert_s) == 0.0
    # A mixture-of-experts step's expert kernels take part of its kernel time.
    moe = step(step_costs(model_spec("Mixtral-8x7B"), Layout(tensor_parallel=2), h100), serving_device(h100), 32.0,
               64.0, 1000.0, 500.0)  # fmt: skip
    assert 0.0 < float(moe.expert_s) < float(moe.kernel_s)
