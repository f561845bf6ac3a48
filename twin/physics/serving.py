"""Roofline model of LLM serving: decode step time, prefill time, batch for a token rate.

Notation (parameters.md section 6): ``W`` weight bytes read per decode step (per replica),
``kv`` KV-cache bytes per token of context, ``L`` context tokens per sequence, ``B`` batch
(concurrent sequences), ``BW`` achieved HBM bandwidth of the replica (``eta_bw * BW_peak * n_gpu``),
``F`` achieved FLOP/s of the replica at boost clock (``eta_f * F_peak * n_gpu``), ``f`` the SM clock
fraction, ``t_o`` fixed per-step overhead::

    t_step(B) = max((W + B*L*kv) / BW, B * 2*N_active / (F*f)) + t_o
    tokens/s  = B / t_step(B)

Decode is memory-bound until ``B`` reaches about ``ridge * b_w / 2`` (about 295 for BF16 on H100),
so a lower clock slows it far less than compute-bound prefill, whose time per token is
``2*N_active / (F*f)`` plus attention ``4 * n_layers * L_prompt * d_model / (F*f)`` per token.

References
----------
.. [1] parameters.md section 6 (jared-hpc.com roofline post; aiinframap.com crossover ~batch 296).
.. [2] J. Kaplan et al., "Scaling Laws for Neural Language Models", arXiv 2001.08361, 2020,
   sec. 2.1: forward pass ~2N FLOPs per token, training ~6N.
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray, Numeric


def moe_weight_bytes_per_step(
    batch: Numeric,
    dense_bytes: Numeric,
    expert_bytes: Numeric,
    n_experts: Numeric,
    experts_per_token: Numeric,
) -> FloatArray:
    """Weight bytes read in one decode step of a (mixture-of-experts) model.

    Parameters
    ----------
    batch : numeric
        Tokens in the step (sequences in the batch). [1]
    dense_bytes : numeric
        Bytes of weights every token uses (attention, embeddings, shared layers). [B]
    expert_bytes : numeric
        Bytes of all experts together. [B]
    n_experts : numeric
        Experts per MoE layer, ``E``. [1]
    experts_per_token : numeric
        Experts each token is routed to, ``k``. [1]

    Returns
    -------
    numpy.ndarray
        ``dense + expert_bytes * (1 - (1 - k/E)**B)``: with uniform routing each expert is read
        if any of the ``B`` tokens picks it. [B]

    Examples
    --------
    A dense model (no experts) reads all its weights:

    >>> float(moe_weight_bytes_per_step(64, 16e9, 0.0, 1, 1))
    16000000000.0
    >>> round(float(moe_weight_bytes_per_step(1, 3.2e9, 90.2e9, 8, 2)) / 1e9, 2)
    25.75
    """
    b = np.maximum(np.asarray(batch, dtype=np.float64), 0.0)
    miss = (1.0 - np.asarray(experts_per_token, dtype=np.float64) / np.asarray(n_experts)) ** b
    return np.asarray(np.asarray(dense_bytes, dtype=np.float64) + np.asarray(expert_bytes) * (1.0 - miss))


def decode_step_time_s(
    batch: Numeric,
    weight_bytes: Numeric,
    kv_bytes_per_token: Numeric,
    context_tokens: Numeric,
    flops_per_token: Numeric,
    bandwidth_b_s: Numeric,
    flop_s: Numeric,
    clock_fraction: Numeric = 1.0,
    overhead_s: Numeric = 0.0,
) -> FloatArray:
    """Time of one decode step of a replica.

    Parameters
    ----------
    batch : numeric
        Sequences in the batch, ``B``. [1]
    weight_bytes : numeric
        Weight bytes read per step, ``W``. [B]
    kv_bytes_per_token : numeric
        KV-cache bytes per context token. [B]
    context_tokens : numeric
        Mean context length per sequence, ``L``. [1]
    flops_per_token : numeric
        Forward FLOPs per generated token, ``2*N_active``. [FLOP]
    bandwidth_b_s : numeric
        Achieved HBM bandwidth of the replica. [B/s]
    flop_s : numeric
        Achieved FLOP/s of the replica at boost clock. [FLOP/s]
    clock_fraction : numeric
        SM clock fraction ``f``. [1]
    overhead_s : numeric
        Fixed per-step overhead. [s]

    Returns
    -------
    numpy.ndarray
        ``max((W + B L kv)/BW, B flops/(F f)) + t_o``. [s]

    Examples
    --------
    Llama-3-70B on 8 H100 (parameters.md 6): 141 GB weights + 64 x 2048 x 328 kB KV over
    26.8 TB/s is 6.9 ms per step:

    >>> round(float(decode_step_time_s(64, 141e9, 327680, 2048, 2 * 70.6e9, 26.8e12, 4e15)) * 1e3, 1)
    6.9
    """
    b = np.asarray(batch, dtype=np.float64)
    t_mem = (np.asarray(weight_bytes) + b * np.asarray(context_tokens) * kv_bytes_per_token) / bandwidth_b_s
    t_cmp = b * np.asarray(flops_per_token) / (np.asarray(flop_s) * np.asarray(clock_fraction))
    return np.asarray(np.maximum(t_mem, t_cmp) + overhead_s, dtype=np.float64)


def decode_batch_for_rate(
    rate_tok_s: Numeric,
    weight_bytes: Numeric,
    kv_bytes_per_token: Numeric,
    context_tokens: Numeric,
    flops_per_token: Numeric,
    bandwidth_b_s: Numeric,
    flop_s: Numeric,
    clock_fraction: Numeric = 1.0,
    overhead_s: Numeric = 0.0,
) -> FloatArray:
    """Batch a replica must hold so that ``B / t_step(B)`` equals a token rate.

    Parameters
    ----------
    rate_tok_s : numeric
        Generated tokens per second the replica must sustain, ``lambda``. [1/s]
    weight_bytes, kv_bytes_per_token, context_tokens, flops_per_token, bandwidth_b_s, flop_s,
    clock_fraction, overhead_s : numeric
        As in :func:`decode_step_time_s` (``weight_bytes`` fixed, i.e. dense).

    Returns
    -------
    numpy.ndarray
        ``B >= 0``; ``inf`` where no batch reaches the rate. [1]

    Notes
    -----
    With ``a = W/BW``, ``b = L kv/BW``, ``c = flops/(F f)``: ``B = lambda t(B)`` has the solution
    ``max(lambda (a + t_o)/(1 - lambda b), lambda t_o/(1 - lambda c))``, each branch feasible only
    while its denominator is positive (both sides are linear with slope below one, so the fixed
    point of their maximum is the maximum of their fixed points).

    Examples
    --------
    The batch found reproduces the rate:

    >>> args = (141e9, 327680, 2048, 2 * 70.6e9, 26.8e12, 4e15, 1.0, 0.003)
    >>> b = decode_batch_for_rate(5000.0, *args)
    >>> round(float(b / decode_step_time_s(b, *args)), 6)
    5000.0
    """
    lam = np.maximum(np.asarray(rate_tok_s, dtype=np.float64), 0.0)
    a = np.asarray(weight_bytes, dtype=np.float64) / bandwidth_b_s
    b = np.asarray(context_tokens, dtype=np.float64) * kv_bytes_per_token / bandwidth_b_s
    c = np.asarray(flops_per_token, dtype=np.float64) / (np.asarray(flop_s) * np.asarray(clock_fraction))
    shape = np.broadcast(lam, a, b, c).shape
    den_m = 1.0 - lam * b
    den_c = 1.0 - lam * c
    b_mem = np.divide(lam * (a + overhead_s), den_m, out=np.full(shape, np.inf), where=den_m > 0)
    b_cmp = np.divide(lam * overhead_s, den_c, out=np.full(shape, np.inf), where=den_c > 0)
    return np.asarray(np.maximum(b_mem, b_cmp))


def prefill_time_per_token_s(
    flops_per_token: Numeric,
    prompt_tokens: Numeric,
    n_layers: Numeric,
    d_model: Numeric,
    flop_s: Numeric,
    clock_fraction: Numeric = 1.0,
) -> FloatArray:
    """Compute-bound prefill time per prompt token of a replica.

    Parameters
    ----------
    flops_per_token : numeric
        Dense forward FLOPs per token, ``2*N_active``. [FLOP]
    prompt_tokens : numeric
        Mean prompt length ``L``; attention adds ``4 n_layers L d_model`` FLOPs per token. [1]
    n_layers, d_model : numeric
        Model depth and width. [1]
    flop_s : numeric
        Achieved FLOP/s of the replica at boost clock. [FLOP/s]
    clock_fraction : numeric
        SM clock fraction. [1]

    Returns
    -------
    numpy.ndarray
        [s]

    Examples
    --------
    Llama-3-70B, 2000-token prompt, 8 H100 at MFU 0.5 (parameters.md 6: ~71 ms per prompt,
    weights only; attention adds about 4 %):

    >>> round(float(prefill_time_per_token_s(2 * 70.6e9, 0, 80, 8192, 8 * 0.5 * 989.4e12)) * 2000 * 1e3)
    71
    """
    attn = 4.0 * np.asarray(n_layers) * np.asarray(prompt_tokens, dtype=np.float64) * np.asarray(d_model)
    return np.asarray((np.asarray(flops_per_token) + attn) / (np.asarray(flop_s) * np.asarray(clock_fraction)))


def training_tokens_per_s(
    active_params: Numeric, flop_s_peak: Numeric, mfu: Numeric, clock_fraction: Numeric = 1.0
) -> FloatArray:
    """Training throughput from ``6 N`` FLOPs per token at an achieved MFU.

    Parameters
    ----------
    active_params : numeric
        Parameters active per token, ``N``. [1]
    flop_s_peak : numeric
        Peak FLOP/s of all GPUs of the job at boost clock. [FLOP/s]
    mfu : numeric
        Model FLOP utilisation at boost clock. [1]
    clock_fraction : numeric
        SM clock fraction (compute-bound: throughput scales with it). [1]

    Returns
    -------
    numpy.ndarray
        Tokens processed per second. [1/s]

    References
    ----------
    .. [1] J. Kaplan et al., arXiv 2001.08361, 2020, sec. 2.1 (C ~ 6N FLOPs per training token).

    Examples
    --------
    8B model on 8 H100 at MFU 0.4: 0.4 x 8 x 989.4e12 / (6 x 8.03e9) = 65 700 tokens/s:

    >>> round(float(training_tokens_per_s(8.03e9, 8 * 989.4e12, 0.4)), -2)
    65700.0
    """
    return np.asarray(
        np.asarray(mfu) * np.asarray(flop_s_peak) * np.asarray(clock_fraction) / (6.0 * np.asarray(active_params)),
        dtype=np.float64,
    )
