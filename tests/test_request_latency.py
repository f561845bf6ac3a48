"""Request-level latency of a finished run (twin latency) and against ML.ENERGY v3 (twin validate-latency)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.errors import ScenarioError
from twin.latency import (
    LatencyInputError,
    PoolLatency,
    fluid_latency,
    replay_latency,
    request_level_kpis,
    request_level_report,
)
from twin.results import Result
from twin.scenario.set_rules import load_with_sets
from twin.serving_requests import SchedulerConfig, simulate_rank, summarize
from twin.simulation import simulate
from twin.validation.latency import validate_latency
from twin.validation.serving_data import BUILTIN_DATASET, read_serving_dataset

#: Four servers (chat-70b: 3 ranks of TP8; code-8b: 8 ranks of one GPU), five minutes.
SMALL = {"fleet.rows": 1, "fleet.racks_per_row": 1, "duration_s": 300}
WINDOW = {"start_s": 120.0, "duration_s": 30.0}


def _run(extra: dict[str, float] | None = None):
    sc = load_with_sets(None, {**SMALL, **(extra or {})})
    return sc, simulate(sc)


@pytest.fixture(scope="module")
def baseline():
    sc, res = _run()
    return sc, res, replay_latency(res, sc, ranks=None, **WINDOW)


def test_sample_of_every_rank_is_the_exact_run(baseline) -> None:
    sc, res, exact = baseline
    assert [(p.pool, p.ranks, p.sampled) for p in exact] == [("chat-70b", 3, 3), ("code-8b", 8, 8)]
    every = replay_latency(res, sc, ranks=8, **WINDOW)
    sample = replay_latency(res, sc, ranks=2, **WINDOW)
    for e, a, s in zip(exact, every, sample, strict=True):
        np.testing.assert_array_equal(a.concat("ttft_s"), e.concat("ttft_s"))
        pd.testing.assert_frame_equal(pd.DataFrame(a.summary.rows()), pd.DataFrame(e.summary.rows()))
        # a rank draws the same requests whatever the sample: the sample is part of the exact run
        for rs, re in zip(s.runs, e.runs[:2], strict=True):
            np.testing.assert_array_equal(rs.finish_s, re.finish_s)
        # the sample's interval for the p50 TTFT covers the exact pool's p50
        _, lo, hi = s.summary.percentiles["ttft"][50.0]
        assert lo <= e.summary.percentiles["ttft"][50.0][0] <= hi
        assert s.summary.requests < e.summary.requests


def test_arrivals_are_the_runs_share(baseline) -> None:
    """Every rank gets 1/ranks of the pool's booked requests in the window (Poisson: within 4 sigma)."""
    _, res, exact = baseline
    ts = res.timeseries
    in_window = (ts["time_s"] >= 120) & (ts["time_s"] < 150)
    for p in exact:
        booked = float(ts.loc[in_window, f"{p.pool}_requests"].sum() * 30 / 60)  # half of one 60 s interval
        assert abs(p.summary.requests - booked) < 4 * np.sqrt(booked)


@pytest.fixture(scope="module")
def capped():
    return _run({"fleet.power_cap_w": 250})


def test_a_binding_power_cap_raises_p99_tpot(baseline, capped) -> None:
    _, _, base = baseline
    sc, res = capped
    assert res.timeseries["clock_fraction_mean"].mean() < 0.9  # the cap binds
    capped = replay_latency(res, sc, ranks=None, **WINDOW)
    for b, c in zip(base, capped, strict=True):
        assert c.summary.requests == b.summary.requests  # the same requests, slower steps
        assert c.summary.percentiles["tpot"][99.0][0] > 1.1 * b.summary.percentiles["tpot"][99.0][0]


