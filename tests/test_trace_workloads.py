"""Real request traces and drawn streams driving inference pools through the engine."""

import numpy as np
import pytest

from twin import load_scenario, simulate
from twin.engine.demand import DemandModel
from twin.errors import ScenarioError
from twin.facility import build_facility
from twin.workload import AZURE_LLM_2023, read_trace, trace_period_s

IDEAL = {"model": "ideal", "supply_temp_c": 30.0}


@pytest.fixture(scope="module")
def conv():
    return read_trace(AZURE_LLM_2023["conv"])[0]


def pool_scenario(arrivals, servers=2, duration_s=1800.0, model="Llama-3.1-8B", tp=1, **updates):
    base = {
        "fleet.rows": 1,
        "fleet.racks_per_row": 1,
        "fleet.servers_per_rack": servers,
        "duration_s": duration_s,
        "step_s": 1,
        "report_interval_s": 60,
        "cooling": IDEAL,
        "site.other_facility_power_w": 0,
        "workloads": [
            {
                "name": "chat",
                "kind": "inference",
                "model": model,
                "servers": servers,
                "tensor_parallel": tp,
                "max_batch": 256,
                "arrivals": arrivals,
            }
        ],
    }
    base.update(updates)
    return load_scenario("default", base)


def test_ample_capacity_books_the_azure_trace_tokens_exactly(conv):
    # Two 8B servers easily carry the Azure conversation trace (5.5 requests/s): every prompt and
    # output token that arrives in the first 30 minutes is booked, to float rounding.
    sc = pool_scenario({"kind": "trace", "path": "azure-llm-2023-conv", "offsets": False})
    r = simulate(sc, debug=True)
    window = conv[conv["arrival_s"] < 1800.0]
    assert r.kpis["chat_backlog_tokens_end"] == pytest.approx(0.0, abs=1e-6)
    assert r.kpis["chat_requests"] == pytest.approx(len(window), rel=1e-12)
    assert r.kpis["tokens_prefill"] == pytest.approx(window["prompt_tokens"].sum(), rel=1e-12)
    assert r.kpis["tokens_generated"] == pytest.approx(window["output_tokens"].sum(), rel=1e-12)
    booked = r.kpis["tokens_prefill"] + r.kpis["tokens_generated"]
    assert booked == pytest.approx(window["prompt_tokens"].sum() + window["output_tokens"].sum(), rel=1e-12)


@pytest.mark.parametrize(("servers", "rate_scale"), [(4, 3.0), (2, 6.0)])
def test_offsets_and_loop_keep_every_token_over_whole_periods(conv, servers, rate_scale):
    # Each server its own randomly shifted copies (4 servers at 0.75 copies each; 2 servers
    # superposing 3 copies each), looped over two whole periods: the pool books exactly
    # rate_scale x 2 times the trace's tokens, whatever the offsets.
    period = trace_period_s(conv)
    sc = pool_scenario(
        {"kind": "trace", "path": "azure-llm-2023-conv", "rate_scale": rate_scale},
        servers=servers,
        duration_s=2 * period,
        report_interval_s=period / 5,
        step_s=period / 5 / 700,
    )
    r = simulate(sc)
    n = 2 * rate_scale
    assert r.kpis["chat_backlog_tokens_end"] == pytest.approx(0.0, abs=1e-6)
    assert r.kpis["tokens_generated"] == pytest.approx(n * conv["output_tokens"].sum(), rel=1e-9)
    assert r.kpis["tokens_prefill"] == pytest.approx(n * conv["prompt_tokens"].sum(), rel=1e-9)
    assert r.kpis["chat_requests"] == pytest.approx(n * len(conv), rel=1e-9)


