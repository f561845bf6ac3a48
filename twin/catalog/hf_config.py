"""Hugging Face ``config.json`` files read into an :class:`~twin.catalog.model_architecture.Architecture`.

Fields read (transformers' names; aliases in brackets):

* every layer: ``num_hidden_layers``, ``hidden_size``, ``vocab_size``, ``tie_word_embeddings``,
  ``torch_dtype`` [``dtype``], ``quantization_config``;
* attention: ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``; windows from
  ``sliding_window`` with ``layer_types`` or ``sliding_window_pattern`` (Gemma 3, gpt-oss) or
  ``attention_chunk_size`` with ``no_rope_layers`` (Llama 4); multi-head latent attention from
  ``kv_lora_rank``, ``q_lora_rank``, ``qk_nope_head_dim``, ``qk_rope_head_dim``, ``v_head_dim``
  (DeepSeek-V2/V3);
* MLP: ``intermediate_size`` (``intermediate_size_mlp`` for Llama 4's dense layers), gated
  (SwiGLU/GeGLU) unless ``mlp_hidden_act`` is ``relu2`` (Nemotron-H);
* mixture of experts: ``num_experts`` [``n_routed_experts``, ``num_local_experts``],
  ``num_experts_per_tok`` [``experts_per_token``], ``moe_intermediate_size``, shared experts
  (``n_shared_experts``, ``shared_expert_intermediate_size``, Llama 4's one shared expert), which
  layers are sparse (``first_k_dense_replace`` and ``moe_layer_freq``, ``decoder_sparse_step`` and
  ``mlp_only_layers``, ``interleave_moe_layer_step``);
* Mamba-2 mixers of hybrid models: ``hybrid_override_pattern`` (``M`` Mamba, ``*`` attention,
  ``-`` MLP, ``E`` experts), ``mamba_num_heads``, ``mamba_head_dim``, ``ssm_state_size``,
  ``n_groups``, ``conv_kernel``.

Fields known not to change what a token costs (token ids, norms' epsilons, positional-encoding
scaling, initialisation, training-only losses, ...) are listed in :data:`IGNORED_FIELDS`. Any
other field is an error that lists it (:class:`ArchitectureError`): the twin will not silently
serve a model whose config says something it does not understand. A multimodal config
(``text_config``, ``thinker_config``, ``llm_config``) gives its language model, and the
architecture says so in :attr:`Architecture.notes`: the vision or audio encoder is not modelled.

References
----------
.. [1] Hugging Face transformers, model configuration classes (``LlamaConfig``, ``Qwen3MoeConfig``,
   ``DeepseekV3Config``, ``Gemma3TextConfig``, ``Llama4TextConfig``, ``GptOssConfig``,
   ``NemotronHConfig``): the field names above.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twin.catalog.model_architecture import Architecture, ArchitectureError, default_quantized

#: ``torch_dtype`` values and the format they mean.
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "half": "fp16", "float": "fp32"}
#: ``quant_method`` values and the weight format of the layers they quantise.
_QUANT_METHODS = {"fp8": "fp8", "fbgemm_fp8": "fp8", "mxfp4": "mxfp4", "compressed-tensors": "fp8"}

#: Fields that do not change the bytes or FLOPs of a token (or are read together with another).
IGNORED_FIELDS = frozenset(
    """
    _name_or_path architectures auto_map model_type transformers_version torch_dtype dtype use_cache
    bos_token_id eos_token_id pad_token_id initializer_range initializer_factor rms_norm_eps
    layer_norm_eps layer_norm_epsilon norm_eps max_position_embeddings rope_theta rope_scaling
    rope_parameters rope_local_base_freq rope_interleave partial_rotary_factor use_qk_norm
    qk_layernorm attention_dropout hidden_dropout attn_dropout dropout hidden_act hidden_activation
    pretraining_tp mlp_bias attention_bias bias use_bias tie_word_embeddings router_aux_loss_coef
    output_router_logits router_jitter_noise router_z_loss_coef aux_loss_alpha seq_aux
    norm_topk_prob routed_scaling_factor topk_method n_group topk_group scoring_func ep_size
    num_nextn_predict_layers use_sliding_window max_window_layers query_pre_attn_scalar
    final_logit_softcapping attn_logit_softcapping cache_implementation attn_implementation
    sliding_window_pattern layer_types no_rope_layers attn_scale attn_temperature_tuning floor_scale
    swiglu_limit num_experts_per_tok experts_per_token image_token_index image_token_id
    video_token_id audio_token_id boi_token_index eoi_token_index vision_start_token_id
    vision_end_token_id vision_token_id mm_tokens_per_image vision_feature_layer
    vision_feature_select_strategy projector_hidden_act multimodal_projector_bias image_size
    downsample_ratio template ps_version vision_config audio_config talker_config code2wav_config
    enable_audio_output im_start_token_id im_end_token_id tts_pad_token_id tts_bos_token_id
    tts_eos_token_id system_token_id user_token_id assistant_token_id position_id_per_seconds
    seconds_per_chunk audio_start_token_id audio_end_token_id rescale_prenorm_residual
    residual_in_fp32 use_mamba_kernels mamba_hidden_act mamba_proj_bias mamba_conv_bias
    time_step_min time_step_max time_step_floor time_step_limit time_step_rank mamba_chunk_size
    chunk_size expand use_conv_bias mlp_hidden_act num_logits_to_keep sliding_window
    attention_chunk_size interleave_moe_layer_step moe_layers decoder_sparse_step mlp_only_layers
    first_k_dense_replace moe_layer_freq head_dim quantization_config is_encoder_decoder return_dict
    output_hidden_states output_attentions torchscript use_return_dict tokenizer_class prefix
    task_specific_params problem_type id2label label2id use_bfloat16 tf_legacy_loss
    chunk_size_feed_forward is_decoder add_cross_attention cross_attention_hidden_size
    finetuning_task max_length min_length do_sample early_stopping num_beams num_beam_groups
    diversity_penalty temperature top_k top_p typical_p repetition_penalty length_penalty
    no_repeat_ngram_size encoder_no_repeat_ngram_size bad_words_ids num_return_sequences
    output_scores return_dict_in_generate forced_bos_token_id forced_eos_token_id
    remove_invalid_values exponential_decay_length_penalty suppress_tokens begin_suppress_tokens
    sep_token_id decoder_start_token_id pruned_heads tie_encoder_decoder label_smoothing
    initializer_std embedding_multiplier logits_scaling residual_multiplier attention_multiplier
    router_dtype moe_router_dtype num_memory_blocks fp32_residual_connection fp16_lm_head
    attention_sink attention_sinks qkv_bias initial_context_length
    """.split()  # noqa: SIM905  (a compact list of field names)
)
#: Fields read by :func:`parse_config` (everything else must be in :data:`IGNORED_FIELDS`).
USED_FIELDS = frozenset(
    """
    num_hidden_layers hidden_size vocab_size num_attention_heads num_key_value_heads
    intermediate_size intermediate_size_mlp num_experts n_routed_experts num_local_experts
    moe_intermediate_size n_shared_experts shared_expert_intermediate_size
    moe_shared_expert_intermediate_size kv_lora_rank q_lora_rank qk_nope_head_dim qk_rope_head_dim
    v_head_dim hybrid_override_pattern mamba_num_heads mamba_head_dim ssm_state_size n_groups
    conv_kernel text_config thinker_config llm_config
    """.split()  # noqa: SIM905  (a compact list of field names)
)
#: Top-level keys that mark a multimodal wrapper around a language model, in the order tried.
_TEXT_KEYS = ("text_config", "thinker_config", "llm_config")


#: Words in a quantisation exclusion pattern and the part of the model they keep in 16 bits.
_EXCLUDE_WORDS: tuple[tuple[str, str], ...] = (
    ("shared_expert", "shared_experts"),
    ("self_attn", "attention"),
    ("attn", "attention"),
    ("mixer", "mamba"),
    ("router", "router"),
    ("mlp.gate", "router"),
    ("lm_head", "lm_head"),
    ("embed", "embedding"),
)
#: Exclusion patterns that name parts of the model the twin does not serve (vision, audio).
_FOREIGN_WORDS = ("vision", "visual", "multi_modal", "audio", "mm_projector", "patch_embed")


def _quantization(cfg: dict[str, Any], source: str) -> tuple[str, frozenset[str]]:
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    base = _DTYPES.get(dtype)
    if base is None:
        raise ArchitectureError(source, f"torch_dtype {dtype!r} is not one of {sorted(_DTYPES)}", ("torch_dtype",))
    q = cfg.get("quantization_config")
    if not q:
        return base, frozenset()
    method = str(q.get("quant_method", ""))
    fmt = _QUANT_METHODS.get(method)
    if fmt is None:
        raise ArchitectureError(
            source,
            f"quantization_config.quant_method {method!r} is not one the twin models ({sorted(_QUANT_METHODS)})",
            ("quantization_config.quant_method",),
        )
    if method == "compressed-tensors":
        fmt = _compressed_tensors_format(q, source)
    parts = set(default_quantized(fmt))
    excluded = q.get("modules_to_not_convert") or q.get("ignore") or q.get("ignored_layers") or []
    for pattern in excluded:
        text = str(pattern).lower()
        if any(w in text for w in _FOREIGN_WORDS):
            continue
        for word, part in _EXCLUDE_WORDS:
            if word in text:
                parts.discard(part)
                break
    return fmt, frozenset(parts)


def _compressed_tensors_format(q: dict[str, Any], source: str) -> str:
    """Weight format of a compressed-tensors checkpoint (FP8 is the one the twin models)."""
    groups = q.get("config_groups") or {}
    for group in groups.values():
        w = (group or {}).get("weights") or {}
        if w.get("type") == "float" and int(w.get("num_bits", 0)) == 8:
            return "fp8"
        raise ArchitectureError(
            source,
            f"compressed-tensors weights {w.get('type')!r} with {w.get('num_bits')} bits are not modelled "
            "(the twin models 8-bit float weights)",
            ("quantization_config.config_groups",),
        )
    return "fp8"


def _first(cfg: dict[str, Any], *names: str, default: Any = None) -> Any:
    for n in names:
        if cfg.get(n) is not None:
            return cfg[n]
    return default


def _require(cfg: dict[str, Any], source: str, *names: str) -> int:
    value = _first(cfg, *names)
    if value is None:
        raise ArchitectureError(source, f"missing {names[0]} (the twin needs it to size the model)", (names[0],))
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ArchitectureError(source, f"{names[0]} must be a non-negative integer, got {value!r}", (names[0],))
    return int(value)


#: Fields read as counts or sizes (non-negative whole numbers), and those that must be at least 1.
_COUNT_FIELDS = frozenset(
    """
    num_hidden_layers hidden_size vocab_size num_attention_heads num_key_value_heads head_dim
    intermediate_size intermediate_size_mlp num_experts n_routed_experts num_local_experts
    num_experts_per_tok experts_per_token moe_intermediate_size n_shared_experts
    shared_expert_intermediate_size moe_shared_expert_intermediate_size kv_lora_rank q_lora_rank
    qk_nope_head_dim qk_rope_head_dim v_head_dim mamba_num_heads mamba_head_dim ssm_state_size n_groups
    conv_kernel first_k_dense_replace moe_layer_freq interleave_moe_layer_step decoder_sparse_step
    sliding_window sliding_window_pattern max_window_layers attention_chunk_size
    """.split()  # noqa: SIM905  (a compact list of field names)
)
_POSITIVE_FIELDS = frozenset(
    {"num_hidden_layers", "hidden_size", "vocab_size", "num_attention_heads", "num_key_value_heads"}
)
#: Largest count a config may give: Hugging Face configs hold them as 32-bit integers.
_MAX_COUNT = 2**31 - 1
_LIST_FIELDS = frozenset({"moe_layers", "mlp_only_layers", "no_rope_layers", "layer_types"})
_TEXT_FIELDS = frozenset({"hybrid_override_pattern", "torch_dtype", "dtype", "model_type", "mlp_hidden_act"})


def _check_types(cfg: dict[str, Any], source: str, prefix: str = "") -> None:
    """Every field the twin reads has the type it needs (a named error otherwise)."""
    for name, value in cfg.items():
        field_name = prefix + name
        if value is None:
            continue
        if name in _COUNT_FIELDS:
            whole = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
            low = 1 if name in _POSITIVE_FIELDS else 0
            if not whole or not low <= value <= _MAX_COUNT:
                raise ArchitectureError(
                    source, f"{field_name} must be a whole number in {low}..{_MAX_COUNT}, got {value!r}", (field_name,)
                )
        elif name in _LIST_FIELDS:
            kind = str if name == "layer_types" else int
            ok = isinstance(value, list) and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
            if not ok:
                raise ArchitectureError(
                    source, f"{field_name} must be a list of {kind.__name__}, got {value!r}", (field_name,)
                )
        elif name in _TEXT_FIELDS and not isinstance(value, str):
            raise ArchitectureError(source, f"{field_name} must be text, got {value!r}", (field_name,))
        elif name == "quantization_config":
            _check_quantization(value, source, field_name)


def _check_quantization(q: Any, source: str, field_name: str) -> None:
    if not isinstance(q, dict):
        raise ArchitectureError(source, f"{field_name} must be a mapping, got {q!r}", (field_name,))
    if not isinstance(q.get("quant_method", ""), str):
        raise ArchitectureError(source, f"{field_name}.quant_method must be text", (f"{field_name}.quant_method",))
    for key in ("modules_to_not_convert", "ignore", "ignored_layers"):
        v = q.get(key)
        if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise ArchitectureError(
                source, f"{field_name}.{key} must be a list of module names", (f"{field_name}.{key}",)
            )
    if q.get("config_groups") is not None and not isinstance(q["config_groups"], dict):
        raise ArchitectureError(
            source, f"{field_name}.config_groups must be a mapping", (f"{field_name}.config_groups",)
        )


def _text_part(cfg: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The language model's config of a multimodal wrapper (and whether there was one)."""
    for key in _TEXT_KEYS:
        inner = cfg.get(key)
        if isinstance(inner, dict):
            inner = inner.get("text_config", inner) if key == "thinker_config" else inner
            merged = dict(inner)
            for k in ("quantization_config", "torch_dtype", "dtype", "tie_word_embeddings"):
                if k not in merged and k in cfg:
                    merged[k] = cfg[k]
            return merged, True
    return cfg, False


