"""A language model's architecture, layer kind by layer kind: what serving one token costs.

:class:`Architecture` holds the layer kinds and sizes and gives the parameter counts, bytes and
FLOPs the serving model needs; :mod:`twin.catalog.hf_config` reads one from a Hugging Face
``config.json`` and :func:`twin.catalog.architecture.load_architecture` resolves a model name.

Weight formats: ``bf16``/``fp16`` 2 bytes, ``fp8`` 1 byte (block or channel scales add under
0.01 %; :attr:`Architecture.block_scaled` marks DeepSeek-style 128 x 128 block scales, which the
serving engine runs through other kernels than per-channel scales), ``mxfp4`` 4.25 bits (4-bit
E2M1 values and one 8-bit E8M0 scale per 32; OCP Microscaling Formats (MX) v1.0 spec, 2023,
sec. 5). Which parts a quantised checkpoint keeps in
16 bits comes from its ``modules_to_not_convert`` / ``ignore`` list; embeddings, the output head,
routers and norms stay in 16 bits unless that list says otherwise.

References
----------
.. [1] DeepSeek-AI, "DeepSeek-V3 Technical Report", arXiv 2412.19437, 2024, sec. 2.1.1
   (multi-head latent attention: the cache holds the ``kv_lora_rank`` latent and the
   ``qk_rope_head_dim`` key per token and layer).
.. [2] T. Dao, A. Gu, "Transformers are SSMs" (Mamba-2), arXiv 2405.21060, 2024, sec. 7
   (state ``heads x head_dim x state_size`` per sequence and layer, independent of context).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twin.errors import InvalidInputError

#: Bytes per stored weight or cache value of each format (module docstring).
BYTES_PER_VALUE: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "mxfp4": 4.25 / 8.0}


class ArchitectureError(InvalidInputError, ValueError):
    """A model config the twin cannot read: names the file and the fields at fault."""

    def __init__(self, source: str, message: str, fields: tuple[str, ...] = ()) -> None:
        self.source = source
        self.fields = fields
        super().__init__(f"{source}: {message}")


@dataclass(frozen=True)
class Architecture:
    """A decoder-only language model, layer kind by layer kind. Counts are per model (all layers).

    ``n_*_layers`` count layers by their token mixer (full or windowed attention, Mamba-2) and
    by their MLP (dense, mixture of experts; a hybrid's MLP-only layers are dense layers with no
    mixer). Sizes are in elements; :attr:`weight_format` and :attr:`quantized` give the bytes.
    """

    name: str
    source: str
    n_layers: int
    d_model: int
    vocab_size: int
    tied_embeddings: bool
    n_heads: int
    n_kv_heads: int
    head_dim: int
    n_full_attention_layers: int
    n_window_layers: int = 0
    attention_window: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    n_mamba_layers: int = 0
    mamba_heads: int = 0
    mamba_head_dim: int = 0
    ssm_state: int = 0
    ssm_groups: int = 0
    conv_kernel: int = 0
    n_dense_mlp_layers: int = 0
    dense_intermediate: int = 0
    gated_mlp: bool = True
    n_moe_layers: int = 0
    n_experts: int = 0
    experts_per_token: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0
    weight_format: str = "bf16"
    quantized: frozenset[str] = field(default_factory=frozenset)
    block_scaled: bool = False
    multimodal: bool = False
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ parameter counts
    @property
    def is_mla(self) -> bool:
        """True for multi-head latent attention."""
        return self.kv_lora_rank > 0

    @property
    def n_attention_layers(self) -> int:
        """Layers with an attention mixer (full or windowed)."""
        return self.n_full_attention_layers + self.n_window_layers

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model."""
        return self.n_moe_layers > 0 and self.n_experts > 1

    @property
    def attention_params_per_layer(self) -> float:
        """Projection weights of one attention layer."""
        d, h, kv, hd = self.d_model, self.n_heads, self.n_kv_heads, self.head_dim
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = d * self.q_lora_rank + self.q_lora_rank * h * qk if self.q_lora_rank else d * h * qk
            kv_a = d * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv_b = self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim)
            return float(q + kv_a + kv_b + h * self.v_head_dim * d)
        return float(d * h * hd + 2 * d * kv * hd + h * hd * d)

    @property
    def mamba_inner(self) -> int:
        """Mamba-2 inner width, heads x head dim."""
        return self.mamba_heads * self.mamba_head_dim

    @property
    def mamba_params_per_layer(self) -> float:
        """Weights of one Mamba-2 mixer (in/out projections and the convolution)."""
        if not self.n_mamba_layers:
            return 0.0
        inner, gs = self.mamba_inner, self.ssm_groups * self.ssm_state
        in_proj = self.d_model * (2 * inner + 2 * gs + self.mamba_heads)
        conv = (inner + 2 * gs) * self.conv_kernel
        return float(in_proj + conv + inner * self.d_model + 3 * self.mamba_heads + inner)

    def _mlp(self, intermediate: int) -> float:
        return float((3 if self.gated_mlp else 2) * self.d_model * intermediate)

    @property
    def expert_params(self) -> float:
        """Weights of all routed experts of all layers."""
        return self.n_moe_layers * self.n_experts * self._mlp(self.expert_intermediate)

    @property
    def params_by_part(self) -> dict[str, float]:
        """Parameter counts of each part of the model (embedding and output head apart)."""
        head = 0.0 if self.tied_embeddings else float(self.vocab_size * self.d_model)
        router = self.n_moe_layers * self.d_model * self.n_experts if self.is_moe else 0.0
        return {
            "embedding": float(self.vocab_size * self.d_model),
            "lm_head": head,
            "attention": self.n_attention_layers * self.attention_params_per_layer,
            "mamba": self.n_mamba_layers * self.mamba_params_per_layer,
            "dense_mlp": self.n_dense_mlp_layers * self._mlp(self.dense_intermediate),
            "shared_experts": self.n_moe_layers * self._mlp(self.shared_intermediate),
            "router": float(router),
            "experts": self.expert_params,
        }

    @property
    def params(self) -> float:
        """All parameters."""
        return float(sum(self.params_by_part.values()))

    @property
    def active_params(self) -> float:
        """Parameters a token passes through: all but the unrouted experts."""
        unused = self.expert_params * (1.0 - self.experts_per_token / self.n_experts) if self.is_moe else 0.0
        return self.params - unused

    @property
    def matmul_params_per_token(self) -> float:
        """Weights multiplied per token, output head included, embedding lookup excluded."""
        parts = self.params_by_part
        head = parts["lm_head"] if not self.tied_embeddings else parts["embedding"]
        routed = self.expert_params * self.experts_per_token / self.n_experts if self.is_moe else 0.0
        return head + sum(parts[k] for k in ("attention", "mamba", "dense_mlp", "shared_experts", "router")) + routed

    # ------------------------------------------------------------------ bytes
    def bytes_per_weight(self, part: str, weight_format: str | None = None) -> float:
        """Bytes per weight of ``part`` (a :attr:`params_by_part` key) in a format (default: the model's)."""
        fmt = weight_format or self.weight_format
        quantized = self.quantized if weight_format is None else default_quantized(fmt)
        if part in quantized:
            return BYTES_PER_VALUE[fmt]
        return BYTES_PER_VALUE["bf16"]

    def weight_bytes_by_part(self, weight_format: str | None = None) -> dict[str, float]:
        """Bytes of each part's weights in HBM."""
        return {k: v * self.bytes_per_weight(k, weight_format) for k, v in self.params_by_part.items()}

    def kv_bytes_per_token_layer(self, kv_bytes_per_value: float = 2.0) -> float:
        """KV-cache bytes one token adds in one attention layer (K and V, or MLA's latent)."""
        if self.is_mla:
            return (self.kv_lora_rank + self.qk_rope_head_dim) * kv_bytes_per_value
        return 2.0 * self.n_kv_heads * self.head_dim * kv_bytes_per_value

    def kv_bytes_per_token(self, kv_bytes_per_value: float = 2.0) -> float:
        """KV-cache bytes per context token over all attention layers (windowed ones included)."""
        return self.n_attention_layers * self.kv_bytes_per_token_layer(kv_bytes_per_value)

    def state_bytes_per_sequence(self, state_bytes_per_value: float = 4.0) -> float:
        """Mamba-2 state of one sequence over all Mamba layers: SSM state plus convolution window."""
        if not self.n_mamba_layers:
            return 0.0
        ssm = self.mamba_heads * self.mamba_head_dim * self.ssm_state * state_bytes_per_value
        conv = (self.conv_kernel - 1) * (self.mamba_inner + 2 * self.ssm_groups * self.ssm_state) * 2.0
        return self.n_mamba_layers * (ssm + conv)

    # ------------------------------------------------------------------ FLOPs
    def attention_flops_per_context_token(self, decode: bool = True) -> float:
        """FLOPs of one token attending to one context token, per attention layer.

        Scores and the weighted sum each cost 2 FLOPs per multiply-add. MLA decodes in the
        absorbed form (the cache's latent acts as one shared key/value head of width
        ``kv_lora_rank``) and prefills in the expanded one [1]_.
        """
        h = self.n_heads
        if self.is_mla:
            if decode:
                return 2.0 * h * (2 * self.kv_lora_rank + self.qk_rope_head_dim)
            return 2.0 * h * (self.qk_nope_head_dim + self.qk_rope_head_dim + self.v_head_dim)
        return 4.0 * h * self.head_dim

    @property
    def sublayers(self) -> int:
        """Mixers plus MLP blocks: each ends in one tensor-parallel all-reduce."""
        mixers = self.n_attention_layers + self.n_mamba_layers
        return mixers + self.n_dense_mlp_layers + self.n_moe_layers

    def summary(self) -> dict[str, Any]:
        """The numbers a user checks against a model card."""
        return {
            "model": self.name,
            "params_b": round(self.params / 1e9, 3),
            "active_params_b": round(self.active_params / 1e9, 3),
            "layers": self.n_layers,
            "weight_format": self.weight_format,
            "kv_bytes_per_token": self.kv_bytes_per_token(),
            "notes": list(self.notes),
        }


def default_quantized(fmt: str) -> frozenset[str]:
    """The parts of a model a checkpoint in ``fmt`` quantises when its config does not say."""
    if fmt in ("bf16", "fp16", "fp32"):
        return frozenset()
    if fmt == "mxfp4":
        return frozenset({"experts"})
    return frozenset({"attention", "mamba", "dense_mlp", "shared_experts", "experts"})
