"""The compiled request lookup (twin.engine.request_kernel) against the numpy one it replaces."""

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import twin.engine.kernel as kernel_module
from twin import load_scenario, simulate
from twin.engine.sources import RequestSource
from twin.workload.periodic import MAX_BUCKET

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _trace(
    rng: np.random.Generator, n: int, period_s: float, burst: bool, grid: bool = False
) -> tuple[np.ndarray, ...]:
    t = rng.uniform(0.0, period_s, n)
    if grid:  # on a quarter-second grid: requests at tick edges (a window holds [a, b))
        t = np.minimum(np.floor(t * 4.0) / 4.0, np.nextafter(period_s, 0.0))
    if burst:  # more requests at one instant than a bucket holds: the lookup searches instead
        t[: MAX_BUCKET + 5] = t[0]
    prompt = rng.integers(1, 5000, n).astype(float)
    output = rng.integers(0, 700, n).astype(float)  # zero outputs: ticks with prompts but no decode
    return t, prompt, output


def _blocks(src: RequestSource, starts: list[float], sizes: list[int], step_s: float) -> np.ndarray:
    """The five columns of ``src`` over contiguous blocks (and one gap), stacked ``(5, ticks, S)``."""
    got = []
    for a, k in zip(starts, sizes, strict=True):
        t0 = a + step_s * np.arange(k)
        b = src.block(t0, t0 + step_s)
        got.append(np.stack([b.requests, b.prefill_tokens, b.decode_tokens, b.prompt_len, b.context_len]))
    return np.concatenate(got, axis=1)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_events=st.integers(0, 400),
    period_s=st.floats(5.0, 900.0),
    loop=st.booleans(),
    burst=st.booleans(),
    grid=st.booleans(),
    copies=st.integers(1, 4),
    n_servers=st.integers(1, 9),
    shifted=st.booleans(),
    step_s=st.sampled_from([0.25, 1.0, 15.0, 7.3]),
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    start_s=st.one_of(st.floats(-20.0, 0.0), st.floats(0.0, 2000.0)),
)
def test_the_compiled_lookup_is_numpys_to_the_bit(
    seed, n_events, period_s, loop, burst, grid, copies, n_servers, shifted, step_s, sizes, start_s
):
    rng = np.random.default_rng(seed)
    burst = burst and n_events > MAX_BUCKET + 5
    t, prompt, output = _trace(rng, n_events, period_s, burst, grid)
    if shifted:  # whole ticks for the first copy (as the sources draw them), anywhere for the others
        first = step_s * rng.integers(0, max(1, int(period_s // step_s)), n_servers)
        offsets = np.column_stack((first, rng.uniform(0.0, period_s, (n_servers, copies - 1))))
        offsets[n_servers // 2 :] = offsets[0]  # servers sharing a row
    else:
        offsets = None
    # Contiguous blocks, then a jump (the compiled lookup does not reuse across it) and more.
    starts, at = [], start_s
    for k in sizes:
        starts.append(at)
        at += k * step_s
    starts[-1] += 3.5 * step_s if len(starts) > 1 else 0.0

    def run(compiled: bool) -> np.ndarray:
        src = RequestSource.from_frame(t, prompt, output, period_s, loop, 1.7, offsets, n_servers)
        src.compiled = compiled
        return _blocks(src, starts, sizes, step_s)

    compiled, numpy = run(True), run(False)
    np.testing.assert_array_equal(compiled, numpy)


def test_the_compiled_lookup_sums_every_request_once():
    # Conservation, independently of numpy's route: over whole periods a looped copy receives the
    # trace's requests and tokens once per period, whatever its offsets; without looping, once.
    rng = np.random.default_rng(7)
    period = 97.0
    t, prompt, output = _trace(rng, 300, period, burst=False)
    offsets = np.column_stack((rng.integers(0, 97, 5).astype(float), rng.uniform(0.0, period, (5, 2))))
    for loop, periods in ((True, 3), (False, 1)):
        src = RequestSource.from_frame(t, prompt, output, period, loop, 3.0, offsets, 5)
        src.compiled = True
        edges = np.linspace(0.0, 3 * period, 3 * 97 * 4 + 1)  # quarter-second ticks over three periods
        b = src.block(edges[:-1], edges[1:])
        assert b.requests.shape == (edges.size - 1, 5)
        np.testing.assert_allclose(b.requests.sum(axis=0), 3.0 * 300 * periods, rtol=1e-12)
        np.testing.assert_allclose(b.prefill_tokens.sum(axis=0), 3.0 * prompt.sum() * periods, rtol=1e-12)
        np.testing.assert_allclose(b.decode_tokens.sum(axis=0), 3.0 * output.sum() * periods, rtol=1e-12)


def test_a_run_looks_requests_up_compiled_with_its_compiled_serving(monkeypatch):
    compiled = []
    block = RequestSource.block

    def spy(self, t0, t1, servers=slice(None)):
        compiled.append((id(self), self.compiled))
        return block(self, t0, t1, servers)

    monkeypatch.setattr(RequestSource, "block", spy)
    sc = load_scenario(SCENARIOS / "azure-llm-trace.yaml", {"duration_s": 1200.0})
    runs = {}
    for switch_at in (np.inf, 0.0):
        compiled.clear()
        monkeypatch.setattr(kernel_module, "COMPILED_FROM_CELLS", switch_at)
        runs[switch_at] = simulate(sc).timeseries
        # Each source's first block is looked up in numpy (it counts the cells that switch), the
        # rest compiled where the run switched.
        firsts = {}
        for src, on in compiled:
            firsts.setdefault(src, []).append(on)
        assert len(firsts) == 2 and all(len(calls) > 1 for calls in firsts.values())
        for calls in firsts.values():
            assert calls[0] is False and all(on == (switch_at == 0.0) for on in calls[1:])
    # The requests each pool received in each report interval are the same to the bit.
    for col in ("chat-70b_requests", "code-8b_requests", "chat-70b_tokens_prefill"):
        np.testing.assert_array_equal(runs[np.inf][col].to_numpy(), runs[0.0][col].to_numpy())