def _check_fields(cfg: dict[str, Any], source: str, prefix: str = "") -> None:
    unknown = sorted(k for k in cfg if k not in USED_FIELDS and k not in IGNORED_FIELDS)
    if unknown:
        names = tuple(prefix + k for k in unknown)
        raise ArchitectureError(
            source,
            f"fields the twin cannot use: {', '.join(names)} (it does not know how they change what a token "
            "costs; remove them if they do not, or describe the model with fields it reads: "
            "twin.catalog.hf_config)",
            names,
        )


def _moe_layers(cfg: dict[str, Any], n_layers: int) -> list[bool]:
    """Which layers route to experts (the families' conventions)."""
    if "first_k_dense_replace" in cfg:
        k = int(cfg["first_k_dense_replace"] or 0)
        freq = int(cfg.get("moe_layer_freq") or 1)
        return [i >= k and (i % freq == 0) for i in range(n_layers)]
    if cfg.get("moe_layers") is not None:
        sparse = {int(i) for i in cfg["moe_layers"]}
        return [i in sparse for i in range(n_layers)]
    if cfg.get("interleave_moe_layer_step") is not None:
        step = int(cfg["interleave_moe_layer_step"] or 1)
        return [(i + 1) % step == 0 for i in range(n_layers)]
    step = int(cfg.get("decoder_sparse_step") or 1)
    dense_only = {int(i) for i in (cfg.get("mlp_only_layers") or [])}
    return [(i + 1) % step == 0 and i not in dense_only for i in range(n_layers)]