def test_superposed_copies_tame_per_server_bursts():
    # 8 copies' worth per server: one copy scaled by 8 keeps the trace's relative bursts, eight
    # shifted copies merged cut them by about sqrt(8) (Azure arrivals are nearly independent
    # from one copy to a shifted other), with the same mean.
    arrivals = {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": 4 * 8 * 5.53}
    t0 = np.arange(0.0, 3000.0)
    cv = {}
    for copies in (1, 8):
        fac = build_facility(pool_scenario({**arrivals, "copies": copies}, servers=4))
        tok = DemandModel(fac, np.random.default_rng(2)).block(t0, t0 + 1.0).prefill_tokens
        cv[copies] = float(np.mean(tok.std(axis=0) / tok.mean(axis=0)))
    assert cv[8] < cv[1] / 2


def test_requests_per_s_sets_the_pool_rate(conv):
    period = trace_period_s(conv)
    sc = pool_scenario(
        {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": 12.0},
        servers=3,
        duration_s=period,
        report_interval_s=period / 4,
        step_s=period / 4 / 500,
    )
    r = simulate(sc)
    assert r.kpis["chat_requests"] == pytest.approx(12.0 * period, rel=1e-9)


def test_per_server_offsets_break_lockstep(conv):
    arrivals = {"kind": "trace", "path": "azure-llm-2023-conv"}
    t0 = np.arange(0.0, 600.0)
    blocks = {}
    for on in (False, True):
        fac = build_facility(pool_scenario({**arrivals, "offsets": on}, servers=16))
        blocks[on] = DemandModel(fac, np.random.default_rng(3)).block(t0, t0 + 1.0).decode_tokens
    lock, spread = blocks[False], blocks[True]
    assert np.all(lock == lock[:, :1])  # every server in lockstep
    assert not np.all(spread == spread[:, :1])
    # Same mean load, but the pool's total per second fluctuates less when copies are spread.
    total_lock, total_spread = lock.sum(axis=1), spread.sum(axis=1)
    cv = [t.std() / t.mean() for t in (total_lock, total_spread)]
    assert cv[1] < 0.5 * cv[0]


def test_too_little_capacity_backlog_grows_and_latency_rises(conv):
    # One 70B replica (8 H100) at 60 requests/s of the conversation trace: far beyond what it
    # serves. The queue grows every interval and so does the time to first token.
    arrivals = {"kind": "trace", "path": "azure-llm-2023-conv", "offsets": False}
    ample = simulate(
        pool_scenario({**arrivals, "requests_per_s": 0.5}, servers=1, duration_s=900, model="Llama-3-70B", tp=8)
    )
    over = simulate(
        pool_scenario({**arrivals, "requests_per_s": 60.0}, servers=1, duration_s=900, model="Llama-3-70B", tp=8)
    )
    backlog = over.timeseries["chat_backlog_tokens"].to_numpy()
    assert np.all(np.diff(backlog) > 0)
    ttft = over.timeseries["chat_ttft_p50_s"].to_numpy()
    assert ttft[-1] > 10 * ttft[0] > 0
    assert over.kpis["chat_ttft_p50_s"] > 20 * ample.kpis["chat_ttft_p50_s"]
    assert over.kpis["chat_ttft_p99_s"] >= over.kpis["chat_ttft_p50_s"] >= ample.kpis["chat_ttft_p99_s"]
    # Token conservation: booked + still queued = arrived.
    served = over.kpis["tokens_prefill"] + over.kpis["tokens_generated"]
    fac = build_facility(
        pool_scenario({**arrivals, "requests_per_s": 60.0}, servers=1, duration_s=900, model="Llama-3-70B", tp=8)
    )
    d = DemandModel(fac).block(np.arange(0.0, 900.0), np.arange(1.0, 901.0))
    assert served + backlog[-1] == pytest.approx(d.prefill_tokens.sum() + d.decode_tokens.sum(), rel=1e-9)


def test_power_cap_slows_prefill_more_than_decode(conv):
    # A 300 W cap lowers the SM clock of a 70B replica at 3 requests/s by a few per cent. A step's
    # compute slows as 1/f, its memory traffic not at all: the step that carries a whole prompt
    # (TTFT) is compute-heavy and slows most, the decode steps (TPOT) less, neither more than 1/f.
    arrivals = {"kind": "trace", "path": "azure-llm-2023-conv", "offsets": False, "requests_per_s": 3.0}
    free = simulate(pool_scenario(arrivals, servers=1, duration_s=600, model="Llama-3-70B", tp=8))
    capped = simulate(
        pool_scenario(arrivals, servers=1, duration_s=600, model="Llama-3-70B", tp=8, **{"fleet.power_cap_w": 300})
    )
    assert capped.kpis["capped_gpu_h"] > 0
    ttft_ratio = capped.kpis["chat_ttft_mean_s"] / free.kpis["chat_ttft_mean_s"]
    tpot_ratio = capped.kpis["chat_tpot_mean_s"] / free.kpis["chat_tpot_mean_s"]
    clock = capped.timeseries["clock_fraction_mean"].mean()
    assert clock < 0.99
    assert 1.0 < tpot_ratio < ttft_ratio < 1.0 / clock


def test_poisson_stream_uses_the_run_generator():
    arr = {"kind": "poisson", "requests_per_s": 40.0, "prompt_tokens": 300, "output_tokens": 120}
    sc = pool_scenario(arr, servers=4, duration_s=1200)
    a, b = simulate(sc), simulate(sc)
    c = simulate(sc.with_updates({"seed": 7}))
    assert a.kpis == b.kpis
    assert c.kpis["chat_requests"] != a.kpis["chat_requests"]
    # 48 000 expected requests: within 5 standard deviations (sqrt(48 000) = 219).
    assert abs(a.kpis["chat_requests"] - 48_000) < 5 * 219
    # Fixed lengths: tokens are exactly requests x length.
    assert a.kpis["tokens_prefill"] == pytest.approx(300 * a.kpis["chat_requests"], rel=1e-12)
    assert a.kpis["tokens_generated"] == pytest.approx(120 * a.kpis["chat_requests"], rel=1e-12)


def dispersion(arrivals, n_servers=8, seconds=3600):
    fac = build_facility(pool_scenario(arrivals, servers=n_servers, duration_s=seconds))
    t0 = np.arange(0.0, seconds, 10.0)
    req = DemandModel(fac, np.random.default_rng(11)).block(t0, t0 + 10.0).requests
    return req.var(axis=0).mean() / req.mean()  # index of dispersion of 10 s counts per server


def test_bursty_streams_are_burstier_than_poisson():
    base = {"requests_per_s": 16.0, "prompt_tokens": 500, "output_tokens": 100}
    poisson = dispersion({"kind": "poisson", **base})
    gamma = dispersion({"kind": "bursty", "process": "gamma", "cv": 3.0, **base})
    mmpp = dispersion(
        {"kind": "bursty", "process": "mmpp", "burst_factor": 10, "mean_low_s": 120, "mean_high_s": 30, **base}
    )
    assert poisson == pytest.approx(1.0, abs=0.15)  # Poisson counts: variance = mean
    assert gamma > 3.0 and mmpp > 3.0


def test_tokens_from_resamples_trace_lengths(conv):
    arr = {"kind": "poisson", "requests_per_s": 30.0, "tokens_from": "azure-llm-2023-conv"}
    r = simulate(pool_scenario(arr, servers=2, duration_s=1200))
    mean_out = r.kpis["tokens_generated"] / r.kpis["chat_requests"]
    # Mean of ~36 000 draws: within 5 standard errors of the trace's mean output length.
    se = conv["output_tokens"].std() / np.sqrt(r.kpis["chat_requests"])
    assert abs(mean_out - conv["output_tokens"].mean()) < 5 * se


def test_malformed_trace_row_names_file_line_and_field(tmp_path):
    trace = tmp_path / "bad.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.9951690,396,109\n"
        "2023-11-16 18:15:51.0000000,12x,5\n"
    )
    sc = pool_scenario({"kind": "trace", "path": "bad.csv"}).with_updates({})
    sc = sc.model_copy(update={"source_dir": tmp_path})
    with pytest.raises(ScenarioError) as exc:
        simulate(sc)
    msg = str(exc.value)
    assert "workloads.0.arrivals.path" in msg
    assert str(trace) in msg and "line 4" in msg and "ContextTokens" in msg


def test_missing_trace_names_the_field(tmp_path):
    sc = pool_scenario({"kind": "trace", "path": "nope.csv"}).model_copy(update={"source_dir": tmp_path})
    with pytest.raises(ScenarioError, match=r"workloads\.0\.arrivals\.path: no such trace file .*nope\.csv"):
        DemandModel(build_facility(sc))
    telemetry_as_requests = pool_scenario({"kind": "trace", "path": "nvidia-smi-sample"})
    with pytest.raises(ScenarioError, match="expected a requests trace, got nvidia-smi"):
        DemandModel(build_facility(telemetry_as_requests))


@pytest.mark.parametrize(
    ("arrivals", "expected"),
    [
        ({"kind": "trace", "path": "x.csv", "rate_scale": 2, "requests_per_s": 3}, "not both"),
        ({"kind": "bursty", "requests_per_s": 3}, "process 'gamma' needs cv"),
        ({"kind": "bursty", "process": "mmpp", "requests_per_s": 3, "cv": 2}, "needs burst_factor"),
        ({"kind": "trace", "path": "x.csv", "rate": 2}, "unknown field; valid fields here: copies, format, kind"),
    ],
)
def test_schema_errors_are_located(tmp_path, arrivals, expected):
    import yaml

    p = tmp_path / "s.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "base": "default",
                "workloads": [{"name": "a", "kind": "inference", "model": "Llama-3.1-8B", "arrivals": arrivals}],
            },
            sort_keys=False,
        )
    )
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    msg = str(exc.value)
    assert "workloads.0.arrivals" in msg and "(line " in msg and expected in msg


