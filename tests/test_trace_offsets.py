"""Per-server trace offsets: whole ticks, copies shifted alike, each distinct row looked up once."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin import load_scenario
from twin.engine.demand import DemandModel
from twin.engine.sources import RequestSource, SignalSource
from twin.facility import build_facility
from twin.workload.periodic import PeriodicSignal


def trace_pool(servers: int, step_s: float, copies: int, tp: int = 1):
    over = {
        "fleet.rows": 1,
        "fleet.racks_per_row": 1,
        "fleet.servers_per_rack": servers,
        "duration_s": 420 * step_s,
        "step_s": step_s,
        "report_interval_s": 420 * step_s,
        "workloads": [
            {
                "name": "chat",
                "kind": "inference",
                "model": "Llama-3.1-8B" if tp == 1 else "Llama-3-70B",
                "servers": servers,
                "tensor_parallel": tp,
                "arrivals": {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": 50.0, "copies": copies},
            }
        ],
    }
    fac = build_facility(load_scenario("default", over))
    return fac, DemandModel(fac, np.random.default_rng(5))


@pytest.mark.parametrize(("step_s", "copies", "servers"), [(1.0, 1, 40), (7.0, 3, 40), (60.0, 4, 400)])
def test_offsets_are_whole_ticks_and_a_phase_is_one_stream(step_s, copies, servers):
    _, demand = trace_pool(servers, step_s, copies)
    src = demand.requests[0][1]
    assert isinstance(src, RequestSource)
    o, period = src.offsets, src.events.period_s
    assert o.shape == (servers, copies)
    assert np.all((o >= 0) & (o < period))
    assert o[0, 0] == 0.0  # the pool's first server replays the trace as it is
    ticks = o[:, 0] / step_s
    np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-9)  # a whole number of ticks
    phases = int(period // step_s)
    rows = src.phases.rows
    assert 1 < len(rows) <= phases
    # One row per phase: servers on a phase share every copy's shift; phases draw their own.
    assert np.unique(rows[:, 0]).size == len(rows)
    if copies > 1:
        assert np.unique(rows[:, 1:]).size == rows[:, 1:].size
    if servers > phases:  # more servers than phases: they share, at most the phases' count of streams
        assert len(rows) < servers


def test_servers_of_a_replica_share_their_offset():
    _, demand = trace_pool(16, 1.0, 1, tp=16)  # 16 GPUs a replica: two 8-GPU servers each
    o = demand.requests[0][1].offsets[:, 0]
    assert np.all(o[0::2] == o[1::2])
    assert len(set(o[0::2])) > 1


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(st.integers(0, 5), min_size=1, max_size=12),
    t_first=st.floats(0.0, 20_000.0),
    dt=st.sampled_from([0.5, 1.0, 15.0, 60.0]),
    n_ticks=st.integers(1, 30),
    pick=st.lists(st.integers(0, 11), max_size=6),
)
def test_a_row_of_offsets_is_looked_up_once_with_each_servers_own_result(rows, t_first, dt, n_ticks, pick):
    # Servers share rows of offsets (a phase); the source's block, looked up per distinct row and
    # given to the servers, equals each server's own source, bit for bit, for any selection.
    rng = np.random.default_rng(0)
    table = rng.uniform(0.0, 900.0, size=(6, 2))
    offsets = table[np.asarray(rows)]
    t = np.sort(rng.uniform(0.0, 900.0, 200))
    prompt, output = rng.integers(1, 4000, 200).astype(float), rng.integers(1, 900, 200).astype(float)
    t0 = t_first + dt * np.arange(n_ticks)
    t1 = t0 + dt
    src = RequestSource.from_frame(t, prompt, output, 950.0, True, 1.7, offsets, len(rows))
    got = src.block(t0, t1)
    for s in range(len(rows)):
        own = RequestSource.from_frame(t, prompt, output, 950.0, True, 1.7, offsets[s : s + 1], 1).block(t0, t1)
        for name in ("requests", "prefill_tokens", "decode_tokens", "prompt_len", "context_len"):
            assert np.array_equal(getattr(got, name)[:, s], getattr(own, name)[:, 0]), name
    servers = np.array(sorted({p % len(rows) for p in pick}), dtype=np.int64)
    part = src.block(t0, t1, servers)
    assert np.array_equal(part.decode_tokens, got.decode_tokens[:, servers])
    assert part.requests.shape == (n_ticks, servers.size)


def test_a_replayed_signal_is_looked_up_once_per_offset():
    sig = PeriodicSignal(np.array([0.0, 10.0, 25.0]), np.array([0.2, 0.9, 0.5]), 40.0, True)
    offsets = np.array([0.0, 12.0, 0.0, 33.0, 12.0])
    src = SignalSource(sig, offsets, 5)
    t0 = np.arange(0.0, 120.0, 3.0)
    got = src.block(t0, t0 + 3.0)
    want = sig.window_mean(t0[:, None], t0[:, None] + 3.0, offsets[None, :])
    assert np.array_equal(got, np.broadcast_to(want, got.shape))
    assert len(src.phases.rows) == 3
    assert np.array_equal(src.block(t0, t0 + 3.0, np.array([3, 4])), got[:, [3, 4]])