def _window_layers(cfg: dict[str, Any], n_layers: int, source: str) -> tuple[int, int]:
    """(windowed layers, window in tokens) from the sliding-window or chunked-attention fields."""
    chunk = cfg.get("attention_chunk_size")
    if chunk:
        nope = cfg.get("no_rope_layers")  # 1: RoPE with chunked attention; 0: global NoPE layer
        if isinstance(nope, list) and len(nope) == n_layers:
            return int(sum(1 for v in nope if v)), int(chunk)
        return n_layers - n_layers // 4, int(chunk)  # Llama 4 default: every 4th layer global
    window = cfg.get("sliding_window")
    if not window or cfg.get("use_sliding_window") is False:
        return 0, 0
    types = cfg.get("layer_types")
    if isinstance(types, list):
        if len(types) != n_layers:
            raise ArchitectureError(
                source, f"layer_types has {len(types)} entries for {n_layers} layers", ("layer_types",)
            )
        return sum(1 for t in types if "sliding" in str(t) or "chunked" in str(t)), int(window)
    pattern = cfg.get("sliding_window_pattern")
    if pattern:
        return n_layers - n_layers // int(pattern), int(window)
    mwl = cfg.get("max_window_layers")
    if mwl is not None and cfg.get("use_sliding_window"):
        return max(n_layers - int(mwl), 0), int(window)
    return n_layers, int(window)  # Mistral-style: every layer sees the window


