"""Model architectures from Hugging Face config.json files (twin/catalog/architecture.py)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin import catalog, load_scenario, simulate
from twin.catalog.architecture import ArchitectureError, load_architecture, shipped_model_ids
from twin.catalog.hf_config import parse_config
from twin.errors import ScenarioError, UnknownNameError
from twin.validation.serving_data import read_serving_dataset

# Published sizes (total, active parameters in billions) and where they are stated.
PUBLISHED = {
    "meta-llama/Llama-3.1-8B-Instruct": (8.03, 8.03),  # HF model card "8.03B"
    "meta-llama/Llama-3.1-70B-Instruct": (70.6, 70.6),  # HF model card "70.6B"
    "meta-llama/Llama-3.1-405B-Instruct": (405.9, 405.9),  # HF model card "406B"
    "Qwen/Qwen3-8B": (8.2, 8.2),  # Qwen3 model card: 8.2B
    "Qwen/Qwen3-14B": (14.8, 14.8),  # Qwen3 model card: 14.8B
    "Qwen/Qwen3-32B": (32.8, 32.8),  # Qwen3 model card: 32.8B
    "Qwen/Qwen3-30B-A3B-Instruct-2507": (30.5, 3.3),  # model card: 30.5B total, 3.3B activated
    "Qwen/Qwen3-235B-A22B-Instruct-2507": (235.0, 22.0),  # model card: 235B total, 22B activated
    "Qwen/Qwen3-Coder-480B-A35B-Instruct": (480.0, 35.0),  # model card: 480B total, 35B activated
    "deepseek-ai/DeepSeek-R1-0528": (671.0, 37.0),  # DeepSeek-V3 technical report: 671B, 37B per token
    "mistralai/Mixtral-8x7B-v0.1": (46.7, 12.9),  # Jiang et al. 2024: 47B total, 13B active
    "openai/gpt-oss-120b": (116.8, 5.7),  # model card: 117B (5.1B active without the 1.2B of embedding/head)
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": (400.0, 17.0),  # model card: 400B total, 17B active
}


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_parameter_counts_match_the_published_sizes(model_id):
    total_b, active_b = PUBLISHED[model_id]
    a = load_architecture(model_id)
    assert a.params / 1e9 == pytest.approx(total_b, rel=0.02)
    assert a.active_params / 1e9 == pytest.approx(active_b, rel=0.05)


def test_every_text_model_of_the_dataset_ships_and_parses():
    data = read_serving_dataset()
    text_models = set(data.loc[data["text"], "model_id"])
    assert text_models <= set(shipped_model_ids())
    for model_id in shipped_model_ids():
        a = load_architecture(model_id)
        assert a.params > 0 and a.n_layers > 0


def test_kv_cache_by_hand():
    # Llama-3.1-8B: 2 (K, V) x 32 layers x 8 KV heads x 128 x 2 B = 131 072 B per token (parameters.md 6).
    assert load_architecture("Llama-3.1-8B").kv_bytes_per_token() == 131072
    # DeepSeek-V3 multi-head latent attention: a 512-wide latent and a 64-wide RoPE key per layer.
    ds = load_architecture("deepseek-ai/DeepSeek-V3.1")
    assert ds.is_mla and ds.kv_bytes_per_token() == 61 * (512 + 64) * 2
    # Gemma 3 27B: 5 of every 6 layers see a 1024-token window.
    g = load_architecture("google/gemma-3-27b-it")
    assert (g.n_window_layers, g.n_full_attention_layers, g.attention_window) == (52, 10, 1024)
    # Nemotron-H hybrid: 6 of 62 layers attend; the Mamba-2 state does not grow with the context.
    n = load_architecture("nvidia/NVIDIA-Nemotron-Nano-12B-v2")
    assert (n.n_attention_layers, n.n_mamba_layers) == (6, 28)
    assert n.state_bytes_per_sequence(4.0) > 0 and not n.gated_mlp


def test_quantised_checkpoints_keep_what_their_config_says_in_16_bits():
    oss = load_architecture("openai/gpt-oss-20b")
    assert oss.weight_format == "mxfp4" and oss.quantized == {"experts"}
    assert oss.bytes_per_weight("experts") == pytest.approx(4.25 / 8)
    assert oss.bytes_per_weight("attention") == 2.0
    fp8 = load_architecture("meta-llama/Llama-3.1-405B-Instruct-FP8")
    assert fp8.bytes_per_weight("dense_mlp") == 1.0 and fp8.bytes_per_weight("attention") == 2.0
    assert load_architecture("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8").block_scaled


def test_names_resolve_and_unknown_names_list_the_valid_ones(tmp_path):
    assert load_architecture("Llama-3.1-8B").name == "Llama-3.1-8B"
    assert load_architecture("qwen/qwen3-8b").name == "Qwen/Qwen3-8B"  # ids are case-insensitive
    with pytest.raises(UnknownNameError, match="Qwen/Qwen3-8B"):
        load_architecture("gpt-5")
    cfg = json.loads((catalog.CATALOG_DIR / "architectures" / "Qwen__Qwen3-8B.json").read_text())
    (tmp_path / "mine.json").write_text(json.dumps(cfg))
    assert load_architecture(str(tmp_path / "mine.json")).params == load_architecture("Qwen/Qwen3-8B").params


def test_fields_the_twin_cannot_use_are_named():
    cfg = json.loads((catalog.CATALOG_DIR / "architectures" / "Qwen__Qwen3-8B.json").read_text())
    with pytest.raises(ArchitectureError, match="fields the twin cannot use: cross_attention_layers"):
        parse_config({**cfg, "cross_attention_layers": [3, 8]}, "x", "x.json")
    with pytest.raises(ArchitectureError, match="missing hidden_size"):
        parse_config({k: v for k, v in cfg.items() if k != "hidden_size"}, "x", "x.json")
    with pytest.raises(ArchitectureError, match="quant_method 'awq'"):
        parse_config({**cfg, "quantization_config": {"quant_method": "awq"}}, "x", "x.json")
    with pytest.raises(ArchitectureError, match="layer kinds"):
        parse_config({**cfg, "hybrid_override_pattern": "M*X", "mamba_num_heads": 8, "mamba_head_dim": 8,
                      "ssm_state_size": 8}, "x", "x.json")  # fmt: skip


def test_counts_a_model_cannot_have_are_named():
    cfg = json.loads((catalog.CATALOG_DIR / "architectures" / "Qwen__Qwen3-8B.json").read_text())
    # 32 query heads cannot share 7 KV heads in whole groups; no model has 0 KV heads or 1e30 layers.
    with pytest.raises(
        ArchitectureError, match=r"num_attention_heads \(32\) must be a multiple of num_key_value_heads"
    ):
        parse_config({**cfg, "num_key_value_heads": 7}, "x", "x.json")
    no_kv = r"num_key_value_heads must be a whole number in 1\.\.2147483647, got 0$"
    with pytest.raises(ArchitectureError, match=no_kv):
        parse_config({**cfg, "num_key_value_heads": 0}, "x", "x.json")
    with pytest.raises(ArchitectureError, match=r"num_hidden_layers must be a whole number in 1\.\.2147483647"):
        parse_config({**cfg, "num_hidden_layers": 10**30}, "x", "x.json")


def test_a_multimodal_config_serves_its_text_model_and_says_so():
    vl = load_architecture("Qwen/Qwen3-VL-8B-Instruct")
    text = load_architecture("Qwen/Qwen3-8B")
    assert vl.multimodal and "text path only" in vl.notes[0]
    assert vl.n_layers == text.n_layers and vl.kv_bytes_per_token() == text.kv_bytes_per_token()


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "num_key_value_heads",
             "intermediate_size", "num_experts", "num_experts_per_tok", "moe_intermediate_size", "sliding_window",
             "torch_dtype", "quantization_config", "hybrid_override_pattern", "text_config", "junk"]
        ),
        st.one_of(st.integers(-5, 100000), st.integers(-(10**40), 10**40), st.floats(allow_nan=True),
                  st.text(max_size=8), st.none(),
                  st.lists(st.integers(0, 3), max_size=4), st.dictionaries(st.text(max_size=4), st.integers())),
    )
)  # fmt: skip
def test_any_mapping_parses_or_fails_with_a_named_error(cfg):
    try:
        a = parse_config(cfg, "fuzz", "fuzz.json")
    except ArchitectureError:
        return
    assert a.params >= 0 and a.n_layers >= 0


def test_a_scenario_serves_a_model_from_its_config_file(tmp_path):
    cfg = json.loads((catalog.CATALOG_DIR / "architectures" / "Qwen__Qwen3-8B.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    over = {
        "duration_s": 120,
        "fleet.rows": 1,
        "fleet.racks_per_row": 1,
        "fleet.servers_per_rack": 1,
        "workloads": [
            {
                "name": "chat",
                "kind": "inference",
                "model": "./config.json",
                "arrivals": {"kind": "constant", "requests_per_s": 5, "prompt_tokens": 200, "output_tokens": 100},
            }
        ],
    }
    sc = load_scenario("default", over).model_copy(update={"source_dir": tmp_path})
    r = simulate(sc)
    assert r.kpis["tokens_generated"] == pytest.approx(5 * 100 * 120, rel=1e-9)
    bad = load_scenario("default", {**over, "workloads": [{**over["workloads"][0], "model": "./missing.json"}]})
    with pytest.raises(ScenarioError, match=r"workloads\.0\.model"):
        simulate(bad.model_copy(update={"source_dir": tmp_path}))