def test_fluid_figures_beside_the_replay(baseline) -> None:
    """The fluid model's window figures are its interval values weighted by requests or tokens (by hand),
    and its median TPOT (the same step times, at the run's mean batch) is near the replayed requests'."""
    _, res, exact = baseline
    fluid = fluid_latency(res.timeseries, ["chat-70b", "code-8b"], 120.0, 150.0).set_index(["pool", "metric", "stat"])
    ts = res.timeseries[(res.timeseries["time_s"] >= 120.0) & (res.timeseries["time_s"] < 150.0)]
    w = ts["chat-70b_requests"]
    by_hand = float((ts["chat-70b_ttft_p99_s"] * w).sum() / w.sum())
    assert fluid.loc[("chat-70b", "ttft", "p99"), "value_s"] == pytest.approx(by_hand, rel=1e-12)
    for p in exact:
        replayed = p.summary.percentiles["tpot"][50.0][0]
        assert fluid.loc[(p.pool, "tpot", "p50"), "value_s"] == pytest.approx(replayed, rel=0.25)
    empty = fluid_latency(res.timeseries, ["chat-70b"], 1e6, 2e6)
    assert empty["value_s"].isna().all()  # no interval in the window: undefined, not 0


def test_a_failed_server_sends_its_share_to_the_ranks_up(baseline) -> None:
    """One of chat-70b's three TP8 servers fails over the window: its requests go to the two ranks up
    (each gets half, not a third, and the failed one none)."""
    fault = {"time_s": 60.0, "kind": "server_fail", "count": 1, "duration_s": 600.0, "target": "chat-70b"}
    sc, res = _run({"events": [fault]})
    ts = res.timeseries
    inside = (ts["time_s"] >= 120.0) & (ts["time_s"] < 180.0)  # one whole 60 s report interval
    assert ts.loc[inside, "chat-70b_gpus_up_mean"].to_numpy() == pytest.approx(16.0)  # 2 of 3 servers x 8
    chat = next(p for p in replay_latency(res, sc, None, 120.0, 60.0) if p.pool == "chat-70b")
    booked = float(ts.loc[inside, "chat-70b_requests"].sum())
    got = [r.arrival_s.size for r in chat.runs]
    assert got[2] == 0
    for n in got[:2]:  # Poisson: within 4 sigma of half the booked requests
        assert abs(n - booked / 2) < 4 * np.sqrt(booked / 2)
    base = baseline[1].timeseries
    assert (base["chat-70b_gpus_up_mean"] == 24.0).all()  # no fault: every rank up, a third each


def test_window_outside_the_run_is_refused(baseline) -> None:
    sc, res, _ = baseline
    with pytest.raises(LatencyInputError):
        replay_latency(res, sc, start_s=290.0, duration_s=60.0)


def test_latency_command(tmp_path) -> None:
    args = ["latency", *(f"--set={k}={v}" for k, v in SMALL.items()), "--replicas", "1", "--duration-s", "10"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "lat")])
    assert res.exit_code == 0, res.output
    assert "chat-70b: TTFT p99" in res.output and "SLO attainment" in res.output
    pct = pd.read_csv(tmp_path / "lat" / "latency.csv")
    assert set(pct["metric"]) == {"ttft", "tpot", "e2e", "queue", "itl"}
    hist = pd.read_csv(tmp_path / "lat" / "histogram.csv")
    for (pool, metric), g in hist.groupby(["pool", "metric"]):
        assert (g["high_s"] > g["low_s"]).all()
        if metric == "ttft":
            assert g["count"].sum() == int(pct.loc[pct["pool"] == pool, "requests"].iloc[0])
    reqs = pd.read_parquet(tmp_path / "lat" / "requests.parquet")
    assert set(reqs["pool"]) == {"chat-70b", "code-8b"} and (reqs["ttft_s"] > 0).all()
    fluid = pd.read_csv(tmp_path / "lat" / "fluid.csv")
    assert len(fluid) == 2 * 6 and "fluid model" in res.output
    bad = CliRunner().invoke(app, [*args, "--start-s", "1000"])
    assert bad.exit_code == 2


def test_validate_latency_on_two_configurations(tmp_path) -> None:
    """Two lm-arena-chat configurations of two models on H100 (one held out), short runs."""
    configs = read_serving_dataset()
    rows = configs[
        (configs["gpu_model"] == "H100")
        & (configs["task"] == "lm-arena-chat")
        & configs["model_id"].isin(["Qwen/Qwen3-32B", "meta-llama/Llama-3.1-8B-Instruct"])
        & (configs["max_num_seqs"] == 64)
    ]
    assert len(rows) == 2
    csv = tmp_path / "llm_configs.csv"
    pd.read_csv(BUILTIN_DATASET / "llm_configs.csv").iloc[rows.index].to_csv(csv, index=False)
    v = validate_latency(csv, step_budget=2000)
    assert len(v.rows) == 1 and list(v.mape["gpu"]) == ["H100"]
    r = v.rows.iloc[0]
    # ITL percentiles ordered, near the measured median (a 64-batch decode step of a dense model)
    assert r["pred_itl_p50_ms"] <= r["pred_itl_p90_ms"] <= r["pred_itl_p99_ms"]
    assert 0.5 < r["pred_itl_p50_ms"] / r["median_itl_ms"] < 2.0
    assert "Request-level ITL MAPE on held-out models" in v.last_line()