def parse_config(cfg: dict[str, Any], name: str, source: str) -> Architecture:
    """Build an :class:`Architecture` from a ``config.json`` mapping (module docstring)."""
    if not isinstance(cfg, dict):
        raise ArchitectureError(source, "a model config must be a JSON object")
    for key in _TEXT_KEYS:
        if key in cfg and not isinstance(cfg[key], dict):
            raise ArchitectureError(source, f"{key} must be a mapping, got {cfg[key]!r}", (key,))
    text, multimodal = _text_part(cfg)
    notes: list[str] = []
    if multimodal:
        notes.append("multimodal model: its language model is served (text path only; the encoders are not modelled)")
        _check_fields({k: v for k, v in cfg.items() if k not in _TEXT_KEYS}, source)
    _check_fields(text, source, "text_config." if multimodal else "")
    _check_types(text, source, "text_config." if multimodal else "")
    fmt, quantized = _quantization(text, source)
    block_scaled = bool((text.get("quantization_config") or {}).get("weight_block_size"))
    d = _require(text, source, "hidden_size")
    vocab = _require(text, source, "vocab_size")
    heads = _require(text, source, "num_attention_heads")
    kv_heads = int(_first(text, "num_key_value_heads", default=heads) or heads)
    if heads % kv_heads:
        raise ArchitectureError(
            source,
            f"num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads}): "
            "each KV head serves a whole group of query heads",
            ("num_key_value_heads",),
        )
    head_dim = int(_first(text, "head_dim", default=0) or (d // heads if heads else 0))
    pattern = text.get("hybrid_override_pattern")
    n_experts = int(_first(text, "num_experts", "n_routed_experts", "num_local_experts", default=0) or 0)
    k = int(_first(text, "num_experts_per_tok", "experts_per_token", default=0) or 0)
    if n_experts > 1 and not 0 < k <= n_experts:
        raise ArchitectureError(
            source, f"num_experts_per_tok must be in 1..{n_experts}, got {k}", ("num_experts_per_tok",)
        )
    intermediate = int(_first(text, "intermediate_size", default=0) or 0)
    moe_inter = int(_first(text, "moe_intermediate_size", default=0) or 0)
    shared = int(_first(text, "shared_expert_intermediate_size", "moe_shared_expert_intermediate_size", default=0) or 0)
    if not shared and text.get("n_shared_experts"):
        shared = int(text["n_shared_experts"]) * (moe_inter or intermediate)
    model_type = str(cfg.get("model_type", ""))
    llama4 = "llama4" in model_type or "llama4" in str(text.get("model_type", ""))
    dense_inter = intermediate
    if llama4:  # expert size in intermediate_size, dense layers in intermediate_size_mlp, one shared expert
        moe_inter = moe_inter or intermediate
        dense_inter = int(text.get("intermediate_size_mlp") or intermediate)
        shared = shared or moe_inter
    elif n_experts > 1 and not moe_inter:  # Mixtral, gpt-oss: the experts' size is intermediate_size
        moe_inter = intermediate
    kw: dict[str, Any] = {}
    if pattern is not None:
        pat = str(pattern)
        bad = sorted(set(pat) - set("M*-E"))
        if bad:
            raise ArchitectureError(
                source,
                f"hybrid_override_pattern has layer kinds {bad} (the twin knows M, *, -, E)",
                ("hybrid_override_pattern",),
            )
        n_layers = len(pat)
        kw.update(
            n_full_attention_layers=pat.count("*"),
            n_mamba_layers=pat.count("M"),
            n_dense_mlp_layers=pat.count("-"),
            n_moe_layers=pat.count("E"),
            mamba_heads=_require(text, source, "mamba_num_heads"),
            mamba_head_dim=_require(text, source, "mamba_head_dim"),
            ssm_state=_require(text, source, "ssm_state_size"),
            ssm_groups=int(text.get("n_groups") or 1),
            conv_kernel=int(text.get("conv_kernel") or 4),
            gated_mlp=str(text.get("mlp_hidden_act", "silu")) != "relu2",
        )
        notes.append(f"hybrid: {pat.count('M')} Mamba-2 and {pat.count('*')} attention layers")
    else:
        n_layers = _require(text, source, "num_hidden_layers")
        sparse = _moe_layers(text, n_layers) if n_experts > 1 else [False] * n_layers
        n_win, window = _window_layers(text, n_layers, source)
        kw.update(
            n_full_attention_layers=n_layers - n_win,
            n_window_layers=n_win,
            attention_window=window,
            n_dense_mlp_layers=sum(1 for s in sparse if not s),
            n_moe_layers=sum(1 for s in sparse if s),
        )
    if text.get("kv_lora_rank"):
        kw.update(
            kv_lora_rank=int(text["kv_lora_rank"]),
            q_lora_rank=int(text.get("q_lora_rank") or 0),
            qk_nope_head_dim=_require(text, source, "qk_nope_head_dim"),
            qk_rope_head_dim=_require(text, source, "qk_rope_head_dim"),
            v_head_dim=_require(text, source, "v_head_dim"),
        )
    arch = Architecture(
        name=name,
        source=source,
        n_layers=n_layers,
        d_model=d,
        vocab_size=vocab,
        tied_embeddings=bool(text.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False))),
        n_heads=heads,
        n_kv_heads=kv_heads,
        head_dim=head_dim,
        dense_intermediate=dense_inter,
        n_experts=n_experts if n_experts > 1 else 0,
        experts_per_token=k if n_experts > 1 else 0,
        expert_intermediate=moe_inter if n_experts > 1 else 0,
        shared_intermediate=shared if n_experts > 1 else 0,
        weight_format=fmt,
        quantized=quantized,
        block_scaled=block_scaled,
        multimodal=multimodal,
        notes=tuple(notes),
        **kw,
    )
    if arch.n_dense_mlp_layers and not arch.dense_intermediate:
        raise ArchitectureError(source, "missing intermediate_size for the dense MLP layers", ("intermediate_size",))
    if arch.is_moe and not arch.expert_intermediate:
        raise ArchitectureError(source, "missing moe_intermediate_size for the experts", ("moe_intermediate_size",))
    return arch


def read_config(path: Path, name: str | None = None) -> Architecture:
    """Read a ``config.json`` file (errors name the file)."""
    try:
        cfg = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ArchitectureError(str(path), "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArchitectureError(str(path), f"not valid JSON: {exc}") from None
    return parse_config(cfg, name or str(path), str(path))
