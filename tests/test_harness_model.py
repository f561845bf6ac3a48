"""The tiny GPT: determinism, KV-cache correctness, and its FLOP/byte accounting."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from twin.errors import UnknownNameError  # noqa: E402
from twin.harness.model import (  # noqa: E402
    MODEL_PRESETS,
    GPTConfig,
    build_model,
    decode_step,
    generate,
    model_cost,
    model_preset,
    prefill,
)

SMALL = GPTConfig(vocab=64, d_model=32, n_layers=2, n_heads=4, max_seq=32)


def test_same_seed_same_weights_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a, b = build_model(SMALL, seed=3), build_model(SMALL, seed=3)
    c = build_model(SMALL, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    params = zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True)
    for (name, pa), pb, pc in params:
        assert torch.equal(pa, pb), name
        if name.endswith("weight") and ".ln" not in name and not name.startswith("ln_"):
            assert not torch.equal(pa, pc), name


def test_cpu_is_fp32_and_eval():
    model = build_model(SMALL)
    assert model.dtype == torch.float32
    assert not model.training


def test_cached_decode_matches_full_recompute():
    model = build_model(SMALL, seed=1)
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, SMALL.vocab, (3, 5), generator=gen)
    cached = generate(model, prompts, 6)
    # Reference: no cache reuse; every step re-runs the whole sequence through prefill.
    seq = prompts
    for _ in range(6):
        nxt, _ = prefill(model, seq, seq.shape[1])
        seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(cached, seq[:, 5:])


def test_decode_step_logits_match_prefill_logits():
    model = build_model(SMALL, seed=2)
    seq = torch.arange(8).reshape(1, 8) % SMALL.vocab
    with torch.inference_mode():
        full = model(seq, model.new_cache(1, 8), 0)
        cache = model.new_cache(1, 8)
        model(seq[:, :7], cache, 0)
        step = model(seq[:, 7:], cache, 7)
    torch.testing.assert_close(step, full, rtol=1e-5, atol=1e-5)
    assert decode_step(model, seq[:, 7:], cache, 7).shape == (1, 1)


def test_tiny_parameter_count_by_hand():
    # Per block: ln1 2d + qkv 3d^2+3d + proj d^2+d + ln2 2d + fc 4d^2+4d + out 4d^2+d
    # = 12 d^2 + 13 d. d = 256: 789 760. Two blocks, ln_f 2d, head vocab*d (untied).
    d, vocab, seq = 256, 1024, 512
    matmul = 2 * (12 * d * d + 13 * d) + 2 * d + vocab * d
    cost = model_cost(build_model(MODEL_PRESETS["tiny"]))
    assert cost.n_matmul_params == matmul == 1_842_176
    assert cost.n_params == matmul + vocab * d + seq * d == 2_235_392  # DEPENDENCIES.md 2.2: 2.24 M
    assert cost.flops_per_token == 2 * matmul
    assert cost.weight_bytes == 4 * matmul  # fp32
    assert cost.kv_bytes_per_token == 2 * 2 * d * 4  # K and V, 2 layers, fp32


def test_step_bytes_and_prefill_flops_by_hand():
    cost = model_cost(build_model(SMALL))
    # Step at position 10, batch 3: weights once + 3 sequences x 11 cached tokens.
    assert cost.decode_step_bytes(3, 10) == cost.weight_bytes + 3 * 11 * cost.kv_bytes_per_token
    # Prefill of 2 x 4 tokens: 8 x 2N plus causal attention 4 L d x (1+2+3+4) per sequence.
    attn = 4 * SMALL.n_layers * SMALL.d_model * 10
    assert cost.prefill_flops(2, 4) == pytest.approx(2 * (4 * cost.flops_per_token + attn))


def test_bad_config_and_unknown_preset():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        GPTConfig(d_model=30, n_heads=4)
    with pytest.raises(UnknownNameError, match="tiny"):
        model_preset("huge")
    with pytest.raises(ValueError, match="max_seq"):
        build_model(SMALL).new_cache(1, 64)
