"""A serving replica: a model laid out over GPUs, and what one step costs each GPU.

Layouts, as vLLM runs them (``--tensor-parallel-size``, ``--enable-expert-parallel``,
``--data-parallel-size``):

* **tensor parallel** ``tp``: attention heads, MLP columns, Mamba heads and the vocabulary of
  the output head split over ``tp`` GPUs; two partial sums per layer (after the mixer and after
  the MLP) are all-reduced [1]_. KV heads split too, but never below one per GPU (a model with
  fewer KV heads than GPUs replicates them); multi-head latent attention keeps the whole latent
  cache on every GPU [2]_.
* **expert parallel**: whole experts spread over all the replica's GPUs instead of each expert
  split ``tp`` ways. With one attention rank the tokens are already on every GPU and the expert
  outputs are summed by the same all-reduce.
* **data-parallel attention** ``dp`` (with expert parallel): ``dp`` ranks each run attention
  for their own sequences (their own KV cache and token budget) and exchange tokens with the
  experts' GPUs by an all-to-all dispatch and combine per expert layer [3]_. A replica then has
  ``tp x dp`` GPUs and ``dp`` times the sequences of one rank.

Costs are per GPU and per token of the GPU's own rank, in BF16-equivalent FLOPs: a
matrix multiply on FP8 weights runs on the FP8 tensor cores (W8A8, as vLLM serves FP8
checkpoints), so its FLOPs count ``bf16_flop_s / fp8_flop_s`` times; MXFP4 weights are expanded
to 16 bits in the kernel (W4A16) and run at the BF16 rate [EST]. Activations, the KV cache and
collectives move BF16 values unless the workload says otherwise.

References
----------
.. [1] M. Shoeybi et al., "Megatron-LM: Training Multi-Billion Parameter Language Models Using
   Model Parallelism", arXiv 1909.08053, 2019, sec. 3 (two all-reduces per layer in the forward
   pass).
.. [2] vLLM 0.11 MLA attention backends: the compressed KV latent is not split over
   tensor-parallel ranks (docs.vllm.ai, "Data Parallel Deployment": MLA models duplicate the KV
   cache across TP ranks, which is why DP attention is offered for them).
.. [3] docs.vllm.ai, "Expert Parallel Deployment" and "Data Parallel Deployment" (vLLM 0.11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin.catalog import AcceleratorSpec
from twin.catalog.architecture import BYTES_PER_VALUE, Architecture
from twin.physics.interconnect import allreduce_bytes_per_gpu, allreduce_steps, alltoall_bytes_per_gpu, alltoall_steps
from twin.physics.serving import sequences_that_fit
from twin.physics.step_costs import ServingDevice, StepCosts

#: Bytes of one activation value crossing the link (BF16).
ACTIVATION_BYTES = 2.0
#: Share of HBM vLLM takes for weights and KV cache: its ``gpu_memory_utilization`` default [3]_.
GPU_MEMORY_UTILIZATION = 0.9


@dataclass(frozen=True)
class Layout:
    """How a replica spreads a model over its GPUs (module docstring)."""

    tensor_parallel: int = 1
    expert_parallel: bool = False
    data_parallel: int = 1

    @property
    def gpus(self) -> int:
        """GPUs in one replica."""
        return self.tensor_parallel * self.data_parallel

    def describe(self) -> str:
        """Short text, e.g. ``TP4 + EP4``."""
        text = f"TP{self.tensor_parallel}"
        if self.data_parallel > 1:
            text = f"DP{self.data_parallel}" + (f" x TP{self.tensor_parallel}" if self.tensor_parallel > 1 else "")
        if self.expert_parallel and self.gpus > 1:
            text += f" + EP{self.gpus}"
        return text


def compute_scale(weight_format: str, acc: AcceleratorSpec) -> float:
    """BF16-equivalent FLOPs per FLOP on weights of ``weight_format`` (module docstring)."""
    if weight_format == "fp8":
        return acc.bf16_flop_s / acc.fp8_flop_s
    return 1.0


def weight_bytes_per_gpu(arch: Architecture, layout: Layout, weight_format: str | None = None) -> float:
    """HBM bytes of the weights one GPU holds."""
    by = arch.weight_bytes_by_part(weight_format)
    tp = layout.tensor_parallel
    experts = by["experts"] / (layout.gpus if layout.expert_parallel else tp)
    return float(sum(v for k, v in by.items() if k != "experts") / tp + experts)


def kv_bytes_per_token_gpu(arch: Architecture, layout: Layout, kv_bytes_per_value: float) -> float:
    """KV-cache bytes one context token takes on one GPU, per attention layer."""
    per_layer = arch.kv_bytes_per_token_layer(kv_bytes_per_value)
    if arch.is_mla:
        return per_layer  # the latent is whole on every tensor-parallel GPU
    share = max(arch.n_kv_heads / layout.tensor_parallel, 1.0) / arch.n_kv_heads
    return per_layer * share


def step_costs(
    arch: Architecture,
    layout: Layout,
    acc: AcceleratorSpec,
    weight_format: str | None = None,
    kv_bytes_per_value: float = 2.0,
    state_bytes_per_value: float = 4.0,
) -> StepCosts:
    """Per-GPU :class:`~twin.physics.step_costs.StepCosts` of a replica (module docstring).

    Examples
    --------
    Llama-3.1-8B on one H100: 15.0 GB read per step (all weights but the embedding table) and
    131 kB of KV per context token:

    >>> from twin.catalog import accelerator_spec
    >>> from twin.catalog.architecture import load_architecture
    >>> c = step_costs(load_architecture("meta-llama/Llama-3.1-8B-Instruct"), Layout(), accelerator_spec("H100-SXM"))
    >>> round(float(c.dense_bytes) / 1e9, 2), float(c.kv_bytes_per_token)
    (15.01, 131072.0)
    """
    fmt = weight_format or arch.weight_format
    tp, dp = layout.tensor_parallel, layout.data_parallel
    parts = arch.params_by_part
    by = arch.weight_bytes_by_part(weight_format)
    quantized = arch.quantized if weight_format is None else None

    def scale(part: str) -> float:
        q = part in quantized if quantized is not None else arch.bytes_per_weight(part, fmt) < 2.0
        return compute_scale(fmt, acc) if q else 1.0

    head_part = "embedding" if arch.tied_embeddings else "lm_head"
    head_flops = 2.0 * parts[head_part] * scale(head_part)
    body = ("attention", "mamba", "dense_mlp", "shared_experts", "router")
    body_flops = sum(2.0 * parts[k] * scale(k) for k in body)
    dense_bytes = (sum(by[k] for k in body) + by[head_part]) / tp
    if arch.is_moe:
        e, k = float(arch.n_experts), float(arch.experts_per_token)
        groups = float(layout.gpus) if layout.expert_parallel else 1.0
        held = by["experts"] / (layout.gpus if layout.expert_parallel else tp)
        expert_flops = 2.0 * arch.expert_params * (k / e) * scale("experts") / tp
    else:
        e = k = groups = 1.0
        held = expert_flops = 0.0
    kv = kv_bytes_per_token_gpu(arch, layout, kv_bytes_per_value)
    heads = arch.n_heads / tp
    a_dec = arch.attention_flops_per_context_token(decode=True) / arch.n_heads * heads
    a_pre = arch.attention_flops_per_context_token(decode=False) / arch.n_heads * heads
    # Collectives: an all-reduce of every sublayer's output over the tensor-parallel GPUs, and
    # with data-parallel attention an all-to-all dispatch and combine of each routed token.
    steps = float(arch.sublayers * allreduce_steps(tp))
    coll = float(allreduce_bytes_per_gpu(arch.d_model * ACTIVATION_BYTES, tp)) * arch.sublayers
    if dp > 1 and arch.is_moe:
        steps += 2.0 * arch.n_moe_layers * float(alltoall_steps(layout.gpus))
        per_token = 2.0 * arch.experts_per_token * arch.d_model * ACTIVATION_BYTES * arch.n_moe_layers
        coll += float(alltoall_bytes_per_gpu(per_token, layout.gpus))

    def arr(v: float) -> np.ndarray:
        return np.asarray(float(v))

    return StepCosts(
        dense_bytes=arr(dense_bytes),
        expert_bytes=arr(held),
        n_experts=arr(e),
        experts_per_token=arr(k),
        expert_gpus=arr(groups),
        expert_token_scale=arr(dp),
        decode_flops_per_token=arr((body_flops + head_flops) / tp),
        prefill_flops_per_token=arr(body_flops / tp),
        expert_flops_per_token=arr(expert_flops),
        kv_bytes_per_token=arr(kv * arch.n_full_attention_layers),
        window_kv_bytes_per_token=arr(kv * arch.n_window_layers),
        window_tokens=arr(arch.attention_window if arch.n_window_layers else 0),
        attention_flops=arr(a_dec * arch.n_full_attention_layers),
        window_attention_flops=arr(a_dec * arch.n_window_layers),
        prefill_attention_flops=arr(a_pre * arch.n_full_attention_layers),
        prefill_window_attention_flops=arr(a_pre * arch.n_window_layers),
        state_bytes_per_sequence=arr(2.0 * arch.state_bytes_per_sequence(state_bytes_per_value) / tp),
        collective_steps=arr(steps),
        collective_bytes_per_token=arr(coll),
    )


def expert_format(arch: Architecture, weight_format: str | None = None) -> str:
    """Kernel family of the routed experts' weights: ``bf16``, ``fp8``, ``fp8-block`` or ``mxfp4``.

    A checkpoint's own block-scaled FP8 is ``fp8-block``; FP8 asked for by a workload is
    per-channel (what vLLM quantises to on load).
    """
    if arch.bytes_per_weight("experts", weight_format) >= 2.0:
        return "bf16"
    fmt = weight_format or arch.weight_format
    return "fp8-block" if fmt == "fp8" and weight_format is None and arch.block_scaled else fmt


def expert_bandwidth_fraction(acc: AcceleratorSpec, fmt: str) -> float:
    """What the engine's grouped expert kernels achieve of the HBM bandwidth on weights of ``fmt``.

    16-bit and per-channel FP8 experts share the grouped-GEMM kernels' fraction; block-scaled
    FP8 and MXFP4 experts have their own (vLLM 0.11 runs them through other kernels).
    """
    if fmt == "fp8-block":
        return acc.achieved_block_fp8_expert_bandwidth_fraction
    if fmt == "mxfp4":
        return acc.achieved_mxfp4_expert_bandwidth_fraction
    return acc.achieved_expert_bandwidth_fraction


def expert_sm_activity(acc: AcceleratorSpec, fmt: str) -> float:
    """SM activity the grouped expert kernels on weights of ``fmt`` add while they run, beyond their FLOPs.

    Block-scaled FP8 experts (vLLM 0.11's Triton fused-MoE kernel with 128 x 128 block scales)
    rescale every weight block on the SMs' CUDA cores as they stream it: the kernels run at a
    quarter of the HBM bandwidth on H100 (``achieved_block_fp8_expert_bandwidth_fraction``) with
    their SMs busy, not idling on memory. On H100 the fit half's two block-FP8 models (Qwen3-235B-A22B
    FP8, four and eight GPUs) drew 11-21 % more power at batch 8-16 than the power model gave them
    without it, while every other multi-GPU model of that half drew less than it gave (Llama-3.1/3.3-70B,
    Llama-4-Scout, Qwen3-30B-A3B: 13-30 % less). The share is fitted per accelerator (``twin calibrate``);
    other formats add none.
    """
    return acc.block_fp8_expert_sm_activity if fmt == "fp8-block" else 0.0


def serving_device(acc: AcceleratorSpec, expert_formats: Sequence[str] | str = "bf16") -> ServingDevice:
    """What one GPU of ``acc`` achieves in serving (the catalog's fitted fractions).

    ``expert_formats`` gives the experts' weight format of each replica (one value, or one per
    entry of the costs the device goes with): the grouped expert kernels differ by format.
    """

    def arr(v: float) -> np.ndarray:
        return np.asarray(float(v))

    if isinstance(expert_formats, str):
        expert_bw = arr(expert_bandwidth_fraction(acc, expert_formats) * acc.hbm_bandwidth_b_s)
        expert_sm = arr(expert_sm_activity(acc, expert_formats))
    else:
        expert_bw = np.array([expert_bandwidth_fraction(acc, f) * acc.hbm_bandwidth_b_s for f in expert_formats])
        expert_sm = np.array([expert_sm_activity(acc, f) for f in expert_formats])
    return ServingDevice(
        bandwidth_b_s=arr(acc.achieved_bandwidth_fraction * acc.hbm_bandwidth_b_s),
        kv_bandwidth_b_s=arr(acc.achieved_kv_bandwidth_fraction * acc.hbm_bandwidth_b_s),
        expert_bandwidth_b_s=expert_bw,
        expert_sm_activity=expert_sm,
        peak_bandwidth_b_s=arr(acc.hbm_bandwidth_b_s),
        flop_s=arr(acc.achieved_flop_fraction * acc.bf16_flop_s),
        expert_flop_s=arr(acc.achieved_expert_flop_fraction * acc.bf16_flop_s),
        link_bandwidth_b_s=arr(acc.achieved_link_fraction * acc.link_bandwidth_b_s),
        link_latency_s=arr(acc.link_latency_s),
        overhead_s=arr(acc.step_overhead_s),
        overhead_per_sequence_s=arr(acc.step_overhead_per_sequence_s),
        gap_power_fraction=arr(acc.gap_power_fraction),
        roofline_exponent=arr(acc.roofline_exponent),
        expert_routing_skew=arr(acc.expert_routing_skew),
    )


def kv_free_bytes(
    arch: Architecture,
    layout: Layout,
    acc: AcceleratorSpec,
    weight_format: str | None = None,
    memory_utilization: float = GPU_MEMORY_UTILIZATION,
) -> float:
    """HBM left for the KV cache on one GPU of a replica.

    vLLM gives the cache what is left of ``gpu_memory_utilization`` (default 0.9) of HBM after
    the weights [3]_; activations and CUDA graphs take a little more, which is left out.
    """
    return max(memory_utilization * acc.hbm_bytes - weight_bytes_per_gpu(arch, layout, weight_format), 0.0)


def kv_capacity_sequences(
    arch: Architecture,
    layout: Layout,
    acc: AcceleratorSpec,
    context_tokens: float,
    weight_format: str | None = None,
    kv_bytes_per_value: float = 2.0,
) -> float:
    """Sequences of ``context_tokens`` whose cache fits beside the weights on one rank (0: the weights do not fit)."""
    costs = step_costs(arch, layout, acc, weight_format, kv_bytes_per_value)
    return float(sequences_that_fit(kv_free_bytes(arch, layout, acc, weight_format), costs, context_tokens))


__all__ = [
    "ACTIVATION_BYTES",
    "BYTES_PER_VALUE",
    "GPU_MEMORY_UTILIZATION",
    "Layout",
    "compute_scale",
    "expert_bandwidth_fraction",
    "expert_format",
    "kv_capacity_sequences",
    "kv_free_bytes",
    "serving_device",
    "step_costs",
    "weight_bytes_per_gpu",
]