def test_kv_capacity_is_the_replicas_cache() -> None:
    """A rank's cache in tokens, over a context, is the sequences twin.replica says fit (dense model, no windows)."""
    from twin.facility import build_facility
    from twin.latency import kv_capacity_tokens
    from twin.replica import kv_capacity_sequences

    sc = load_with_sets(None, SMALL)
    fac = build_facility(sc)
    for pool in fac.served_pools():
        assert pool.model is not None
        seqs = kv_capacity_sequences(pool.model, pool.layout, fac.accelerator, 1250.0, None, pool.kv_bytes_per_value)
        assert kv_capacity_tokens(pool) / 1250.0 == pytest.approx(seqs, rel=1e-9)


#: The window of the tests' request-level KPIs: every rank of both pools, 30 s of the small run.
REQUEST_LEVEL = {"request_level": {"ranks": 8, "window_s": 30.0, "start_s": 120.0}}


def test_request_level_kpis_are_off_by_default(baseline) -> None:
    _, res, _ = baseline
    assert not [k for k in res.kpis if "replay" in k or "slo" in k or "goodput" in k]
    assert res.latency is None and res.latency_histogram is None and "request_level" not in res.meta


def test_slo_attainment_and_goodput_kpis_by_hand() -> None:
    """The hand-checked rank of tests/test_serving_requests.py (TTFTs 10, 15, 10 ms; TPOTs 10, 10 ms, none).

    With TTFT <= 12 ms and TPOT <= 20 ms, requests 1 and 3 meet the SLO: attainment 2/3; over a
    200 s window, 2/200 req/s on the one rank sampled, times the pool's 4 ranks: 0.04 req/s.
    """
    r = simulate_rank(
        np.array([0.0, 0.005, 100.0]),
        np.array([50, 30, 10]),
        np.array([3, 2, 1]),
        SchedulerConfig(2, 100),
        lambda *_: 0.01,
    )
    summary = summarize(r.ttft_s, r.tpot_s, r.e2e_s, r.queue_s, r.itl, 200.0, 0.012, 0.020)
    pool = PoolLatency("chat", ranks=4, sampled=1, window_s=(0.0, 200.0), summary=summary, runs=[r], itl=r.itl)
    kpis = request_level_kpis([pool])
    assert kpis["chat_slo_attainment"] == pytest.approx(2 / 3)
    assert kpis["chat_goodput_req_per_s"] == pytest.approx(4 * 2 / 200.0)
    assert kpis["chat_ttft_p50_replay_s"] == pytest.approx(0.010) and kpis["chat_requests_replayed"] == 3
    assert kpis["chat_ranks_replayed"] == 1
    no_slo = request_level_kpis([PoolLatency(**{**pool.__dict__, "has_slo": False})])
    assert "chat_slo_attainment" not in no_slo and "chat_goodput_req_per_s" not in no_slo


def _with_slo(sc, tpot_s: float):
    return sc.with_updates({**REQUEST_LEVEL, "workloads.0.slo": {"tpot_s": tpot_s}, "workloads.1.slo": {"ttft_s": 1.0}})


