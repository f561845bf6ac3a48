"""Prefill/decode disaggregation: KV transfer physics, the fluid roles, the request-level journey."""

from __future__ import annotations

import numpy as np
import pytest

from twin.errors import InvalidInputError, ScenarioError
from twin.latency import replay_latency
from twin.physics.interconnect import kv_transfer_energy_j, kv_transfer_time_s
from twin.physics.serving import step
from twin.physics.step_costs import example_costs, example_device, roofline_time_s
from twin.scenario import load_scenario
from twin.serving_requests import SchedulerConfig, simulate_rank
from twin.simulation import simulate

#: Eight servers of Llama-3-70B on TP8 (one rank each), five minutes at the 14:00 peak.
POD = {
    "start": "2024-07-15T14:00:00",
    "duration_s": 300,
    "fleet.rows": 1,
    "fleet.racks_per_row": 2,
    "workloads": [
        {
            "name": "chat",
            "kind": "inference",
            "model": "Llama-3-70B",
            "tensor_parallel": 8,
            "max_batch": 256,
            "arrivals": {
                "kind": "diurnal",
                "requests_per_s": 30,
                "peak_to_mean": 1.0,
                "peak_hour": 14,
                "prompt_tokens": 1000,
                "output_tokens": 250,
            },
        }
    ],
}
SPLIT = {"prefill_fraction_of_servers": 0.5}
WINDOW = {"start_s": 120.0, "duration_s": 60.0}


def _scenario(disaggregation: dict[str, float] | None = None, **over: object):
    w = {**POD["workloads"][0], **({"disaggregation": disaggregation} if disaggregation else {})}  # type: ignore[index]
    return load_scenario(None, {**POD, "workloads": [w], **over})


@pytest.fixture(scope="module")
def runs():
    out = {}
    for name, d in (("mixed", None), ("split", SPLIT), ("slow", {**SPLIT, "network_bandwidth_b_s": 1e9})):
        sc = _scenario(d)
        out[name] = (sc, simulate(sc, debug=True))
    return out


def test_transfer_time_and_energy_by_hand() -> None:
    # 70B on TP8: 80 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 327 680 B per token, one KV head per GPU:
    # 40 960 B per token per GPU; 1 000 tokens over 48 GB/s = 0.853 ms, + 20 us.
    per_gpu = 80 * 1 * 128 * 2 * 2.0
    assert float(kv_transfer_time_s(1000 * per_gpu, 48e9, 20e-6)) == pytest.approx(1000 * per_gpu / 48e9 + 20e-6)
    # all 8 GPUs' bytes at 15 pJ/bit: 327.68 MB x 8 x 15e-12 = 39.3 mJ
    assert float(kv_transfer_energy_j(1000 * per_gpu * 8, 15e-12)) == pytest.approx(0.0393216)
    sc, _ = _scenario(SPLIT), None
    from twin.facility import build_facility

    pool = build_facility(sc).pools[0]
    assert pool.kv_transfer_bytes_per_token == pytest.approx(per_gpu * 8)
    assert pool.role_ranks() == (4, 4)


def test_a_split_scenario_survives_a_round_trip() -> None:
    """Sweeps and results store the scenario as JSON and validate it again: the defaults must pass too."""
    from twin.scenario.schema import Scenario

    sc = _scenario(SPLIT)
    again = Scenario.model_validate(sc.model_dump(mode="json"))
    assert again.workloads[0].disaggregation == sc.workloads[0].disaggregation


def test_prefill_only_step_is_the_roofline_by_hand() -> None:
    """A prefill rank's step (no decode): dense matmuls compute-bound, attention on the prompt's FLOPs."""
    c, d = example_costs(), example_device()
    chunk, pos = 2048.0, 1024.0
    t_dense = roofline_time_s(float(c.dense_bytes) / 2.68e12, chunk * 13.96e9 / (0.6 * 989.4e12), 50.0)
    t_attn = chunk * 524288.0 * pos / (0.6 * 989.4e12)
    assert float(step(c, d, 0, chunk, 0, pos).time_s) == pytest.approx(float(t_dense) + t_attn, rel=1e-9)
    assert float(c.dense_bytes) / 2.68e12 < 2048 * 13.96e9 / (0.6 * 989.4e12)  # compute-bound
    # the request-level prefill rank runs exactly that step for a lone 2048-token prompt
    seen: list[tuple[float, float]] = []

    def step_time(b: float, p: float, ctx: float, x: float, clk: float) -> float:
        seen.append((b, p))
        return float(step(c, d, b, p, ctx, x, clk).time_s)

    run = simulate_rank(np.zeros(1), np.array([2048]), np.array([1]), SchedulerConfig(8, 4096), step_time)
    assert seen == [(0.0, 2048.0)]
    assert run.first_token_s[0] == pytest.approx(float(t_dense) + t_attn, rel=1e-9)


