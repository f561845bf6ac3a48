"""Trace controls: time scaling, rate scaling, looping, offset copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.workload import (
    AZURE_LLM_2023,
    REQUEST_COLUMNS,
    copy_offsets_s,
    loop_trace,
    offset_copies,
    read_azure_llm,
    scale_rate,
    scale_time,
    trace_period_s,
)


@pytest.fixture(scope="module")
def code() -> pd.DataFrame:
    return read_azure_llm(AZURE_LLM_2023["code"])[0]


def _sorted_pairs(df: pd.DataFrame) -> list[tuple[int, int]]:
    return sorted(zip(df["prompt_tokens"].tolist(), df["output_tokens"].tolist(), strict=True))


def _mean_tolerance(x: np.ndarray, m: int) -> float:
    """Four standard errors of the mean of ``m`` draws without replacement from ``x``."""
    n = len(x)
    return 4.0 * x.std() / np.sqrt(m) * np.sqrt(max(1.0 - m / n, 0.0))


def test_trace_period_is_span_plus_mean_gap() -> None:
    df = pd.DataFrame({"arrival_s": [2.0, 3.0, 6.0], "prompt_tokens": 1, "output_tokens": 1})
    assert trace_period_s(df) == 6.0  # span 4 s + mean gap 2 s
    with pytest.raises(ValueError, match="two requests"):
        trace_period_s(df.iloc[:1])


def test_scale_time(code: pd.DataFrame) -> None:
    out = scale_time(code, 2.0)
    assert tuple(out.columns) == REQUEST_COLUMNS
    assert len(out) == len(code)
    np.testing.assert_allclose(out["arrival_s"], 2.0 * code["arrival_s"])
    assert (out["prompt_tokens"] == code["prompt_tokens"]).all()
    with pytest.raises(ValueError, match="factor"):
        scale_time(code, 0.0)


@pytest.mark.parametrize("factor", [0.3, 0.5, 1.0, 2.0, 2.5, 4.25])
def test_scale_rate_scales_count_and_keeps_token_means(code: pd.DataFrame, factor: float) -> None:
    n = len(code)
    out = scale_rate(code, factor, np.random.default_rng(7))
    assert tuple(out.columns) == REQUEST_COLUMNS
    assert out["prompt_tokens"].dtype == np.int64
    whole = int(np.floor(factor))
    expected_n = whole * n + round((factor - whole) * n)
    assert len(out) == expected_n
    assert abs(len(out) - factor * n) <= 1
    # Same window: every arrival stays within one trace period of the first.
    t0 = code["arrival_s"].min()
    assert out["arrival_s"].min() >= t0
    assert out["arrival_s"].max() < t0 + trace_period_s(code)
    assert np.all(np.diff(out["arrival_s"].to_numpy()) >= 0)
    # Every request is a copy of an input request.
    assert set(_sorted_pairs(out)) <= set(_sorted_pairs(code))
    for col in ("prompt_tokens", "output_tokens"):
        x = code[col].to_numpy(dtype=float)
        frac_n = expected_n - whole * n
        if frac_n == 0:
            assert out[col].mean() == pytest.approx(x.mean(), rel=1e-12)
        else:
            # Whole copies keep the mean exactly; only the partial copy is random.
            tol = _mean_tolerance(x, frac_n) * frac_n / expected_n
            assert abs(out[col].mean() - x.mean()) < tol


def test_scale_rate_whole_copies_conserve_tokens_exactly(code: pd.DataFrame) -> None:
    out = scale_rate(code, 3.0, np.random.default_rng(1))
    assert out["prompt_tokens"].sum() == 3 * code["prompt_tokens"].sum()
    assert out["output_tokens"].sum() == 3 * code["output_tokens"].sum()
    # The copies are shifted, so they do not arrive in lockstep.
    assert out["arrival_s"].nunique() > 2 * len(code)


def test_scale_rate_is_reproducible_with_its_generator(code: pd.DataFrame) -> None:
    a = scale_rate(code, 1.7, np.random.default_rng(3))
    b = scale_rate(code, 1.7, np.random.default_rng(3))
    c = scale_rate(code, 1.7, np.random.default_rng(4))
    pd.testing.assert_frame_equal(a, b)
    assert not a["arrival_s"].equals(c["arrival_s"])


def test_loop_trace_count(code: pd.DataFrame) -> None:
    period = trace_period_s(code)
    t = code["arrival_s"].to_numpy()
    out = loop_trace(code, 2.5 * period)
    expected = 2 * len(code) + int(np.count_nonzero(t - t.min() < 0.5 * period))
    assert len(out) == expected
    assert out["arrival_s"].max() < 2.5 * period
    # Copy 1 is copy 0 shifted by one period.
    second = out[(out["arrival_s"] >= period) & (out["arrival_s"] < 2 * period)]
    np.testing.assert_allclose(second["arrival_s"].to_numpy() - period, np.sort(t), atol=1e-9)
    # Shorter than the trace: truncation.
    short = loop_trace(code, 60.0)
    assert len(short) == int(np.count_nonzero(t < 60.0))


def test_loop_trace_small_example() -> None:
    df = pd.DataFrame({"arrival_s": [0.0, 1.0, 2.0], "prompt_tokens": [1, 2, 3], "output_tokens": [4, 5, 6]})
    out = loop_trace(df, 7.5)  # period 3 s: copies at 0, 3, 6
    assert out["arrival_s"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert out["prompt_tokens"].tolist() == [1, 2, 3, 1, 2, 3, 1, 2]


def test_offset_copies_spacing_and_random(code: pd.DataFrame) -> None:
    period = trace_period_s(code)
    offsets = copy_offsets_s(code, 4, spacing_s=10.0)
    assert offsets.tolist() == [0.0, 10.0, 20.0, 30.0]
    out = offset_copies(code, 4, spacing_s=10.0)
    assert len(out) == 4 * len(code)
    assert out["copy"].dtype == np.int64
    t = code["arrival_s"].to_numpy()
    for k in range(4):
        copy = out[out["copy"] == k]
        assert _sorted_pairs(copy) == _sorted_pairs(code)
        expected = np.sort(np.mod(t + 10.0 * k, period))
        np.testing.assert_allclose(copy["arrival_s"].to_numpy(), expected, atol=1e-9)
    rnd = copy_offsets_s(code, 8, rng=np.random.default_rng(0))
    assert rnd[0] == 0.0
    assert np.all((rnd >= 0) & (rnd < period))
    assert len(np.unique(rnd)) == 8
    combined = offset_copies(code, 8, rng=np.random.default_rng(0))
    assert combined["arrival_s"].between(0.0, period, inclusive="left").all()
    with pytest.raises(ValueError, match="exactly one"):
        copy_offsets_s(code, 2)
    with pytest.raises(ValueError, match="exactly one"):
        copy_offsets_s(code, 2, rng=np.random.default_rng(0), spacing_s=1.0)
