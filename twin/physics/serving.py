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

``R`` is the (smooth) roofline of a memory time and a compute time (:func:`roofline_time_s`).
``BW``, ``BW_e``, ``BW_kv`` and ``F`` are the GPU's achieved HBM bandwidths (dense weight reads,
grouped expert kernels, attention) and FLOP/s (``F`` scales with the SM clock fraction ``f``; HBM
does not), ``L`` the mean context of a decoding sequence and ``x`` the mean
position of a prefilled token. ``u(T) = 1 - (1 - k/E)**T`` is the share of a GPU's experts that
``T`` tokens routed uniformly to ``k`` of ``E`` experts touch; with experts spread whole over
``G`` GPUs the step waits for the GPU that touched the most of its experts and got the most
tokens (:func:`busiest_share`). The costs (``W_d``, ``c_d``, ...,
:class:`StepCosts`) come from the model's architecture and the replica's parallel layout
(:mod:`twin.serving_costs`); the device figures (:class:`ServingDevice`) from the accelerator's
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
from dataclasses import dataclass, fields, replace
from functools import cache, cached_property
from typing import Any, ClassVar, Self

import numpy as np

from twin._types import BoolArray, FloatArray, Numeric
from twin.physics.interconnect import collective_time_s


def _replicas(pick: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``pick`` of a figure with an axis of replicas; one number (``ndim`` 0) is every replica's and stays."""
    return pick(x) if (x.ndim if isinstance(x, np.ndarray) else np.ndim(x)) else x  # (np.ndim of an array: slower)


class _PerReplica:
    """A dataclass of figures per replica: arrays over replicas, or one number for all (:meth:`take`)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # the subclasses' (@dataclass): fields() takes them

    def take(self, pick: Callable[[np.ndarray], np.ndarray]) -> Self:
        """The figures of some replicas: ``pick`` maps a figure of all replicas to those (:func:`_replicas`).

        Every field is taken, so a field added later is too.
        """
        return type(self)(**{k: _replicas(pick, getattr(self, k)) for k in self._field_names()})

    @classmethod
    @cache
    def _field_names(cls) -> tuple[str, ...]:
        """The fields' names, once per class (:func:`dataclasses.fields` takes microseconds, per block)."""
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class StepCosts(_PerReplica):
    """Per-GPU costs of one serving step of a replica (arrays broadcast over replicas).

    Attributes
    ----------
    dense_bytes : ndarray
        Weight bytes every step reads: attention, dense MLPs, shared experts, Mamba mixers and
        the output head (per GPU). [B]
    expert_bytes : ndarray
        Routed-expert weight bytes the GPU holds (0 for a dense model). [B]
    n_experts, experts_per_token : ndarray
        ``E`` and ``k`` of the expert layers (1 and 1 for a dense model). [1]
    expert_gpus : ndarray
        GPUs the experts are spread over whole (expert parallel; 1 where each GPU holds a slice
        of every expert). [1]
    expert_token_scale : ndarray
        Tokens routed in the expert group per token of this rank (the data-parallel ranks). [1]
    decode_flops_per_token, prefill_flops_per_token : ndarray
        Matrix-multiply FLOPs per token outside the routed experts, per GPU; decode includes the
        output head, prefill computes it only for a sequence's last token. [FLOP]
    expert_flops_per_token : ndarray
        Routed-expert FLOPs per token on the GPU (``2 k`` experts' weights, per GPU share). [FLOP]
    kv_bytes_per_token, window_kv_bytes_per_token : ndarray
        KV-cache bytes per context token read in decode, in full-attention and in windowed
        layers (per GPU). [B]
    window_tokens : ndarray
        Attention window of the windowed layers (0: none). [1]
    attention_flops, window_attention_flops : ndarray
        Decode attention FLOPs per token per context token, full and windowed layers. [FLOP]
    prefill_attention_flops, prefill_window_attention_flops : ndarray
        The same for prefilled tokens (MLA prefills in its expanded form). [FLOP]
    state_bytes_per_sequence : ndarray
        SSM state read and written per decoding sequence and step. [B]
    collective_steps : ndarray
        Latency-bound steps of the step's collectives (all-reduces, all-to-all dispatch and
        combine; :func:`twin.physics.interconnect.allreduce_steps`). [1]
    collective_bytes_per_token : ndarray
        Bytes the GPU sends in them per token in the step. [B]
    """

    dense_bytes: FloatArray
    expert_bytes: FloatArray
    n_experts: FloatArray
    experts_per_token: FloatArray
    expert_gpus: FloatArray
    expert_token_scale: FloatArray
    decode_flops_per_token: FloatArray
    prefill_flops_per_token: FloatArray
    expert_flops_per_token: FloatArray
    kv_bytes_per_token: FloatArray
    window_kv_bytes_per_token: FloatArray
    window_tokens: FloatArray
    attention_flops: FloatArray
    window_attention_flops: FloatArray
    prefill_attention_flops: FloatArray
    prefill_window_attention_flops: FloatArray
    state_bytes_per_sequence: FloatArray
    collective_steps: FloatArray
    collective_bytes_per_token: FloatArray

    @classmethod
    def stack(cls, items: list[StepCosts]) -> StepCosts:
        """One set of costs per item, stacked along a last axis."""
        return cls(**{f.name: np.array([np.asarray(getattr(i, f.name)) for i in items]) for f in fields(cls)})

    @cached_property
    def has_experts(self) -> bool:
        """Whether some column routes experts (else :func:`step` skips the expert group)."""
        return bool(np.any(self.expert_bytes) or np.any(self.expert_flops_per_token))

    @cached_property
    def has_windows(self) -> bool:
        """Whether some column has windowed-attention layers (else :func:`step` skips their terms)."""
        windowed = (self.window_kv_bytes_per_token, self.window_attention_flops, self.prefill_window_attention_flops)
        return bool(any(np.any(w) for w in windowed))


@dataclass(frozen=True)
class ServingDevice(_PerReplica):
    """What one GPU of a replica achieves (arrays broadcast like :class:`StepCosts`).

    Attributes
    ----------
    bandwidth_b_s : ndarray
        Achieved HBM bandwidth of the weight reads of dense matrix multiplies. [B/s]
    kv_bandwidth_b_s : ndarray
        Achieved HBM bandwidth of attention reading the KV cache (and SSM state). [B/s]
    expert_bandwidth_b_s : ndarray
        Achieved HBM bandwidth of the grouped expert kernels reading routed experts. [B/s]
    peak_bandwidth_b_s : ndarray
        Datasheet HBM bandwidth (the memory activity is traffic over it). [B/s]
    flop_s : ndarray
        Achieved BF16 FLOP/s at boost clock of dense matrix multiplies and attention. [FLOP/s]
    expert_flop_s : ndarray
        Achieved BF16 FLOP/s at boost clock of the grouped expert kernels. [FLOP/s]
    link_bandwidth_b_s : ndarray
        Achieved per-GPU bandwidth of the scale-up link (NVLink). [B/s]
    link_latency_s : ndarray
        Latency of one step of a collective, ``alpha``. [s]
    overhead_s : ndarray
        Host time per step in which the GPU idles (scheduling, sampling, launch). [s]
    overhead_per_sequence_s : ndarray
        Host time per running sequence and step. [s]
    expert_sm_activity : ndarray
        SM activity the grouped expert kernels add while they run, beyond what their FLOPs need
        (block-scaled FP8 weights rescaled on the CUDA cores; 0 for other formats). [1]
    gap_power_fraction : ndarray
        Share of the power a GPU draws whenever its kernels run (the power model's ``k_static`` and
        ``k_uncore``) that it keeps drawing in the gaps of a step it is not computing in (host
        time, collectives' waits, an expert-parallel group's wait for its busiest GPU): the
        clocks stay up across gaps of milliseconds (:meth:`Step.power_busy`). [1]
    roofline_exponent : ndarray
        ``n`` of the smooth roofline (:func:`roofline_time_s`; large: the sharp maximum). [1]
    expert_routing_skew : ndarray
        Squared coefficient of variation of expert popularity (:func:`experts_touched_fraction`;
        0: uniform routing). [1]
    """

    bandwidth_b_s: FloatArray
    kv_bandwidth_b_s: FloatArray
    expert_bandwidth_b_s: FloatArray
    peak_bandwidth_b_s: FloatArray
    flop_s: FloatArray
    expert_flop_s: FloatArray
    expert_sm_activity: FloatArray
    link_bandwidth_b_s: FloatArray
    link_latency_s: FloatArray
    overhead_s: FloatArray
    overhead_per_sequence_s: FloatArray
    gap_power_fraction: FloatArray
    roofline_exponent: FloatArray
    expert_routing_skew: FloatArray

    @cached_property
    def linear_roofline(self) -> bool:
        """Whether every column's roofline is the sum (``n = 1``: :func:`roofline_time_s` takes no powers)."""
        return bool(np.all(np.asarray(self.roofline_exponent) == 1.0))


@dataclass(frozen=True)
class Step:
    """One step: its time and what it moved and computed (per GPU)."""

    time_s: FloatArray
    host_s: FloatArray
    collective_s: FloatArray
    bytes: FloatArray
    flops: FloatArray
    kernel_s: FloatArray
    #: The mean GPU's grouped expert kernels' time (0 for a dense model). [s]
    expert_s: FloatArray

    @property
    def busy(self) -> FloatArray:
        """Share of the step in which a GPU's kernels run (not waiting on the host or on peers). [1]

        In an expert-parallel group the step waits for the busiest GPU; the mean GPU's own
        kernels end sooner (``kernel_s``), and it waits the rest, like a collective.
        """
        t = np.where(self._ran, self.time_s, 1.0)
        return np.asarray(np.where(self._ran, np.clip(self.kernel_s / t, 0.0, 1.0), 0.0))

    def power_busy(self, dev: ServingDevice) -> FloatArray:
        """The busy share the power model takes: :attr:`busy` and ``gap_power_fraction`` of the rest. [1]

        Between a step's kernels (host time, collectives, the wait for an expert-parallel group's
        busiest GPU) the GPU stays at its clocks: gaps of milliseconds are far shorter than the
        driver's drop to a lower performance state, so part of the power drawn while kernels run
        (clock tree, L2, memory controllers) goes on [1]_. The share is fitted with the rest of
        the power model (``twin calibrate``), not measured directly.

        References
        ----------
        .. [1] NVIDIA, *NVML API Reference*, ``nvmlDeviceGetPerformanceState`` (P0 is held while the
           GPU is in use; the lower P-states follow seconds of idleness, not milliseconds).
        """
        b = self.busy
        return np.asarray(np.where(self._ran, b + dev.gap_power_fraction * (1.0 - b), 0.0))

    def mem_activity(self, dev: ServingDevice) -> FloatArray:
        """HBM traffic as a share of the datasheet bandwidth over the step. [1]"""
        return np.asarray(np.clip(self.bytes / (self._time_or_inf * dev.peak_bandwidth_b_s), 0.0, 1.0))

    def sm_activity(self, dev: ServingDevice) -> FloatArray:
        """SM activity over the step, as a share of the achievable at boost clock. [1]

        What its FLOPs need, and what its expert kernels add while they run (``dev.expert_sm_activity``).
        """
        t = self._time_or_inf
        extra = dev.expert_sm_activity * self.expert_s / t
        return np.asarray(np.clip(self.flops / (t * dev.flop_s) + extra, 0.0, 1.0))

    @cached_property
    def _ran(self) -> BoolArray:
        """Where the step takes time (taken once for its shares above)."""
        return np.asarray(self.time_s > 0)

    @cached_property
    def _time_or_inf(self) -> FloatArray:
        """The step's time, infinite where it takes none (its rates are then 0)."""
        return np.asarray(np.where(self._ran, self.time_s, np.inf))


def experts_touched_fraction(
    tokens: Numeric, n_experts: Numeric, experts_per_token: Numeric, skew: Numeric = 0.0
) -> FloatArray:
    """Share of a layer's experts that ``tokens`` tokens touch (an expert is read if any token picks it).

    Parameters
    ----------
    tokens : numeric
        Tokens in the step, ``T``. [1]
    n_experts, experts_per_token : numeric
        ``E`` and ``k``. [1]
    skew : numeric
        Squared coefficient of variation of the experts' popularity, ``s`` (0: uniform routing). [1]

    Returns
    -------
    numpy.ndarray
        Uniform routing: ``1 - (1 - k/E)**T``. With popularity spread as a gamma distribution of
        squared coefficient of variation ``s`` (routers are not uniform: a few experts draw more
        tokens, which is why expert-parallel engines rebalance them [1]_), the mean over experts
        of ``1 - exp(-T r)``: ``1 - (1 + s T r)**(-1/s)`` with ``r = -ln(1 - k/E)``, fewer than
        uniform. [1]

    References
    ----------
    .. [1] DeepSeek-AI, EPLB README (expert-parallel load balancer: "different experts may have
       varying loads"), github.com/deepseek-ai/EPLB.

    Examples
    --------
    One token of Mixtral (2 of 8) reads a quarter of the experts; 256 tokens read all; skewed
    routing touches fewer at 10 tokens:

    >>> experts_touched_fraction([1, 256], 8, 2).round(6)
    array([0.25, 1.  ])
    >>> experts_touched_fraction(10, 128, 8, [0.0, 1.0]).round(3)
    array([0.476, 0.392])
    """
    t = np.maximum(np.asarray(tokens, dtype=np.float64), 0.0)
    miss = np.clip(
        1.0 - np.asarray(experts_per_token, dtype=np.float64) / np.asarray(n_experts, dtype=np.float64), 0, 1
    )
    s = np.asarray(skew, dtype=np.float64)
    uniform = 1.0 - np.power(miss, t)
    rate = -np.log(np.maximum(miss, 1e-300))
    skewed = 1.0 - np.power(1.0 + np.maximum(s, 1e-12) * t * rate, -1.0 / np.maximum(s, 1e-12))
    return np.asarray(np.where(s > 0, skewed, uniform))


def busiest_share(mean: Numeric, sd: Numeric, gpus: Numeric) -> FloatArray:
    """Expected largest of ``gpus`` loads with a given mean and spread (Blom's approximation).

    An expert-parallel step waits for its busiest GPU. With each GPU's load near-normal,
    ``E[max] = mean + sd * z`` with ``z = Phi^-1((G - 0.375) / (G + 0.25))`` [1]_ (0 for one GPU).

    Parameters
    ----------
    mean, sd : numeric
        Mean and standard deviation of one GPU's load. [any]
    gpus : numeric
        GPUs, ``G``. [1]

    Returns
    -------
    numpy.ndarray
        [same unit as ``mean``]

    References
    ----------
    .. [1] G. Blom, *Statistical Estimates and Transformed Beta-Variables*, Wiley, 1958
       (plotting position ``(i - 3/8) / (n + 1/4)``; for ``n = 2, 4, 8`` it gives 0.59, 1.04,
       1.43 against the exact 0.56, 1.03, 1.42 standard deviations).

    Examples
    --------
    >>> busiest_share(10.0, 2.0, [1, 2, 8]).round(2)
    array([10.  , 11.18, 12.87])
    """
    from scipy.special import ndtri

    g = np.maximum(np.asarray(gpus, dtype=np.float64), 1.0)
    z = np.where(g > 1.0, ndtri((g - 0.375) / (g + 0.25)), 0.0)
    return np.asarray(np.asarray(mean, dtype=np.float64) + np.asarray(sd, dtype=np.float64) * z)


def roofline_time_s(memory_s: Numeric, compute_s: Numeric, exponent: Numeric, linear: bool | None = None) -> FloatArray:
    """Time of a kernel that moves data for ``memory_s`` and computes for ``compute_s``.

    The roofline takes the larger of the two [1]_; a real kernel near the ridge overlaps them
    imperfectly (a matrix multiply with few rows neither streams its weights at full bandwidth
    nor keeps the tensor cores full), so the twin takes the smooth maximum
    ``(t_m**n + t_c**n)**(1/n)``: the sum at ``n = 1``, the maximum as ``n`` grows. ``n`` is
    fitted per accelerator with its achieved fractions.

    Parameters
    ----------
    memory_s, compute_s : numeric
        Times at the achieved bandwidth and at the achieved FLOP/s. [s]
    exponent : numeric
        ``n >= 1``. [1]
    linear : bool, optional
        Whether every ``n`` is 1 (:attr:`ServingDevice.linear_roofline`, known once per run);
        None: looked at here.

    Returns
    -------
    numpy.ndarray
        [s]

    Examples
    --------
    >>> roofline_time_s([3.0, 3.0, 3.0], [4.0, 4.0, 0.0], [1.0, 2.0, 2.0])
    array([7., 5., 3.])
    """
    a = np.asarray(memory_s, dtype=np.float64)
    b = np.asarray(compute_s, dtype=np.float64)
    n = np.asarray(exponent, dtype=np.float64)
    if np.all(n == 1.0) if linear is None else linear:  # the sum (no powers to take)
        return np.asarray(a + b)
    hi = np.maximum(a, b)
    lo = np.minimum(a, b)
    ratio = np.divide(lo, hi, out=np.zeros_like(hi), where=hi > 0)
    return np.asarray(hi * (1.0 + ratio**n) ** (1.0 / n))


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

    >>> from twin.physics.serving import example_costs
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
        which prompts arrive whole, and the result is the mean step (:func:`_expert_mean`). The
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

    >>> from twin.physics.serving import example_costs, example_device
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
    #: :func:`_expert_mean`), or None (one step carrying its prompt tokens). [1]
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
            dense_read_s=_replicas(ranks, self.dense_read_s),
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
            read, flops, t_busiest, t_mean = _expert_mean(c, dev, b, p, self.prompt_tokens, self.clock, n)
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


def _expert_mean(
    c: StepCosts,
    dev: ServingDevice,
    decode: FloatArray,
    prefill: FloatArray,
    prompt_tokens: Numeric | None,
    f: FloatArray,
    n: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`_expert_group` of one step, or the mean over a stream whose prompts arrive whole.

    An engine admits a prompt whole (chunked only past its token budget), so with ``C`` prompt
    tokens per step on average, prompts of ``P`` tokens, the steps carry ``N ~ Poisson(C / P)``
    of them [1]_. The experts a step reads saturate in its tokens (:func:`experts_touched_fraction`):
    a step that prefills reads nearly all of them, the steps between read only what the decode
    batch touches, and the mean read is less than the read of the mean step. Two points carry
    it: the share ``exp(-C / P)`` of steps with no prompt, and the others with
    ``C / (1 - exp(-C / P))`` prompt tokens, which keeps the mean tokens ``C``. With ``P``
    unknown (``None``), or no decode batch (a prefill-only step always carries its prompts), the
    one step carrying ``C``.

    References
    ----------
    .. [1] W. Kwon et al., SOSP 2023, and the vLLM V1 scheduler (a waiting request is scheduled
       with its whole prompt when the token budget allows).

    Examples
    --------
    Qwen3-30B-A3B-like experts (128, 8 per token, uniform routing), 8 decoding sequences and 40
    prompt tokens a step in prompts of 1 280. One step reading for 48 tokens touches
    ``1 - (120/128)**48 = 0.955`` of the experts. Whole prompts: ``exp(-1/32) = 0.969`` of the
    steps touch ``1 - (120/128)**8 = 0.403``, the rest (1 308 tokens) all, a mean of 0.422:

    >>> import numpy as np
    >>> from dataclasses import replace
    >>> c = replace(example_costs(), expert_bytes=np.array(57.98e9), n_experts=np.array(128.0),
    ...             experts_per_token=np.array(8.0), expert_flops_per_token=np.array(3.6e9))
    >>> d, one = example_device(), np.ones(())
    >>> fluid = _expert_mean(c, d, 8.0 * one, 40.0 * one, None, one, one)[0]
    >>> whole = _expert_mean(c, d, 8.0 * one, 40.0 * one, 1280.0, one, one)[0]
    >>> round(float(fluid / 57.98e9), 3), round(float(whole / 57.98e9), 3)
    (0.955, 0.422)
    """
    if prompt_tokens is None:
        return _expert_group(c, dev, decode + prefill, f, n)
    arrivals = np.divide(prefill, prompt_tokens, out=np.zeros_like(prefill * decode), where=prompt_tokens > 0)
    mixed = (decode > 0) & (arrivals > 0)
    if not np.any(mixed):
        return _expert_group(c, dev, decode + prefill, f, n)
    quiet = np.where(mixed, np.exp(-arrivals), 0.0)  # share of steps without a prompt
    with_prompt = np.where(mixed, prefill / np.where(mixed, -np.expm1(-arrivals), 1.0), prefill)
    none = _expert_group(c, dev, decode + 0.0 * prefill, f, n)
    some = _expert_group(c, dev, decode + with_prompt, f, n)
    out = tuple(np.asarray(quiet * a + (1.0 - quiet) * b) for a, b in zip(none, some, strict=True))
    return out[0], out[1], out[2], out[3]


def _expert_group(
    c: StepCosts, dev: ServingDevice, tokens: FloatArray, f: FloatArray, n: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Experts' bytes, FLOPs and time of a step on the mean GPU, and the busiest GPU's time.

    An expert-parallel step waits for its busiest GPU (that time sets the step's); the others'
    kernels end sooner, and a GPU's power follows its own work.
    """
    g = c.expert_gpus
    held = c.n_experts / g  # experts per GPU
    skew = dev.expert_routing_skew
    q = experts_touched_fraction(tokens * c.expert_token_scale, c.n_experts, c.experts_per_token, skew)
    touched = np.minimum(busiest_share(held * q, np.sqrt(held * q * (1.0 - q)), g), held)
    per_expert = np.divide(c.expert_bytes, held, out=np.zeros_like(held * q), where=held > 0)
    busiest_read = per_expert * touched
    mean_read = per_expert * held * q
    picks = tokens * c.expert_token_scale * c.experts_per_token / g  # expert-token pairs per GPU
    spread = np.sqrt(picks + skew * picks**2 / np.maximum(held, 1.0))  # multinomial plus popularity spread
    heavy = np.divide(busiest_share(picks, spread, g), picks, out=np.ones_like(picks), where=picks > 0)
    mean_flops = tokens * c.expert_flops_per_token
    bw, fl = dev.expert_bandwidth_b_s, dev.expert_flop_s * f
    t_busiest = roofline_time_s(busiest_read / bw, mean_flops * heavy / fl, n)
    t_mean = roofline_time_s(mean_read / bw, mean_flops / fl, n)
    return mean_read, mean_flops, t_busiest, t_mean


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


def example_costs() -> StepCosts:
    """Llama-3.1-8B in BF16 on one GPU: the costs the docstring examples use (hand-computed).

    8.03e9 weights (16.06 GB), of which 0.525e9 are the embedding table (not multiplied);
    131 072 KV bytes per token (32 layers x 8 KV heads x 128 x 2 x 2 B); 4 x 32 heads x 128 x 32
    layers = 524 288 attention FLOPs per token per context token.
    """
    z = np.zeros(())
    one = np.ones(())
    matmul = 2.0 * (8.03e9 - 0.525e9)
    return StepCosts(
        dense_bytes=np.asarray(2.0 * (8.03e9 - 0.525e9)),
        expert_bytes=z,
        n_experts=one,
        experts_per_token=one,
        expert_gpus=one,
        expert_token_scale=one,
        decode_flops_per_token=np.asarray(matmul),
        prefill_flops_per_token=np.asarray(matmul - 2.0 * 0.525e9),
        expert_flops_per_token=z,
        kv_bytes_per_token=np.asarray(131072.0),
        window_kv_bytes_per_token=z,
        window_tokens=z,
        attention_flops=np.asarray(524288.0),
        window_attention_flops=z,
        prefill_attention_flops=np.asarray(524288.0),
        prefill_window_attention_flops=z,
        state_bytes_per_sequence=z,
        collective_steps=z,
        collective_bytes_per_token=z,
    )


def example_device() -> ServingDevice:
    """An H100 at 80 % of its HBM bandwidth and 60 % of its BF16 FLOP/s, no host time."""
    return ServingDevice(
        bandwidth_b_s=np.asarray(0.8 * 3.35e12),
        kv_bandwidth_b_s=np.asarray(0.8 * 3.35e12),
        expert_bandwidth_b_s=np.asarray(0.8 * 3.35e12),
        expert_sm_activity=np.asarray(0.0),
        peak_bandwidth_b_s=np.asarray(3.35e12),
        flop_s=np.asarray(0.6 * 989.4e12),
        expert_flop_s=np.asarray(0.6 * 989.4e12),
        link_bandwidth_b_s=np.asarray(370e9),
        link_latency_s=np.asarray(10e-6),
        overhead_s=np.zeros(()),
        overhead_per_sequence_s=np.zeros(()),
        gap_power_fraction=np.zeros(()),
        roofline_exponent=np.asarray(50.0),
        expert_routing_skew=np.zeros(()),
    )