def test_a_prefill_server_batches_prompts_when_one_per_step_falls_behind() -> None:
    """Fluid prefill-only rank: one prompt per step while that keeps up, larger steps beyond, busy throughout."""
    from twin.engine.server_constants import ServerConstants
    from twin.engine.serving import serve_block

    c, d = example_costs(), example_device()
    const = ServerConstants.for_ranks(c, d, np.array([64.0]), np.array([8192.0]), np.array([50e9]))
    # a 200-token prompt reads the weights (5.6 ms) for 4.7 ms of FLOPs: 35 700 prompt tokens/s;
    # full 8 192-token steps are compute-bound: 41 700/s
    t_one = float(step(c, d, 0, 200.0, 0, 100.0).time_s)
    busy = []
    for rate in (20_000.0, 39_000.0):
        res = serve_block(
            const,
            np.array([[rate]]),
            np.zeros((1, 1)),
            np.array([[200.0]]),
            np.ones((1, 1)),
            np.ones((1, 1)),
            np.zeros(1),
            np.zeros(1),
            np.array([1.0]),
        )
        assert float(res.prefill_tokens[0, 0]) == pytest.approx(rate)  # within capacity: all served
        busy.append(float(res.busy[0, 0]))
    assert 200.0 / t_one < 39_000.0
    assert busy[0] == pytest.approx(20_000.0 * t_one / 200.0, rel=1e-9)
    assert busy[1] == pytest.approx(1.0, abs=0.01)


def test_a_down_server_hands_its_share_to_its_own_role() -> None:
    """The load balancer spreads prompts over the prefill servers up, outputs over the decode servers up."""
    from twin.engine.columns import Columns
    from twin.engine.demand import DemandModel, route_demand
    from twin.facility import build_facility

    fac = build_facility(_scenario(SPLIT))
    dem = DemandModel(fac).block(np.array([0.0]), np.array([1.0]))
    role = fac.pools[0].prefill_role > 0
    assert np.all(dem.decode_tokens[0, role] == 0) and np.all(dem.prefill_tokens[0, ~role] == 0)
    up = np.ones(fac.n_servers, dtype=bool)
    up[0] = False  # a prefill server
    routed, dropped = route_demand(dem, Columns.single(fac.n_servers, 4), up, fac.serving_groups())
    assert routed.prefill_tokens.sum() == pytest.approx(dem.prefill_tokens.sum())
    assert routed.decode_tokens.sum() == pytest.approx(dem.decode_tokens.sum())
    assert routed.prefill_tokens[0, 0] == 0 and np.all(routed.decode_tokens[0, role] == 0)
    np.testing.assert_allclose(routed.prefill_tokens[0, 1:4], dem.prefill_tokens[0, 0] * 4 / 3)
    assert dropped.prefill.sum() == 0 and dropped.decode.sum() == 0


def test_a_decode_rank_takes_prefilled_requests() -> None:
    """The cache and first token come from the prefill rank: the decode rank only decodes the rest."""
    calls: list[tuple[float, float, float]] = []

    def step_time(b: float, p: float, ctx: float, x: float, clk: float) -> float:
        calls.append((b, p, ctx))
        return 0.01

    run = simulate_rank(
        np.array([1.0, 5.0]), np.array([100, 40]), np.array([3, 1]), SchedulerConfig(8, 64), step_time, prefilled=True
    )
    # request 0: two decode steps at contexts 101 and 102; request 1 (one token) is done on arrival
    assert calls == [(1.0, 0.0, 101.0), (1.0, 0.0, 102.0)]
    np.testing.assert_allclose(run.first_token_s, [1.0, 5.0])
    np.testing.assert_allclose(run.finish_s, [1.02, 5.0])
    assert not run.refused.any()
    assert run.decode_tokens == 2 and run.prefill_tokens == 0
    assert run.itl.quantile(0.5) == pytest.approx(0.01)


