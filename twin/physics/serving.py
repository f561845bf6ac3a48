"""One step of an LLM serving replica: time, bytes and FLOPs per GPU, from the model's costs.

A continuous-batching engine (vLLM, TensorRT-LLM) runs the replica in steps. In each step every
running sequence decodes one token (``B`` sequences) and queued prompts are prefilled in chunks
(``C`` prompt tokens), together up to a token budget. Per GPU of the replica, a step costs
(each group of kernels at its own roofline [1]_, the groups one after another)::

    t = R(W_d / BW, (B c_d + C c_p) / F)                      weights every token passes through
      + R(W_e u(B + C) / BW_e, (B + C) c_e / F)               routed experts, u = share touched
      + R(B (kv(L) + s) / BW_kv, (B a(L) + C a_p(x)) / F)     attention (KV cache) and SSM state
      + n_c alpha + (B + C) b_c / BW_link                     all-reduces, all-to-alls (n_c steps)
      + t_o + t_s B                                           host: scheduling, sampling, launch

``R`` is the (smooth) roofline of a memory time and a compute time (:func:`~twin.physics.step_costs.roofline_time_s`).
``BW``, ``BW_e``, ``BW_kv`` and ``F`` are the GPU's achieved HBM bandwidths (dense weight reads,
grouped expert kernels, attention) and FLOP/s (``F`` scales with the SM clock fraction ``f``; HBM
does not), ``L`` the mean context of a decoding sequence and ``x`` the mean
position of a prefilled token. ``u(T) = 1 - (1 - k/E)**T`` is the share of a GPU's experts that
``T`` tokens routed uniformly to ``k`` of ``E`` experts touch; with experts spread whole over
``G`` GPUs the step waits for the GPU that touched the most of its experts and got the most
tokens (:mod:`twin.physics.experts`). The costs (``W_d``, ``c_d``, ...,
:class:`~twin.physics.step_costs.StepCosts`) come from the model's architecture and the replica's parallel layout
(:mod:`twin.serving_costs`); the device figures (:class:`~twin.physics.step_costs.ServingDevice`) from the accelerator's
catalog entry, fitted once per accelerator (``twin calibrate``).

Decode is memory-bound at small batch (the weights' read time is shared by the batch) and turns
compute-bound as the batch grows; prefill is compute-bound, and in a mixed step it first fills
the SMs left idle by the weight reads. The GPU is busy while kernels run (the host share idles
it); its HBM and SM activity are the step's bytes and FLOPs over what the step's time allows,
which is what the accelerator's power model (:mod:`twin.physics.accelerator`) takes.

References
----------
.. [1] S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model
   for multicore architectures", Commun. ACM 52(4), 2009 (time = max(bytes / bandwidth,
   FLOPs / peak) per kernel).
.. [2] J. Kaplan et al., "Scaling Laws for Neural Language Models", arXiv 2001.08361, 2020,
   sec. 2.1: forward pass ~2N FLOPs per token, training ~6N.
.. [3] W. Kwon et al., "Efficient Memory Management for Large Language Model Serving with
   PagedAttention", SOSP 2023 (continuous batching; the KV cache a sequence holds grows with its
   context), and the vLLM V1 scheduler (decode tokens first, then prefill chunks up to
   ``max_num_batched_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from twin._types import FloatArray, Numeric
from twin.physics.experts import expert_mean
from twin.physics.interconnect import collective_time_s
from twin.physics.step_costs import ServingDevice, Step, StepCosts, roofline_time_s, take_replicas


def _windowed(context: FloatArray, full: FloatArray, windowed: FloatArray, window: FloatArray) -> FloatArray:
    """``full * L + windowed * min(L, window)`` (a window of 0 means no windowed layers)."""
    if not np.any(windowed):
        return np.asarray(full * context)
    seen = np.where(window > 0, np.minimum(context, window), context)
    return np.asarray(full * context + windowed * seen)


def sequences_that_fit(free_bytes: Numeric, c: StepCosts, context_tokens: Numeric) -> FloatArray:
    """Sequences whose cache fits in ``free_bytes`` of a GPU (paged KV cache, as vLLM allocates it).

    A sequence of context ``L`` holds ``kv L`` bytes in full-attention layers, ``kv_w min(L, W)``
    in windowed ones and its SSM state [3]_.

    Parameters
    ----------
    free_bytes : numeric
        HBM left for the cache on one GPU. [B]
    c : StepCosts
        Per-GPU costs (their KV bytes per token and SSM state).
    context_tokens : numeric
        Mean context of a running sequence. [1]

    Returns
    -------
    numpy.ndarray
        [1] (``inf`` for a model with no cache).

    Examples
    --------
    50 GB free for Llama-3.1-8B at 1 000 tokens of context, 131 072 B per token: 381 sequences.

    >>> from twin.physics.step_costs import example_costs
    >>> int(sequences_that_fit(50e9, example_costs(), 1000.0))
    381
    """
    per_seq = (
        _windowed(
            np.asarray(context_tokens, dtype=np.float64),
            c.kv_bytes_per_token,
            c.window_kv_bytes_per_token,
            c.window_tokens,
        )
        + 0.5 * c.state_bytes_per_sequence
    )  # the step reads and writes the state: half is what is held
    free = np.maximum(np.asarray(free_bytes, dtype=np.float64), 0.0)
    return np.asarray(
        np.divide(free, per_seq, out=np.full(np.broadcast(free, per_seq).shape, np.inf), where=per_seq > 0)
    )


def step(
    c: StepCosts,
    dev: ServingDevice,
    decode_seqs: Numeric,
    prefill_tokens: Numeric,
    context_tokens: Numeric,
    prefill_position: Numeric,
    clock_fraction: Numeric = 1.0,
    prompt_tokens: Numeric | None = None,
) -> Step:
    """Time, bytes and FLOPs of one step (module docstring), or the mean step of a steady stream.

    The step's time is its slowest GPU's; its bytes, FLOPs and kernel time are the mean GPU's
    (they differ only in an expert-parallel group, whose busiest GPU sets the time while the
    others wait), which is what a GPU's power, averaged over the group, follows.

    Parameters
    ----------
    c : StepCosts
        Per-GPU costs of the replica.
    dev : ServingDevice
        Achieved device figures.
    decode_seqs : numeric
        Sequences decoding one token each, ``B``. [1]
    prefill_tokens : numeric
        Prompt tokens prefilled in the step, ``C``. [1]
    context_tokens : numeric
        Mean context of the decoding sequences, ``L``. [1]
    prefill_position : numeric
        Mean position of the prefilled tokens in their prompts, ``x`` (half the prompt for
        whole prompts). [1]
    clock_fraction : numeric
        SM clock over boost. [1]
    prompt_tokens : numeric, optional
        Tokens of one whole prompt, ``P``: ``C`` is then the mean over a steady stream of steps in
        which prompts arrive whole, and the result is the mean step (:func:`twin.physics.experts.expert_mean`). The
        terms linear in ``C`` are the same either way; the routed experts' are not. Default: one
        step carrying ``C``. [1]

    Returns
    -------
    Step

    Examples
    --------
    Llama-3.1-8B (BF16) on one H100 at 80 % of 3.35 TB/s and 60 % of 989 TFLOP/s, batch 64 at a
    1000-token context, no prefill, no host time, the sharp roofline: weights read 15.01 GB (all but
    the embedding table), KV 64 x 1000 x 131 kB = 8.39 GB, so 23.40 GB over 2.68 TB/s = 8.73 ms
    (compute 64 x 15 GFLOP / 594 TFLOP/s = 1.6 ms hides under it):

    >>> from twin.physics.step_costs import example_costs, example_device
    >>> s = step(example_costs(), example_device(), 64, 0, 1000, 0)
    >>> round(float(s.time_s) * 1e3, 2)
    8.73
    """
    plan = StepPlan.at(c, dev, context_tokens, prefill_position, clock_fraction, prompt_tokens)
    return plan.step(decode_seqs, prefill_tokens)


@dataclass(frozen=True)
class StepPlan:
    """:func:`step` at a given context, prefill position and clock, for any batch.

    A serving solve steps the same ranks at many batches and prompt chunks (the rate solves of
    :mod:`twin.physics.serving_rates`, a queue's capacity, the latency estimate) at one context,
    position and clock: the terms these fix (the clocked FLOP/s, the weight-read time, attention FLOPs and
    KV bytes per sequence and per prompt token) are computed once here. ``plan.step(B, C)`` is
    ``step(c, dev, B, C, L, x, f)`` to the bit (it is how :func:`step` computes), and
    ``plan.time_s(B, C)`` its time alone.
    """

    costs: StepCosts
    device: ServingDevice
    #: The context ``L`` and prefill position ``x`` it was made at. [1]
    context_tokens: FloatArray
    prefill_position: FloatArray
    #: SM clock fraction, clipped to ``[1e-6, 1]``. [1]
    clock: FloatArray
    #: Achieved FLOP/s of dense kernels and attention at that clock. [FLOP/s]
    flop_s: FloatArray
    #: Time to read the dense weights at the achieved bandwidth. [s]
    dense_read_s: FloatArray
    #: Decode attention FLOPs per sequence, and prefill attention FLOPs per prompt token. [FLOP]
    attn_flops_per_seq: FloatArray
    attn_flops_per_prompt_token: FloatArray
    #: KV-cache (and SSM state) bytes read per decoding sequence. [B]
    attn_bytes_per_seq: FloatArray
    #: Tokens of one whole prompt where prompts arrive whole (the steps are a stream's mean:
    #: :func:`twin.physics.experts.expert_mean`), or None (one step carrying its prompt tokens). [1]
    prompt_tokens: FloatArray | None = None

    @classmethod
    def at(
        cls,
        c: StepCosts,
        dev: ServingDevice,
        context_tokens: Numeric,
        prefill_position: Numeric,
        clock_fraction: Numeric = 1.0,
        prompt_tokens: Numeric | None = None,
    ) -> StepPlan:
        """The plan of ranks with costs ``c`` on ``dev`` (arguments as in :func:`step`)."""
        ctx = np.asarray(context_tokens, dtype=np.float64)
        x = np.asarray(prefill_position, dtype=np.float64)
        f = np.clip(np.asarray(clock_fraction, dtype=np.float64), 1e-6, 1.0)
        if c.has_windows:
            kv = _windowed(ctx, c.kv_bytes_per_token, c.window_kv_bytes_per_token, c.window_tokens)
            per_seq = _windowed(ctx, c.attention_flops, c.window_attention_flops, c.window_tokens)
            per_prompt = _windowed(x, c.prefill_attention_flops, c.prefill_window_attention_flops, c.window_tokens)
        else:  # full attention only (the same numbers, without the work)
            kv = c.kv_bytes_per_token * ctx
            per_seq, per_prompt = c.attention_flops * ctx, c.prefill_attention_flops * x
        return cls(
            costs=c,
            device=dev,
            context_tokens=ctx,
            prefill_position=x,
            clock=f,
            flop_s=np.asarray(dev.flop_s * f),
            dense_read_s=np.asarray(c.dense_bytes / dev.bandwidth_b_s),
            attn_flops_per_seq=np.asarray(per_seq),
            attn_flops_per_prompt_token=np.asarray(per_prompt),
            attn_bytes_per_seq=np.asarray(kv + c.state_bytes_per_sequence),
            prompt_tokens=None if prompt_tokens is None else np.asarray(prompt_tokens, dtype=np.float64),
        )

    def take(self, cells: Callable[[np.ndarray], np.ndarray], ranks: Callable[[np.ndarray], np.ndarray]) -> StepPlan:
        """The plan at some of its cells: that :meth:`at` makes there, to the bit, without recomputing it.

        ``cells`` maps a figure of the cells (the context, position and clock, and the terms they
        fix) to the cells wanted; ``ranks`` maps a figure of the ranks (the costs, the device, the
        weight-read time) to those cells' ranks, and a figure that is one number stays one.
        """
        return self.with_ranks(ranks).at_cells(cells)

    def with_ranks(self, ranks: Callable[[np.ndarray], np.ndarray]) -> StepPlan:
        """The figures of the ranks mapped by ``ranks`` (as in :meth:`take`), the cells' as they are.

        Until :meth:`at_cells` maps the cells to those ranks' cells, the two need not broadcast.
        """
        return replace(
            self,
            costs=self.costs.take(ranks),
            device=self.device.take(ranks),
            dense_read_s=take_replicas(ranks, self.dense_read_s),
        )

    def at_cells(self, cells: Callable[[np.ndarray], np.ndarray]) -> StepPlan:
        """The figures of the cells mapped by ``cells`` (as in :meth:`take`), the ranks' as they are."""
        return StepPlan(
            costs=self.costs,
            device=self.device,
            context_tokens=cells(self.context_tokens),
            prefill_position=cells(self.prefill_position),
            clock=cells(self.clock),
            flop_s=cells(self.flop_s),
            dense_read_s=self.dense_read_s,
            attn_flops_per_seq=cells(self.attn_flops_per_seq),
            attn_flops_per_prompt_token=cells(self.attn_flops_per_prompt_token),
            attn_bytes_per_seq=cells(self.attn_bytes_per_seq),
            prompt_tokens=None if self.prompt_tokens is None else cells(self.prompt_tokens),
        )

    def _terms(self, b: FloatArray, p: FloatArray) -> dict[str, FloatArray]:
        """The step's groups of kernels at ``B = b`` sequences and ``C = p`` prompt tokens (module docstring).

        Times are those of an active step (``active``: some token in it); an empty step takes none.
        """
        c, dev, fl = self.costs, self.device, self.flop_s
        tokens = b + p
        dense_flops = b * c.decode_flops_per_token + p * c.prefill_flops_per_token
        n, linear = dev.roofline_exponent, dev.linear_roofline
        t_dense = roofline_time_s(self.dense_read_s, dense_flops / fl, n, linear)
        attn_flops = b * self.attn_flops_per_seq + p * self.attn_flops_per_prompt_token
        attn_bytes = b * self.attn_bytes_per_seq
        t_attn = roofline_time_s(attn_bytes / dev.kv_bandwidth_b_s, attn_flops / fl, n, linear)
        terms = {"tokens": tokens, "t_dense": t_dense, "t_attn": t_attn, "dense_flops": dense_flops}
        terms |= {"attn_flops": attn_flops, "attn_bytes": attn_bytes}
        if c.has_experts:
            read, flops, t_busiest, t_mean = expert_mean(c, dev, b, p, self.prompt_tokens, self.clock, n)
            terms |= {"expert_read": read, "expert_flops": flops, "t_expert": t_busiest, "t_expert_mean": t_mean}
            terms["t_kern"] = t_dense + t_busiest + t_attn
        else:  # dense models only (the same numbers, without the work)
            terms["t_kern"] = t_dense + t_attn
        terms["t_coll"] = collective_time_s(
            c.collective_steps, tokens * c.collective_bytes_per_token, dev.link_bandwidth_b_s, dev.link_latency_s
        )
        terms["t_host"] = dev.overhead_s + dev.overhead_per_sequence_s * b
        return terms

    def time_s(self, decode_seqs: Numeric, prefill_tokens: Numeric) -> FloatArray:
        """The step's time at ``B`` sequences and ``C`` prompt tokens (that of :meth:`step`). [s]"""
        b = np.asarray(decode_seqs, dtype=np.float64)
        s = self._terms(b, np.asarray(prefill_tokens, dtype=np.float64))
        return np.asarray(np.where(s["tokens"] > 0, s["t_kern"] + s["t_coll"] + s["t_host"], 0.0))

    def step(self, decode_seqs: Numeric, prefill_tokens: Numeric) -> Step:
        """The step at ``B`` sequences and ``C`` prompt tokens (as :func:`step`)."""
        b = np.asarray(decode_seqs, dtype=np.float64)
        p = np.asarray(prefill_tokens, dtype=np.float64)
        s = self._terms(b, p)
        active = s["tokens"] > 0
        t_coll = np.where(active, s["t_coll"], 0.0)
        t_host = np.where(active, s["t_host"], 0.0)
        t_kern = np.where(active, s["t_kern"], 0.0)
        zero = np.zeros(())
        read, flops = s.get("expert_read", zero), s.get("expert_flops", zero)
        moved = np.where(active, self.costs.dense_bytes + read + s["attn_bytes"], 0.0)
        expert_s = np.where(active, s.get("t_expert_mean", zero), 0.0)
        kernel_s = np.where(active, s["t_dense"] + s.get("t_expert_mean", zero) + s["t_attn"], 0.0)
        return Step(
            time_s=np.asarray(t_kern + t_coll + t_host),
            host_s=np.asarray(t_host),
            collective_s=np.asarray(t_coll),
            bytes=np.asarray(moved),
            flops=np.asarray(s["dense_flops"] + flops + s["attn_flops"]),
            kernel_s=np.asarray(kernel_s),
            expert_s=np.asarray(expert_s),
        )


def median_prefills_per_step(arrivals_per_step: Numeric) -> FloatArray:
    """Median number of prompts admitted in a step when they arrive as a Poisson stream.

    Parameters
    ----------
    arrivals_per_step : numeric
        Mean prompts admitted per step (finished sequences per step in a full replica). [1]

    Returns
    -------
    numpy.ndarray
        The median of ``N ~ Poisson(r)``, interpolated within the count where the CDF crosses
        one half (the mid-distribution median), so that it moves continuously with ``r``. [1]

    Examples
    --------
    Few arrivals: most steps carry no prompt; one per step: half of them none or one:

    >>> median_prefills_per_step([0.02, 0.6931471805599453, 2.5, 40.0]).round(3)
    array([ 0.   ,  0.   ,  1.829, 39.334])
    """
    r = np.maximum(np.asarray(arrivals_per_step, dtype=np.float64), 0.0)
    flat = r.ravel()
    n_max = int(np.max(flat + 8.0 * np.sqrt(flat) + 8.0)) if flat.size else 8
    n = np.arange(n_max + 1, dtype=np.float64)
    log_pmf = n[:, None] * np.log(np.maximum(flat, 1e-300))[None, :] - flat[None, :] - _log_factorial(n)[:, None]
    pmf = np.exp(log_pmf)
    cdf = np.cumsum(pmf, axis=0)
    k = np.argmax(cdf >= 0.5, axis=0)  # first count whose CDF reaches one half
    cols = np.arange(flat.size)
    below = np.where(k > 0, cdf[np.maximum(k - 1, 0), cols], 0.0)
    frac = (0.5 - below) / np.maximum(pmf[k, cols], 1e-300)
    med = np.where(k > 0, k - 1 + frac, 0.0)
    return np.asarray(np.where(flat > 0, med, 0.0).reshape(r.shape))


def _log_factorial(n: FloatArray) -> FloatArray:
    from scipy.special import gammaln

    return np.asarray(gammaln(n + 1.0))


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