def test_cli_validate_and_run_reject_a_missing_trace(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "s.yaml"
    p.write_text(
        "base: default\nworkloads:\n  - name: a\n    kind: inference\n    model: Llama-3.1-8B\n"
        "    arrivals: {kind: trace, path: missing.csv}\n"
    )
    twin = [sys.executable, "-m", "twin.cli"]
    for args in (["validate", str(p)], ["run", str(p), "--out", str(tmp_path / "out")]):
        proc = subprocess.run([*twin, *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 2
        assert "workloads.0.arrivals.path" in proc.stderr and "missing.csv" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_long_run_over_a_large_pool_holds_one_trace(conv):
    # 24 h over 4 000 servers: the source keeps the trace once (cumulative sums over its rows)
    # and per-server offsets, never a looped or per-server copy; a block is ticks x servers.
    sc = load_scenario(
        "default",
        {
            "fleet.rows": 125,
            "duration_s": 86400,
            "workloads": [
                {
                    "name": "chat",
                    "kind": "inference",
                    "model": "Llama-3.1-8B",
                    "tensor_parallel": 1,
                    "arrivals": {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": 20000},
                }
            ],
        },
    )
    demand = DemandModel(build_facility(sc))
    src = demand.requests[0][1]
    held = [src.events.t_s, *src.events.running.values(), src.offsets]
    assert src.events.t_s.size == len(conv)
    assert src.offsets.shape == (4000, 1)
    assert sum(a.nbytes for a in held) < 1e6  # one trace (19 366 rows x 6 arrays) + 4 000 offsets
    t0 = np.arange(50_000.0, 50_100.0)
    block = demand.block(t0, t0 + 1.0)
    assert block.requests.shape == (100, 4000)
    assert block.requests.sum() == pytest.approx(20000 * 100, rel=0.2)
    # Compiled, the source adds one table of the trace (5 columns) and its search's buckets (8 a
    # request): 13 x 8 B a request, however many servers and ticks.
    demand.compile()
    again = demand.block(t0, t0 + 1.0)
    np.testing.assert_array_equal(again.requests, block.requests)
    assert src._consts is not None
    assert sum(a.nbytes for a in (*held, *src._consts)) < 1e6 + 13 * 8 * len(conv) + 1e3
