"""Collective communication inside a model replica, and KV-cache transfer between replicas.

Inside a replica: tensor-parallel all-reduce, expert all-to-all over the scale-up link (NVLink).
Between replicas: the KV cache of a prefilled prompt crossing the scale-out network (InfiniBand
or RoCE, one NIC per GPU) to a decode replica (:func:`kv_transfer_time_s`,
:func:`kv_transfer_energy_j`).

The alpha-beta model of a collective: a latency ``alpha`` per step plus the bytes each GPU sends
over its achieved link bandwidth. A ring all-reduce of ``S`` bytes over ``n`` GPUs takes
``2 (n - 1)`` steps and sends ``2 (n - 1) / n * S`` bytes per GPU [1]_; an all-to-all that
exchanges ``S`` bytes per GPU sends
the ``(n - 1) / n`` share that leaves the GPU [2]_. The achieved link bandwidth is the bus
bandwidth nccl-tests reports (``busbw``), which equals ``2 (n - 1) / n`` times the algorithm
bandwidth for an all-reduce [3]_; the catalog gives it per accelerator with its source.

References
----------
.. [1] P. Patarasuk, X. Yuan, "Bandwidth optimal all-reduce algorithms for clusters of
   workstations", J. Parallel Distrib. Comput. 69(2), 2009 (ring all-reduce sends
   ``2 (n - 1) / n`` of the buffer per node).
.. [2] DeepSeek-AI, DeepEP README (expert-parallel dispatch and combine: each token's hidden state
   goes to the GPUs holding its experts and comes back), github.com/deepseek-ai/DeepEP.
.. [3] NVIDIA, nccl-tests ``doc/PERFORMANCE.md`` (bus bandwidth of an all-reduce is
   ``algbw * 2 (n - 1) / n``), github.com/NVIDIA/nccl-tests.
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray, Numeric

#: Scale-out network figures (parameters.md 6, KV-cache transfer).
#: Achieved scale-out bandwidth per GPU: one 400 Gb/s NIC per GPU (NVIDIA DGX H100 user guide:
#: eight single-port ConnectX-7 at 400 Gb/s for the compute fabric), of which RDMA writes reach
#: about 96 % (``ib_write_bw`` ~ 385 Gb/s of 400 [EST]). [B/s]
SCALE_OUT_BANDWIDTH_B_S = 0.96 * 400e9 / 8.0
#: Latency of one KV transfer besides its bytes: RDMA set-up, one switch hop and completion
#: (InfiniBand NDR one-way latency ~ 1-2 us per hop; a connector's handshake more) [EST]. [s]
SCALE_OUT_LATENCY_S = 20e-6
#: Energy per bit that crosses the scale-out network, both NICs, optics and one switch (the part
#: that moving the bits adds; the NICs' and switches' standing power is not in it): ~5 pJ/bit per
#: 400G NIC end, ~2.5 pJ/bit per pluggable-optics end (8 W per 400G OSFP module: 20 pJ/bit,
#: of which the traffic-dependent share is small), ~5 pJ/bit per switch traversal
#: (51.2 Tb/s switch ASICs ~ 500 W: 10 pJ/bit, half of it traffic-dependent) [EST]. [J/bit]
SCALE_OUT_ENERGY_J_PER_BIT = 15e-12


def allreduce_bytes_per_gpu(message_bytes: Numeric, n_gpus: Numeric) -> FloatArray:
    """Bytes each GPU sends in a ring all-reduce of ``message_bytes``.

    Parameters
    ----------
    message_bytes : numeric
        Size of the buffer being reduced. [B]
    n_gpus : numeric
        GPUs taking part (1: nothing is sent). [1]

    Returns
    -------
    numpy.ndarray
        ``2 (n - 1) / n * message_bytes``. [B]

    Examples
    --------
    >>> float(allreduce_bytes_per_gpu(1e6, 8))
    1750000.0
    >>> float(allreduce_bytes_per_gpu(1e6, 1))
    0.0
    """
    n = np.maximum(np.asarray(n_gpus, dtype=np.float64), 1.0)
    return np.asarray(2.0 * (n - 1.0) / n * np.asarray(message_bytes, dtype=np.float64))


def alltoall_bytes_per_gpu(message_bytes: Numeric, n_gpus: Numeric) -> FloatArray:
    """Bytes each GPU sends in an all-to-all that exchanges ``message_bytes`` per GPU.

    Parameters
    ----------
    message_bytes : numeric
        Data each GPU holds for all destinations together (itself included). [B]
    n_gpus : numeric
        GPUs taking part. [1]

    Returns
    -------
    numpy.ndarray
        ``(n - 1) / n * message_bytes``: the share that leaves the GPU. [B]

    Examples
    --------
    >>> float(alltoall_bytes_per_gpu(8e6, 8))
    7000000.0
    """
    n = np.maximum(np.asarray(n_gpus, dtype=np.float64), 1.0)
    return np.asarray((n - 1.0) / n * np.asarray(message_bytes, dtype=np.float64))


def allreduce_steps(n_gpus: Numeric) -> FloatArray:
    """Latency-bound steps of a ring all-reduce: ``2 (n - 1)`` (reduce-scatter, then all-gather) [1]_.

    Examples
    --------
    >>> allreduce_steps([1, 2, 8])
    array([ 0.,  2., 14.])
    """
    n = np.maximum(np.asarray(n_gpus, dtype=np.float64), 1.0)
    return np.asarray(2.0 * (n - 1.0))


def alltoall_steps(n_gpus: Numeric) -> FloatArray:
    """Latency-bound steps of a pairwise all-to-all: ``n - 1`` (one exchange with each peer) [2]_.

    Examples
    --------
    >>> alltoall_steps([1, 8])
    array([0., 7.])
    """
    n = np.maximum(np.asarray(n_gpus, dtype=np.float64), 1.0)
    return np.asarray(n - 1.0)


def collective_time_s(
    steps: Numeric, bytes_per_gpu: Numeric, link_bandwidth_b_s: Numeric, latency_s: Numeric
) -> FloatArray:
    """Time of a sequence of collectives, alpha-beta model [1]_.

    Parameters
    ----------
    steps : numeric
        Latency-bound steps of all the calls together (:func:`allreduce_steps` per all-reduce,
        :func:`alltoall_steps` per all-to-all). [1]
    bytes_per_gpu : numeric
        Bytes each GPU sends over all the calls. [B]
    link_bandwidth_b_s : numeric
        Achieved per-GPU link (bus) bandwidth. [B/s]
    latency_s : numeric
        Latency of one step, ``alpha`` (a message's launch, flight and synchronisation). [s]

    Returns
    -------
    numpy.ndarray
        ``steps * alpha + bytes / bandwidth``. [s]

    Examples
    --------
    Llama-3-70B decode on 4 H100 at batch 64: 160 all-reduces (two per layer) of 64 x 8192 x 2 B,
    1.5 x 1 MiB each per GPU, over 370 GB/s, 6 steps each of 2 us:

    >>> b = float(allreduce_bytes_per_gpu(64 * 8192 * 2, 4)) * 160
    >>> round(float(collective_time_s(160 * allreduce_steps(4), b, 370e9, 2e-6)) * 1e3, 2)
    2.6
    """
    return np.asarray(
        np.asarray(steps, dtype=np.float64) * np.asarray(latency_s, dtype=np.float64)
        + np.asarray(bytes_per_gpu, dtype=np.float64) / np.asarray(link_bandwidth_b_s, dtype=np.float64)
    )


def pipeline_bubble_fraction(stages: Numeric, microbatches: Numeric) -> FloatArray:
    """Share of a pipeline-parallel training step the stages sit idle (the bubble).

    Parameters
    ----------
    stages : numeric
        Pipeline stages ``p`` (1: no pipeline). [1]
    microbatches : numeric
        Micro-batches per step ``m``. [1]

    Returns
    -------
    numpy.ndarray
        ``(p - 1) / (m + p - 1)``, the idle share of GPipe and 1F1B schedules. [1]

    References
    ----------
    .. [1] D. Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters
       Using Megatron-LM", SC21, arXiv 2104.04473, sec. 2.2.1 (bubble time fraction
       ``(p - 1) / m`` of the ideal time, i.e. ``(p - 1) / (m + p - 1)`` of the step).

    Examples
    --------
    >>> float(pipeline_bubble_fraction(4, 13))
    0.1875
    >>> float(pipeline_bubble_fraction(1, 8))
    0.0
    """
    p = np.maximum(np.asarray(stages, dtype=np.float64), 1.0)
    m = np.maximum(np.asarray(microbatches, dtype=np.float64), 1.0)
    return np.asarray((p - 1.0) / (m + p - 1.0))


def kv_transfer_time_s(kv_bytes_per_gpu: Numeric, bandwidth_b_s: Numeric, latency_s: Numeric) -> FloatArray:
    """Time to move a prompt's KV cache from a prefill replica to a decode replica.

    Each GPU of the prefill replica sends its own share of the cache to its peer in the decode
    replica (same parallel layout) over its own NIC, all GPUs at once (Splitwise [4]_, DistServe
    [5]_), so the transfer takes one GPU's bytes over one NIC.

    Parameters
    ----------
    kv_bytes_per_gpu : numeric
        KV-cache bytes of the prompt one GPU holds. [B]
    bandwidth_b_s : numeric
        Achieved scale-out bandwidth per GPU. [B/s]
    latency_s : numeric
        Latency of one transfer. [s]

    Returns
    -------
    numpy.ndarray
        ``latency + bytes / bandwidth``. [s]

    References
    ----------
    .. [4] P. Patel et al., "Splitwise: Efficient Generative LLM Inference Using Phase Splitting",
       ISCA 2024 (KV cache moved over InfiniBand between prompt and token machines).
    .. [5] Y. Zhong et al., "DistServe: Disaggregating Prefill and Decoding for Goodput-optimized
       Large Language Model Serving", OSDI 2024 (the KV transfer adds to the request's latency).

    Examples
    --------
    Llama-3.1-8B (131 072 B per token) with a 1 000-token prompt over 48 GB/s, 20 us:
    131.072 MB / 48 GB/s = 2.73 ms, plus 0.02 ms:

    >>> round(float(kv_transfer_time_s(1000 * 131072.0, 48e9, 20e-6)) * 1e3, 2)
    2.75
    """
    return np.asarray(
        np.asarray(latency_s, dtype=np.float64)
        + np.asarray(kv_bytes_per_gpu, dtype=np.float64) / np.asarray(bandwidth_b_s, dtype=np.float64)
    )


def kv_transfer_energy_j(kv_bytes: Numeric, energy_j_per_bit: Numeric) -> FloatArray:
    """Energy the scale-out network spends moving ``kv_bytes`` (all the replica's GPUs together).

    Parameters
    ----------
    kv_bytes : numeric
        Bytes moved. [B]
    energy_j_per_bit : numeric
        Energy per bit, NICs, optics and switch together. [J/bit]

    Returns
    -------
    numpy.ndarray
        ``8 bytes x energy per bit``. [J]

    Examples
    --------
    1 GB at 15 pJ/bit: 8e9 x 15e-12 = 0.12 J:

    >>> round(float(kv_transfer_energy_j(1e9, 15e-12)), 6)
    0.12
    """
    return np.asarray(8.0 * np.asarray(kv_bytes, dtype=np.float64) * np.asarray(energy_j_per_bit, dtype=np.float64))
