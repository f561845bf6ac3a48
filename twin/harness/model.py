"""A small GPT-style decoder the harness builds itself (fixed seed, no downloaded weights).

Throughput and energy of a decode loop do not depend on trained weights, so the weights are drawn
from a seeded generator (DEPENDENCIES.md 2.2). The model keeps a key/value cache and uses
:func:`torch.nn.functional.scaled_dot_product_attention`. It runs in bfloat16 on CUDA and in
float32 on the CPU.

This module needs torch; nothing else in :mod:`twin.harness` imports it at module level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the decoder.

    Attributes
    ----------
    vocab : int
        Vocabulary size.
    d_model : int
        Width of the residual stream.
    n_layers : int
        Number of transformer blocks.
    n_heads : int
        Attention heads per block (``d_model`` must divide by it).
    max_seq : int
        Longest sequence (prompt + generated tokens) the position table covers.
    mlp_ratio : int
        Width of the MLP hidden layer as a multiple of ``d_model``.
    """

    vocab: int = 1024
    d_model: int = 256
    n_layers: int = 2
    n_heads: int = 4
    max_seq: int = 512
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        for name in ("vocab", "d_model", "n_layers", "n_heads", "max_seq", "mlp_ratio"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"GPTConfig.d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.d_model // self.n_heads


#: Named model sizes. ``tiny`` is the 2.2 M-parameter model of DEPENDENCIES.md 2.2 (CPU and
#: tests); ``small`` (about 0.13 G parameters) and ``7b`` (Llama-7B-like widths, about 6.7 G
#: parameters, 13 GB in bf16) are large enough for decode to become bandwidth-bound on a GPU.
MODEL_PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(),
    "small": GPTConfig(vocab=32000, d_model=768, n_layers=12, n_heads=12, max_seq=4096),
    "7b": GPTConfig(vocab=32000, d_model=4096, n_layers=32, n_heads=32, max_seq=4096),
}


def model_preset(name: str) -> GPTConfig:
    """Return the named model size (see :data:`MODEL_PRESETS`)."""
    from twin.errors import UnknownNameError

    try:
        return MODEL_PRESETS[name]
    except KeyError:
        raise UnknownNameError("harness model", name, sorted(MODEL_PRESETS)) from None


