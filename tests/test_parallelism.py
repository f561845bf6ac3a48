"""Parallel layouts in scenarios: tensor, expert and data-parallel attention; the pipeline bubble."""

import pytest

from twin import load_scenario, simulate
from twin.catalog import accelerator_spec, model_spec
from twin.errors import ScenarioError
from twin.facility import build_facility
from twin.validation.setups import node, run

H100 = accelerator_spec("H100-SXM")


def one_server(workload: dict, **extra) -> dict:
    return node("H100-SXM", 8, [workload], duration_s=600.0, **extra)


def chat(model: str, **kw) -> dict:
    arrivals = {"kind": "constant", "requests_per_s": 4.0, "prompt_tokens": 500, "output_tokens": 200}
    return {"name": "chat", "kind": "inference", "model": model, "arrivals": arrivals, **kw}


def test_hugging_face_ids_resolve_to_their_shipped_spelling():
    sc = load_scenario("default", {"workloads.0.model": "qwen/qwen3-32b"})
    assert sc.workloads[0].model == "Qwen/Qwen3-32B"
    with pytest.raises(ScenarioError, match=r"workloads\.0\.model"):
        load_scenario("default", {"workloads.0.model": "no-such/model"})


def test_data_parallel_attention_needs_expert_parallel():
    with pytest.raises(ScenarioError, match="expert_parallel"):
        load_scenario("default", {"workloads.0.data_parallel": 2})


def test_expert_parallel_layout_in_the_pool():
    over = one_server(chat("Qwen/Qwen3-30B-A3B-Instruct-2507", tensor_parallel=2, expert_parallel=True))
    fac = build_facility(load_scenario("default", over))
    pool = fac.pools[0]
    assert pool.layout.describe() == "TP2 + EP2"
    assert pool.ranks_per_server == 4 and float(pool.costs.expert_gpus) == 2.0
    # Whole experts spread over the two GPUs: each holds half of them.
    arch = model_spec("Qwen/Qwen3-30B-A3B-Instruct-2507")
    assert float(pool.costs.expert_bytes) == pytest.approx(arch.weight_bytes_by_part()["experts"] / 2)


def test_tensor_parallel_pays_its_all_reduces():
    # The same 8 GPUs and light load, Llama-3.1-8B at TP 1, 2, 4 and 8. Splitting the 15 GB of
    # weights shortens each step, but every layer all-reduces twice over 2 (n - 1) ring steps: by
    # TP 8 the all-reduces cost more than the split saves, and the step is slower than at TP 4
    # (a model with summed bandwidth and no all-reduce time would keep getting faster).
    tpot = {}
    for tp in (1, 2, 4, 8):
        k = run(one_server(chat("Llama-3.1-8B", tensor_parallel=tp))).kpis
        assert k["tokens_generated"] == pytest.approx(4.0 * 200 * 600, rel=1e-9)
        tpot[tp] = k["chat_tpot_p50_s"]
    assert tpot[1] > tpot[2] > tpot[4]
    assert tpot[8] > tpot[4]


def test_pipeline_bubble_lowers_training_throughput():
    # Megatron-LM (Narayanan et al. 2021): the bubble is (p - 1) / (m + p - 1) of a step; with
    # p = 4 stages and m = 8 micro-batches the job trains 8 / 11 of the time. MFU 0.2 keeps the
    # GPUs under their power limit at boost clock, so the clock does not move.
    job = {"name": "train", "kind": "training", "model": "Llama-3.1-8B", "mfu": 0.2}
    flat = simulate(load_scenario("default", one_server(job)))
    piped = simulate(load_scenario("default", one_server({**job, "pipeline_parallel": 4, "microbatches": 8})))
    assert flat.timeseries["clock_fraction_mean"].min() == 1.0
    assert piped.kpis["tokens_training"] == pytest.approx(flat.kpis["tokens_training"] * 8 / 11, rel=1e-9)
    assert piped.kpis["energy_accelerators_j"] < flat.kpis["energy_accelerators_j"]


def test_a_pipeline_longer_than_the_model_or_the_pool_is_named():
    # Each stage holds at least one layer on at least one GPU: Llama 3.1 8B has 32 layers, one
    # server 8 GPUs, so at most 8 stages here (with a pool of 64 servers, at most 32).
    job = {"name": "train", "kind": "training", "model": "Llama-3.1-8B", "pipeline_parallel": 9}
    with pytest.raises(ScenarioError, match="at most 8"):
        simulate(load_scenario("default", one_server(job)))
    big = load_scenario("default", {"workloads": [{**job, "pipeline_parallel": 33}]})
    with pytest.raises(ScenarioError, match="32 layers and the workload 1024 GPUs: at most 32"):
        simulate(big)
