"""Binning for the engine: exact token conservation and time-weighted telemetry means."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import twin.workload.binning
import twin.workload.controls
import twin.workload.requests
import twin.workload.synthetic
from twin.workload import (
    AZURE_LLM_2023,
    RequestBins,
    bin_requests,
    read_azure_llm,
    resample_telemetry,
)


def _frame(t: list[float], p: list[int], o: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arrival_s": np.asarray(t, dtype=np.float64),
            "prompt_tokens": np.asarray(p, dtype=np.int64),
            "output_tokens": np.asarray(o, dtype=np.int64),
        }
    )


@pytest.mark.parametrize(
    "module",
    [
        twin.workload.binning,
        twin.workload.controls,
        twin.workload.requests,
        twin.workload.synthetic,
    ],
)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, raise_on_error=False)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


def test_bins_hand_example() -> None:
    df = _frame([0.0, 0.5, 1.0, 2.5, 3.0, -0.1], [10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6])
    bins = bin_requests(df, 0.0, 1.0, 3)
    assert isinstance(bins, RequestBins)
    assert bins.requests.dtype == np.float64
    # 1.0 opens bin 1; 3.0 is the end of the window (excluded); -0.1 is before it.
    assert bins.requests.tolist() == [2.0, 1.0, 1.0]
    assert bins.prompt_tokens.tolist() == [30.0, 30.0, 40.0]
    assert bins.output_tokens.tolist() == [3.0, 3.0, 4.0]
    assert bins.edges_s.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert bins.rate_per_s().tolist() == [2.0, 1.0, 1.0]


def test_bins_edges_do_not_suffer_from_float_division() -> None:
    # floor(0.3 / 0.1) == 2 in floating point; the edge 0.1 * 3 is where bin 3 starts.
    t = [0.1 * k for k in range(10)]
    bins = bin_requests(_frame(t, [1] * 10, [1] * 10), 0.0, 0.1, 10)
    assert bins.requests.sum() == 10
    assert bins.requests.max() <= 2


@pytest.mark.parametrize("kind", ["code", "conv"])
def test_bins_conserve_real_trace_tokens(kind: str) -> None:
    df = read_azure_llm(AZURE_LLM_2023[kind])[0]
    n_steps = int(np.ceil((df["arrival_s"].max() + 1e-9) / 60.0))
    bins = bin_requests(df, 0.0, 60.0, n_steps)
    assert bins.requests.sum() == len(df)
    assert bins.prompt_tokens.sum() == df["prompt_tokens"].sum()
    assert bins.output_tokens.sum() == df["output_tokens"].sum()
    # A window in the middle: the sums equal the trace's sums inside it.
    part = bin_requests(df, 600.0, 7.5, 100)
    inside = (df["arrival_s"] >= 600.0) & (df["arrival_s"] < 1350.0)
    assert part.requests.sum() == inside.sum()
    assert part.prompt_tokens.sum() == df.loc[inside, "prompt_tokens"].sum()
    assert part.output_tokens.sum() == df.loc[inside, "output_tokens"].sum()


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.floats(-50.0, 150.0, allow_nan=False),
            st.integers(0, 10**6),
            st.integers(0, 10**5),
        ),
        max_size=200,
    ),
    t0_s=st.floats(-20.0, 20.0, allow_nan=False),
    step_s=st.floats(0.01, 50.0, allow_nan=False),
    n_steps=st.integers(0, 300),
)
def test_property_binning_conserves_tokens(
    rows: list[tuple[float, int, int]], t0_s: float, step_s: float, n_steps: int
) -> None:
    df = _frame([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    bins = bin_requests(df, t0_s, step_s, n_steps)
    assert len(bins.requests) == n_steps
    edges = bins.edges_s
    t = df["arrival_s"].to_numpy()
    inside = (t >= edges[0]) & (t < edges[-1]) if n_steps else np.zeros(len(t), dtype=bool)
    assert bins.requests.sum() == inside.sum()
    assert bins.prompt_tokens.sum() == df["prompt_tokens"].to_numpy()[inside].sum()
    assert bins.output_tokens.sum() == df["output_tokens"].to_numpy()[inside].sum()
    assert np.all(bins.requests >= 0)
    # Each request is counted in the interval that contains it.
    for ti, pi in zip(t[inside][:20], df["prompt_tokens"].to_numpy()[inside][:20], strict=True):
        i = int(np.searchsorted(edges, ti, side="right")) - 1
        assert edges[i] <= ti < edges[i + 1]
        assert bins.prompt_tokens[i] >= pi


# --------------------------------------------------------------------------- telemetry


def _telemetry() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time_s": [0.0, 0.0, 1.0, 1.5, 2.0, 3.0],
            "gpu_index": [0, 1, 0, 1, 0, 0],
            "power_w": [100.0, 50.0, 200.0, np.nan, 300.0, 400.0],
        }
    )


def test_resample_one_gpu_by_hand() -> None:
    df = _telemetry()
    # GPU 0 holds 100 W on [0,1), 200 W on [1,2), 300 W on [2,3), 400 W from 3 s on.
    out = resample_telemetry(df, 0.0, 1.0, 5, "power_w", gpu_index=0)
    assert out.tolist() == [100.0, 200.0, 300.0, 400.0, 400.0]
    # [0.5, 2.5): 0.5*100 + 1*200 + 0.5*300 = 400 J over 2 s -> 200 W.
    assert resample_telemetry(df, 0.5, 2.0, 1, "power_w", gpu_index=0).tolist() == [200.0]
    # Before the first sample: undefined; partly before: mean over the defined part.
    out = resample_telemetry(df, -2.0, 1.5, 2, "power_w", gpu_index=0)
    assert np.isnan(out[0])
    assert out[1] == pytest.approx(100.0)


def test_resample_skips_missing_samples_and_reduces_gpus() -> None:
    df = _telemetry()
    # GPU 1's NaN at 1.5 s is skipped: 50 W carries on (forward fill).
    gpu1 = resample_telemetry(df, 0.0, 1.0, 3, "power_w", gpu_index=1)
    assert gpu1.tolist() == [50.0, 50.0, 50.0]
    total = resample_telemetry(df, 0.0, 1.0, 3, "power_w", reduce="sum")
    assert total.tolist() == [150.0, 250.0, 350.0]
    mean = resample_telemetry(df, 0.0, 1.0, 3, "power_w")
    assert mean.tolist() == [75.0, 125.0, 175.0]
    assert np.isnan(resample_telemetry(df, 0.0, 1.0, 2, "power_w", gpu_index=7)).all()
    with pytest.raises(ValueError, match="reduce"):
        resample_telemetry(df, 0.0, 1.0, 2, "power_w", reduce="max")


def test_resample_conserves_energy_of_a_step_signal() -> None:
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0.0, 100.0, 500))
    t[0] = 0.0
    p = rng.uniform(50.0, 700.0, 500)
    df = pd.DataFrame({"time_s": t, "gpu_index": 0, "power_w": p})
    out = resample_telemetry(df, 0.0, 0.37, 270, "power_w")
    window_end = 0.37 * 270
    # Exact integral of the zero-order-hold signal over [0, window_end).
    upto = t < window_end
    tt = np.append(t[upto], window_end)
    exact = float(np.sum(p[upto] * np.diff(tt)))
    assert out.sum() * 0.37 == pytest.approx(exact, rel=1e-10)