def test_conservation_and_ledger(runs) -> None:
    mixed, split = runs["mixed"][1].kpis, runs["split"][1].kpis
    for k in (mixed, split):
        assert abs(k["ledger_residual_j"]) < 1e-9 * k["facility_energy_j"]
    # every request's output leaves the decode servers: tokens = requests x 250, nothing queued at the end
    assert split["chat_backlog_tokens_end"] == pytest.approx(0.0, abs=1e-6)
    assert split["chat_tokens_generated"] == pytest.approx(250 * split["chat_requests"], rel=1e-9)
    assert split["chat_tokens_prefill"] == pytest.approx(mixed["chat_tokens_prefill"], rel=1e-9)
    # the transfers' energy is what the prompts' bytes cost, and the ledger holds it in server_other
    assert split["chat_kv_transfer_energy_j"] == pytest.approx(
        split["chat_tokens_prefill"] * 327680.0 * 8 * 15e-12, rel=1e-9
    )
    free = simulate(_scenario({**SPLIT, "network_energy_pj_per_bit": 0.0}))
    ledger, ledger0 = runs["split"][1].ledger, free.ledger
    extra = float(ledger["server_other_j"].sum() - ledger0["server_other_j"].sum())
    assert extra == pytest.approx(split["chat_kv_transfer_energy_j"], rel=1e-6)


def test_replay_conserves_requests_and_tokens(runs) -> None:
    sc, res = runs["split"]
    (pool,) = replay_latency(res, sc, ranks=None, **WINDOW)
    assert (pool.ranks, pool.sampled) == (4, 4)
    done = np.concatenate([np.isfinite(r.finish_s) for r in pool.runs])
    assert done.all() and done.size == pool.summary.requests
    first = pool.concat("ttft_s")
    assert np.all(first > 0) and np.all(pool.concat("e2e_s") >= first)


def test_slower_network_raises_ttft(runs) -> None:
    fast, slow = runs["split"][1].kpis, runs["slow"][1].kpis
    assert slow["chat_ttft_p50_s"] > fast["chat_ttft_p50_s"]
    # 1 GB/s: 40.96 MB per GPU per prompt = 41 ms more than at 48 GB/s (0.85 ms)
    assert slow["chat_ttft_p50_s"] - fast["chat_ttft_p50_s"] == pytest.approx(
        1000 * 40960 * (1 / 1e9 - 1 / 48e9), rel=0.01
    )
    ttft = {}
    for name in ("split", "slow"):
        sc, res = runs[name]
        (p,) = replay_latency(res, sc, ranks=None, **WINDOW)
        ttft[name] = p.summary.percentiles["ttft"][50.0][0]
    assert ttft["slow"] > ttft["split"] + 0.03


def test_disaggregation_removes_prefill_interference_from_itl(runs) -> None:
    """DistServe, Fig. 1: decode steps without prompt chunks keep the inter-token latency steady."""
    itl = {}
    for name in ("mixed", "split"):
        sc, res = runs[name]
        (p,) = replay_latency(res, sc, ranks=None, **WINDOW)
        itl[name] = p.summary.percentiles["itl"][99.0][0]
    assert itl["split"] < 0.8 * itl["mixed"]


@pytest.mark.parametrize(
    ("servers", "fraction", "ranks", "sample"),
    [(8, 0.5, 2, (2, 2)), (8, 0.25, 1, (1, 3)), (10, 0.3, 1, (3, 7)), (10, 0.3, None, (3, 7)), (96, 0.75, 4, (6, 2))],
)
def test_sample_of_role_ranks(servers: int, fraction: float, ranks: int | None, sample: tuple[int, int]) -> None:
    """Decode ranks at the pool's load per rank: 3 prefill and 7 decode ranks share no factor, so all run."""
    from twin.facility import build_facility

    sc = _scenario({"prefill_fraction_of_servers": fraction}, **{"fleet.servers_per_rack": servers // 2})
    assert build_facility(sc).pools[0].role_sample(ranks) == sample


@pytest.mark.parametrize(
    ("disagg", "field"),
    [
        ({"prefill_fraction_of_servers": 0.0}, "prefill_fraction_of_servers"),
        ({"prefill_fraction_of_servers": 1.0}, "prefill_fraction_of_servers"),
        ({"prefill_fraction_of_servers": 0.05}, "workloads.0.disaggregation.prefill_fraction_of_servers"),
        ({**SPLIT, "network_bandwidth_b_s": 0}, "network_bandwidth_b_s"),
        ({**SPLIT, "network_energy_pj_per_bit": -1.0}, "network_energy_pj_per_bit"),
    ],
)
def test_invalid_disaggregation_is_refused(disagg: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        simulate(_scenario(disagg))
    assert isinstance(err.value, ScenarioError)
    assert field in str(err.value)
