"""The compiled latency binning (twin.engine.latency_kernel) against numpy's (twin.engine.pool_stats)."""

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import twin.engine.kernel as kernel_module
from twin import load_scenario, simulate
from twin.engine import pool_stats
from twin.engine.latency_kernel import CompiledBinning
from twin.engine.pool_stats import HIGH_S, LOW_S, N_BINS, _Binned, bin_edges, bin_index

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _compiled() -> CompiledBinning:
    return CompiledBinning(bin_edges(), LOW_S, HIGH_S)


def _same(a: _Binned, b: _Binned) -> None:
    for name in ("tick", "w", "wv", "idx"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_every_bin_edge_is_numpys_a_few_hundred_doubles_either_side():
    edges = bin_edges()
    assert edges.size == N_BINS and edges[0] == -np.inf and np.all(np.diff(edges[1:]) > 0)
    # The k-th edge is where numpy's bin reaches k, about LOW_S * 10 ** (k / 200).
    k = np.arange(1, N_BINS)
    np.testing.assert_allclose(edges[1:], LOW_S * 10.0 ** (k / 200.0), rtol=1e-12)
    bits = edges[1:].view(np.int64)
    near = (bits[:, None] + np.arange(-300, 301)[None, :]).view(np.float64).ravel()
    expect = bin_index(near)
    assert np.array_equal(np.searchsorted(edges, near, side="right") - 1, expect)
    got = _Binned(near[None, :], np.ones((1, near.size)), compiled=_compiled())
    np.testing.assert_array_equal(got.idx, expect)
    # Below and above the bins' range, signed zeros, subnormals, the largest double.
    far = np.array([-1e300, -1.0, -0.0, 0.0, 5e-324, 1e-300, LOW_S, HIGH_S, 1e6, 1e300, 1.7976931348623157e308])
    with np.errstate(over="ignore"):  # (the largest double over LOW_S is inf: the last bin)
        expect = bin_index(far)
    np.testing.assert_array_equal(_Binned(far[None, :], np.ones((1, far.size)), compiled=_compiled()).idx, expect)
    assert expect[-1] == N_BINS - 1


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)
latencies = st.one_of(
    finite_or_not,
    st.floats(min_value=0.0, max_value=10 * HIGH_S),
    st.floats(min_value=LOW_S / 10, max_value=LOW_S * 10),
    st.sampled_from([0.0, -0.0, LOW_S, HIGH_S, 5e-324, 1.7976931348623157e308]),
)


@settings(max_examples=150, deadline=None)
@given(
    values=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12), elements=latencies),
    data=st.data(),
)
def test_the_compiled_binning_keeps_numpys_entries_to_the_bit(values, data):
    shape = values.shape
    weights = data.draw(
        hnp.arrays(np.float64, shape, elements=st.one_of(st.floats(-1.0, 1e6), st.sampled_from([0.0, np.nan])))
    )
    col = data.draw(st.none() | hnp.arrays(np.float64, (shape[1],), elements=st.floats(0.0, 64.0)))
    with np.errstate(all="ignore"):  # (huge values times weights overflow, as IEEE does compiled)
        expect = _Binned(values, weights, col)
    binning = _compiled()
    big = np.ones((20, 20))
    _Binned(big, big, None, binning)  # scratch left longer than this block's entries
    _same(_Binned(values, weights, col, binning), expect)
    # Views of a wider block (a pool's columns) bin as their copies do.
    wide = np.concatenate([values, values], axis=1)
    _same(_Binned(wide[:, shape[1] :], weights, col, binning), expect)


def test_a_run_bins_latencies_compiled_with_its_compiled_serving(monkeypatch):
    switched = []
    binned = pool_stats._Binned

    def both(values, weights, col_weight=None, compiled=None):
        """The run's binning, checked against numpy's on the same block."""
        switched.append(compiled is not None)
        got = binned(values, weights, col_weight, compiled)
        _same(got, binned(values, weights, col_weight))
        return got

    monkeypatch.setattr(pool_stats, "_Binned", both)
    sc = load_scenario(SCENARIOS / "azure-llm-trace.yaml", {"duration_s": 1200.0})
    for switch_at in (np.inf, 0.0):
        switched.clear()
        monkeypatch.setattr(kernel_module, "COMPILED_FROM_CELLS", switch_at)
        simulate(sc)
        # Two pools, two latencies a block; a block is committed after the cells it counts switch.
        assert len(switched) >= 8 and all(on == (switch_at == 0.0) for on in switched)