def test_request_level_kpis_of_a_run(baseline, capped) -> None:
    """The scenario's request_level replays the run (the exact pool here); a binding cap misses a TPOT target the
    uncapped run meets, and raises p99 TPOT."""
    sc, res, exact = baseline
    tpot_slo = 1.05 * exact[0].summary.percentiles["tpot"][99.0][0]  # chat-70b: 99 % or more meet it uncapped
    base = request_level_report(res, _with_slo(sc, tpot_slo))
    # the same figures as replay_latency of the same window
    assert base.kpis["chat-70b_tpot_p99_replay_s"] == exact[0].summary.percentiles["tpot"][99.0][0]
    assert base.kpis["code-8b_ttft_p50_replay_s"] == exact[1].summary.percentiles["ttft"][50.0][0]
    assert base.kpis["chat-70b_ranks_replayed"] == 3 and base.kpis["code-8b_ranks_replayed"] == 8
    assert base.kpis["chat-70b_slo_attainment"] >= 0.99
    assert base.meta["request_level"] == {"start_s": 120.0, "end_s": 150.0, "ranks": 8}
    csc, cres = capped
    cap = request_level_report(cres, _with_slo(csc, tpot_slo))
    assert cap.kpis["chat-70b_tpot_p99_replay_s"] > 1.1 * base.kpis["chat-70b_tpot_p99_replay_s"]
    assert cap.kpis["chat-70b_slo_attainment"] < base.kpis["chat-70b_slo_attainment"] - 0.2
    assert cap.kpis["chat-70b_goodput_req_per_s"] < base.kpis["chat-70b_goodput_req_per_s"]
    # summary.json gives every one a unit; the percentile and histogram tables come with the result
    units = base.summary()["units"]
    assert units["chat-70b_tpot_p99_replay_s"] == "s" and units["chat-70b_slo_attainment"] == "1"
    assert units["code-8b_goodput_req_per_s"] == "requests/s"
    assert base.latency is not None and set(base.latency["pool"]) == {"chat-70b", "code-8b"}
    assert base.latency_histogram is not None and set(base.latency_histogram["metric"]) == {"ttft", "tpot", "itl"}


def test_run_command_request_level(tmp_path) -> None:
    """twin run --request-level N: the table, summary.json with units, latency.csv and histogram.csv in the folder."""
    out = tmp_path / "run"
    args = ["run", *(f"--set={k}={v}" for k, v in SMALL.items()), "--set=workloads.0.slo.ttft_s=0.5"]
    res = CliRunner().invoke(app, [*args, "--request-level", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "chat-70b TTFT p99 (requests)" in res.output and "chat-70b SLO attainment (requests)" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["units"]["chat-70b_ttft_p99_replay_s"] == "s" and summary["kpis"]["chat-70b_ranks_replayed"] == 1
    assert "code-8b_slo_attainment" not in summary["kpis"]  # code-8b has no slo
    assert (out / "latency.csv").exists() and (out / "histogram.csv").exists()
    loaded = Result.load(out)
    assert loaded.latency is not None and set(loaded.latency["metric"]) == {"ttft", "tpot", "e2e", "queue", "itl"}
    assert loaded.latency_histogram is not None and (loaded.latency_histogram["count"] > 0).all()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"workloads.0.slo.ttft_s": -1.0}, "ttft_s"),
        ({"workloads.0.slo": {}}, "needs ttft_s, tpot_s or both"),
        ({"request_level.start_s": 300.0}, "is not before the end"),
        ({"request_level.ranks": 0}, "ranks"),
        (
            {"request_level.ranks": 1, "workloads": [{"name": "t", "kind": "training", "model": "Llama-3.1-8B"}]},
            "has none",
        ),
    ],
)
def test_bad_slo_or_request_level_is_refused(edit: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_with_sets(None, {**SMALL, **edit})


def test_docstring_examples() -> None:
    """pool_slo's examples: the workload's targets, a default, an option overriding one metric."""
    import doctest

    from twin import latency

    result = doctest.testmod(latency, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_a_large_request_level_sample_is_announced_not_silent():
    # The default pod has 96 + 256 inference ranks; every one over 600 s costs about
    # 352 x 600 x 6 ms = 21 min of CPU (REPLAY_CPU_S_PER_RANK_S): validate and run say so.
    from twin import load_scenario
    from twin.checks import REPLAY_CPU_S_PER_RANK_S, run_checks
    from twin.facility import build_facility

    big = load_scenario("default", {"request_level": {"ranks": 10**8}})
    fac = build_facility(big)
    ranks = sum(p.n_ranks for p in fac.pools if p.kind == "inference")
    (issue,) = [i for i in run_checks(fac, request_level=big.request_level) if i.startswith("request_level")]
    assert f"{ranks} ranks" in issue and f"{ranks * 600 * REPLAY_CPU_S_PER_RANK_S / 60:.0f} min" in issue
    small = load_scenario("default", {"request_level": {"ranks": 4}})
    assert not [i for i in run_checks(fac, request_level=small.request_level) if i.startswith("request_level")]
