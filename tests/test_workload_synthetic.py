"""Synthetic generators: Poisson, diurnal (thinning), Gamma renewal, MMPP-2, token samplers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.workload import (
    AZURE_LLM_2023,
    REQUEST_COLUMNS,
    EmpiricalTokens,
    LognormalTokens,
    bin_requests,
    diurnal_requests,
    expected_rate,
    expected_request_bins,
    expected_requests,
    gamma_requests,
    mmpp2_requests,
    poisson_requests,
    read_azure_llm,
)

TOKENS = LognormalTokens(1000.0, 200.0, 1.0, 0.8)
DAY_S = 86400.0


def _check(df: pd.DataFrame, duration_s: float) -> None:
    assert tuple(df.columns) == REQUEST_COLUMNS
    assert df["arrival_s"].dtype == np.float64
    assert df["prompt_tokens"].dtype == np.int64
    t = df["arrival_s"].to_numpy()
    assert np.all(np.diff(t) >= 0)
    assert t.min() >= 0.0
    assert t.max() < duration_s
    assert (df["prompt_tokens"] >= 1).all()


def test_poisson_count_and_token_means() -> None:
    rate, duration = 10.0, 3600.0
    df = poisson_requests(rate, duration, np.random.default_rng(11), TOKENS)
    _check(df, duration)
    mean_n = rate * duration
    assert abs(len(df) - mean_n) < 4.5 * np.sqrt(mean_n)
    # Lognormal standard deviation: m * sqrt(exp(sigma^2) - 1).
    for col, m, s in (("prompt_tokens", 1000.0, 1.0), ("output_tokens", 200.0, 0.8)):
        se = m * np.sqrt(np.exp(s**2) - 1.0) / np.sqrt(len(df))
        assert abs(df[col].mean() - m) < 5 * se + 0.5  # + rounding to integers
    # Exponential inter-arrivals: coefficient of variation 1.
    gaps = np.diff(df["arrival_s"].to_numpy())
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)


def test_generators_are_reproducible_and_use_their_rng() -> None:
    a = poisson_requests(2.0, 100.0, np.random.default_rng(5), TOKENS)
    b = poisson_requests(2.0, 100.0, np.random.default_rng(5), TOKENS)
    c = poisson_requests(2.0, 100.0, np.random.default_rng(6), TOKENS)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_expected_rate_values() -> None:
    rate = expected_rate([0.0, 6 * 3600.0, 12 * 3600.0], 10.0, peak_to_mean=1.5, peak_hour=12.0)
    np.testing.assert_allclose(rate, [5.0, 10.0, 15.0], atol=1e-12)
    # start_s_of_day shifts the clock: t = 0 at noon is the peak.
    assert expected_rate(0.0, 10.0, 1.5, 12.0, start_s_of_day=43200.0) == pytest.approx(15.0)
    with pytest.raises(ValueError, match="peak_to_mean"):
        expected_rate(0.0, 1.0, peak_to_mean=2.5)


def test_expected_requests_is_the_integral_of_the_rate() -> None:
    step = 900.0
    n = expected_requests(0.0, step, 96, 3.0, peak_to_mean=1.8, peak_hour=15.0)
    fine = np.linspace(0.0, DAY_S, 96 * 200 + 1)
    r = expected_rate(fine, 3.0, peak_to_mean=1.8, peak_hour=15.0)
    numeric = np.array(
        [np.trapezoid(r[i * 200 : (i + 1) * 200 + 1], fine[i * 200 : (i + 1) * 200 + 1]) for i in range(96)]
    )
    np.testing.assert_allclose(n, numeric, rtol=1e-6)
    # Over whole days the cosine integrates to zero: mean rate x duration.
    assert n.sum() == pytest.approx(3.0 * DAY_S, rel=1e-12)
    bins = expected_request_bins(0.0, step, 96, 3.0, 1000.0, 200.0, peak_to_mean=1.8, peak_hour=15)
    np.testing.assert_allclose(bins.prompt_tokens, 1000.0 * n)
    assert bins.output_tokens.sum() == pytest.approx(200.0 * 3.0 * DAY_S, rel=1e-12)


def test_diurnal_hourly_counts_peak_at_the_peak_hour() -> None:
    mean, ratio, peak_hour, days = 1.0, 1.5, 15.0, 14
    df = diurnal_requests(mean, ratio, peak_hour, days * DAY_S, np.random.default_rng(2024), TOKENS)
    _check(df, days * DAY_S)
    hour = (df["arrival_s"].to_numpy() // 3600.0).astype(int) % 24
    counts = np.bincount(hour, minlength=24)
    expected = days * expected_requests(0.0, 3600.0, 24, mean, ratio, peak_hour)
    # Each hour-of-day count is Poisson: within 4.5 standard deviations of its mean.
    assert np.all(np.abs(counts - expected) < 4.5 * np.sqrt(expected))
    assert abs(counts.sum() - expected.sum()) < 4.5 * np.sqrt(expected.sum())
    # The rate peaks at 15:00, so the hours 14-15 h and 15-16 h have the largest (equal)
    # expected counts. The runner-up hours (13 h, 16 h) are more than 4 Poisson standard
    # deviations of the difference below them, so the observed maximum must be 14 h or 15 h;
    # likewise the minimum at 2 h or 3 h around the 03:00 trough.
    sd_diff = np.sqrt(expected[14] + expected[13])
    assert expected[14] - expected[13] > 4.0 * sd_diff
    assert int(np.argmax(counts)) in (14, 15)
    assert int(np.argmin(counts)) in (2, 3)


def test_diurnal_with_flat_profile_is_poisson() -> None:
    df = diurnal_requests(2.0, 1.0, 0.0, 3600.0, np.random.default_rng(9), TOKENS)
    assert abs(len(df) - 7200) < 4.5 * np.sqrt(7200)


def test_gamma_renewal_rate_and_burstiness() -> None:
    rate, cv, duration = 10.0, 3.0, 3600.0
    df = gamma_requests(rate, cv, duration, np.random.default_rng(21), TOKENS)
    _check(df, duration)
    # A renewal process's count has variance ~ rate * T * cv^2 for T >> 1/rate.
    assert abs(len(df) - rate * duration) < 4.5 * np.sqrt(rate * duration) * cv
    gaps = np.diff(df["arrival_s"].to_numpy())
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.1)


def test_mmpp2_mean_rate_and_overdispersion() -> None:
    low, high, m_low, m_high, duration = 1.0, 20.0, 60.0, 30.0, 4 * 3600.0
    df = mmpp2_requests(low, high, m_low, m_high, duration, np.random.default_rng(8), TOKENS)
    _check(df, duration)
    mean_rate = (low * m_low + high * m_high) / (m_low + m_high)
    counts = bin_requests(df, 0.0, 10.0, int(duration / 10.0)).requests
    assert counts.mean() == pytest.approx(10.0 * mean_rate, rel=0.1)
    # Poisson counts have variance/mean = 1; the modulation makes it much larger.
    assert counts.var() / counts.mean() > 5.0


def test_empirical_tokens_resample_real_pairs() -> None:
    code = read_azure_llm(AZURE_LLM_2023["code"])[0]
    sampler = EmpiricalTokens.from_trace(code)
    df = poisson_requests(5.0, 2000.0, np.random.default_rng(4), sampler)
    pairs = set(zip(code["prompt_tokens"], code["output_tokens"], strict=True))
    assert set(zip(df["prompt_tokens"], df["output_tokens"], strict=True)) <= pairs
    se = code["prompt_tokens"].std() / np.sqrt(len(df))
    assert abs(df["prompt_tokens"].mean() - code["prompt_tokens"].mean()) < 4.5 * se


def test_lognormal_fit_recovers_the_trace_means() -> None:
    conv = read_azure_llm(AZURE_LLM_2023["conv"])[0]
    fit = LognormalTokens.fit(conv)
    assert fit.mean_prompt_tokens == pytest.approx(conv["prompt_tokens"].mean())
    assert fit.mean_output_tokens == pytest.approx(conv.loc[conv["output_tokens"] > 0, "output_tokens"].mean())
    p, _ = fit.sample(200_000, np.random.default_rng(0))
    assert p.mean() == pytest.approx(fit.mean_prompt_tokens, rel=0.05)
