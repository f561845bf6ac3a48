"""What one serving step costs a GPU, what the GPU achieves, and the step's result: the step model's figures.

:class:`StepCosts` holds a replica's per-GPU costs (weights, FLOPs, KV bytes, collectives; from the
model's architecture and layout, :mod:`twin.serving_costs`), :class:`ServingDevice` what one GPU of
it achieves (fitted once per accelerator, ``twin calibrate``), :class:`Step` a step's time and what
it moved and computed, with the activities the power model takes, and :func:`roofline_time_s` the
time of one group of kernels. The step itself is :mod:`twin.physics.serving`'s; the routed experts'
share of it :mod:`twin.physics.experts`'. :func:`example_costs` and :func:`example_device` are the
docstring examples' Llama-3.1-8B on one H100.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache, cached_property
from typing import Any, ClassVar, Self

import numpy as np

from twin._types import BoolArray, FloatArray, Numeric


def take_replicas(pick: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``pick`` of a figure with an axis of replicas; one number (``ndim`` 0) is every replica's and stays."""
    return pick(x) if (x.ndim if isinstance(x, np.ndarray) else np.ndim(x)) else x  # (np.ndim of an array: slower)


class _PerReplica:
    """A dataclass of figures per replica: arrays over replicas, or one number for all (:meth:`take`)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # the subclasses' (@dataclass): fields() takes them

    def take(self, pick: Callable[[np.ndarray], np.ndarray]) -> Self:
        """The figures of some replicas: ``pick`` maps a figure of all replicas to those (:func:`take_replicas`).

        Every field is taken, so a field added later is too.
        """
        return type(self)(**{k: take_replicas(pick, getattr(self, k)) for k in self._field_names()})

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