class _Block(nn.Module):
    def __init__(self, cfg: GPTConfig, device: torch.device | str) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.head_dim
        self.ln1 = nn.LayerNorm(d, device=device)
        self.qkv = nn.Linear(d, 3 * d, device=device)
        self.proj = nn.Linear(d, d, device=device)
        self.ln2 = nn.LayerNorm(d, device=device)
        self.fc = nn.Linear(d, cfg.mlp_ratio * d, device=device)
        self.out = nn.Linear(cfg.mlp_ratio * d, d, device=device)

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor], pos: int) -> Any:
        """Run the block on ``x`` (batch, new, d) whose first token sits at position ``pos``."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, self.head_dim).transpose(1, 2) for z in (q, k, v))
        k_cache, v_cache = cache
        k_cache[:, :, pos : pos + t] = k
        v_cache[:, :, pos : pos + t] = v
        if pos == 0:
            # Prefill: causal attention within the prompt.
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            # Decode: one query against every cached key, so no mask is needed.
            att = F.scaled_dot_product_attention(q, k_cache[:, :, : pos + t], v_cache[:, :, : pos + t])
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyGPT(nn.Module):
    """GPT-style decoder with learned positions, pre-norm blocks and an untied output head.

    Parameters
    ----------
    cfg : GPTConfig
        Shape of the model.
    device : str or torch.device
        Where the weights live (``"cpu"`` or ``"cuda"``).
    dtype : torch.dtype
        Weight and activation type (bf16 on CUDA, fp32 on the CPU by default in
        :func:`build_model`).
    """

    def __init__(self, cfg: GPTConfig, device: torch.device | str, dtype: torch.dtype) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab, cfg.d_model, device=device)
        self.pos = nn.Embedding(cfg.max_seq, cfg.d_model, device=device)
        self.blocks = nn.ModuleList(_Block(cfg, device) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model, device=device)
        self.head = nn.Linear(cfg.d_model, cfg.vocab, bias=False, device=device)
        self.to(dtype)

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Type of the weights."""
        return self.head.weight.dtype

    def new_cache(self, batch: int, seq_len: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Allocate an empty key/value cache for ``batch`` sequences of up to ``seq_len`` tokens."""
        if seq_len > self.cfg.max_seq:
            raise ValueError(f"sequence of {seq_len} tokens exceeds max_seq={self.cfg.max_seq}")
        shape = (batch, self.cfg.n_heads, seq_len, self.cfg.head_dim)
        return [
            (
                torch.empty(shape, device=self.device, dtype=self.dtype),
                torch.empty(shape, device=self.device, dtype=self.dtype),
            )
            for _ in self.blocks
        ]

    def forward(self, tokens: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]], pos: int) -> torch.Tensor:
        """Return the logits of the last position for ``tokens`` (batch, new) at ``pos``."""
        t = tokens.shape[1]
        positions = torch.arange(pos, pos + t, device=tokens.device)
        x = self.tok(tokens) + self.pos(positions)
        for block, layer_cache in zip(self.blocks, cache, strict=True):
            x = block(x, layer_cache, pos)
        return self.head(self.ln_f(x[:, -1]))


def build_model(
    cfg: GPTConfig | None = None,
    device: str = "cpu",
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> TinyGPT:
    """Build the decoder with weights drawn from a generator seeded with ``seed``.

    The modules are created on the ``meta`` device and then filled from a private
    :class:`torch.Generator`, so the global torch random state is neither read nor changed.

    Parameters
    ----------
    cfg : GPTConfig, optional
        Shape; the ``tiny`` preset when omitted.
    device : str
        ``"cpu"`` or ``"cuda"`` (``"cuda:N"`` also works).
    seed : int
        Seed of the weight generator.
    dtype : torch.dtype, optional
        Defaults to bfloat16 on CUDA and float32 on the CPU.

    Returns
    -------
    TinyGPT
        The model in eval mode.
    """
    cfg = cfg or GPTConfig()
    dev = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    model = TinyGPT(cfg, device="meta", dtype=dtype).to_empty(device=dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln" in name or name.startswith("ln_"):
                p.fill_(1.0)
            else:
                # GPT-2 initialisation: N(0, 0.02).
                p.normal_(0.0, 0.02, generator=gen)
    return model.eval()


def _elem_bytes(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


@dataclass(frozen=True)
class ModelCost:
    """Work per token of a model, for the roofline fractions the calibration fits.

    Attributes
    ----------
    n_params : int
        All parameters.
    n_matmul_params : int
        Parameters that take part in a matrix product for every token (every weight except the
        two embedding tables, whose rows are only looked up; layer norms included).
    flops_per_token : float
        ``2 * n_matmul_params``: one multiply and one add per weight [FLOP]. Attention scores add
        :meth:`attention_flops` on top.
    weight_bytes : float
        Bytes of the weights a decode step reads (``n_matmul_params`` x element size) [B].
    kv_bytes_per_token : float
        Cache bytes per token of context: 2 (K and V) x layers x d_model x element size [B].
    elem_bytes : int
        Bytes per value of the model's dtype.
    """

    n_params: int
    n_matmul_params: int
    flops_per_token: float
    weight_bytes: float
    kv_bytes_per_token: float
    elem_bytes: int
    n_layers: int
    d_model: int

    def attention_flops(self, context_len: float) -> float:
        """FLOPs of ``QK^T`` and ``AV`` for one query over ``context_len`` keys [FLOP]."""
        return 4.0 * self.n_layers * self.d_model * context_len

    def decode_step_bytes(self, batch: int, context_len: int) -> float:
        """Bytes one decode step moves: all weights once, plus each sequence's cache [B].

        Parameters
        ----------
        batch : int
            Sequences decoded together.
        context_len : int
            Tokens already in each sequence's cache (read), plus the new one (written).
        """
        return self.weight_bytes + batch * (context_len + 1) * self.kv_bytes_per_token

    def prefill_flops(self, batch: int, prompt_len: int) -> float:
        """FLOPs of a causal prefill of ``batch`` prompts of ``prompt_len`` tokens [FLOP]."""
        # Causal attention: token i attends to i + 1 keys; sum over i is L(L+1)/2.
        attn = self.attention_flops(1.0) * prompt_len * (prompt_len + 1) / 2.0
        return batch * (prompt_len * self.flops_per_token + attn)

    def as_dict(self) -> dict[str, float]:
        """Plain mapping for the run summary."""
        return asdict(self)


def model_cost(model: TinyGPT) -> ModelCost:
    """Count parameters, FLOPs per token and bytes per decode step of ``model``."""
    n_params = sum(p.numel() for p in model.parameters())
    embed = model.tok.weight.numel() + model.pos.weight.numel()
    n_matmul = n_params - embed
    elem = _elem_bytes(model.dtype)
    cfg = model.cfg
    return ModelCost(
        n_params=n_params,
        n_matmul_params=n_matmul,
        flops_per_token=2.0 * n_matmul,
        weight_bytes=float(n_matmul * elem),
        kv_bytes_per_token=float(2 * cfg.n_layers * cfg.d_model * elem),
        elem_bytes=elem,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
    )


def random_prompts(
    batch: int, prompt_len: int, vocab: int, generator: torch.Generator, device: torch.device | str
) -> torch.Tensor:
    """Draw a (batch, prompt_len) tensor of token ids from ``generator`` (on the CPU)."""
    ids = torch.randint(0, vocab, (batch, prompt_len), generator=generator)
    return ids.to(device)


@torch.inference_mode()
def prefill(
    model: TinyGPT, prompts: torch.Tensor, cache_len: int
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Run the prompt batch through the model and pick the first generated token of each.

    Parameters
    ----------
    model : TinyGPT
        The decoder.
    prompts : torch.Tensor
        Token ids, shape (batch, prompt_len), on the model's device.
    cache_len : int
        Capacity of the cache to allocate (prompt + tokens to generate).

    Returns
    -------
    next_tokens : torch.Tensor
        Shape (batch, 1): the greedy next token of each sequence.
    cache : list
        The filled key/value cache, for :func:`decode_step`.
    """
    cache = model.new_cache(prompts.shape[0], cache_len)
    logits = model(prompts, cache, 0)
    return logits.argmax(dim=-1, keepdim=True), cache


@torch.inference_mode()
def decode_step(
    model: TinyGPT,
    tokens: torch.Tensor,
    cache: list[tuple[torch.Tensor, torch.Tensor]],
    pos: int,
) -> torch.Tensor:
    """Generate one token per sequence (greedy); ``tokens`` (batch, 1) sit at position ``pos``."""
    return model(tokens, cache, pos).argmax(dim=-1, keepdim=True)


def generate(model: TinyGPT, prompts: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Greedy generation of ``new_tokens`` tokens after ``prompts``; returns (batch, new_tokens)."""
    prompt_len = prompts.shape[1]
    tok, cache = prefill(model, prompts, prompt_len + new_tokens)
    out = [tok]
    for i in range(1, new_tokens):
        tok = decode_step(model, tok, cache, prompt_len + i - 1)
        out.append(tok)
    return torch.cat(out, dim=1)


__all__ = [
    "MODEL_PRESETS",
    "GPTConfig",
    "ModelCost",
    "TinyGPT",
    "build_model",
    "decode_step",
    "generate",
    "model_cost",
    "model_preset",
    "prefill",
    "random_prompts",
]
