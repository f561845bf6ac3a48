"""Fuzzing the whole run (issue 15): any scenario ends in a result whose ledger balances and whose
KPIs are finite or null, or in a named error; never a traceback, never inf or a negative energy."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from twin import catalog, load_scenario, simulate
from twin.errors import InvalidInputError

#: A one-rack pod (two 8-GPU servers) for half an hour: each example runs in well under a second.
TINY: dict[str, Any] = {
    "fleet.rows": 1, "fleet.racks_per_row": 1, "fleet.servers_per_rack": 2,
    "duration_s": 1800, "step_s": 10, "report_interval_s": 300,
    "power.ups.rated_w": 40e3, "power.transformer.rated_w": 80e3, "site.other_facility_power_w": 200,
    "weather": {"source": "constant", "dry_bulb_c": 25, "wet_bulb_c": 18},
    "workloads": [{"name": "chat", "kind": "inference", "model": "Llama-3.1-8B", "max_batch": 64,
                   "arrivals": {"kind": "constant", "requests_per_s": 20, "prompt_tokens": 500,
                                "output_tokens": 200}}],
}  # fmt: skip

wide = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e3, 1e7),
    st.integers(-10, 10**12),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
)

#: Fields a user sets, each with values in (or just past) its physical range.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "fleet.power_cap_w": st.one_of(st.none(), st.floats(0, 1000)),
    "fleet.gpus_per_server": st.sampled_from([1, 2, 4, 8]),
    "fleet.server.other_idle_power_w": st.floats(0, 3000),
    "workloads.0.max_batch": st.integers(1, 4096),
    "workloads.0.tensor_parallel": st.sampled_from([1, 2, 4, 8, 16]),
    "workloads.0.arrivals.requests_per_s": st.floats(1e-3, 1e4),
    "workloads.0.arrivals.prompt_tokens": st.floats(0, 1e5),
    "workloads.0.arrivals.output_tokens": st.floats(1, 1e4),
    "cooling.design_heat_w": st.floats(1, 1e6),
    "cooling.liquid_class": st.sampled_from(["W17", "W27", "W32", "W40", "W45"]),
    "cooling.type": st.sampled_from(["air", "hybrid", "liquid"]),
    "weather.dry_bulb_c": st.floats(-40, 50),
    "weather.wet_bulb_c": st.floats(-40, 35),
    "power.ups.rated_w": st.floats(10e3, 1e6),
    "power.psu.rated_w": st.floats(500, 2e4),
    "site.other_facility_power_w": st.floats(0, 1e5),
    "duration_s": st.floats(1, 7200),
    "step_s": st.floats(0.1, 600),
    "report_interval_s": st.floats(1, 3600),
    "fleet.accelerator": st.sampled_from(catalog.accelerator_names()),
    # Catalog names and shipped Hugging Face ids: dense, MoE, FP8, MXFP4, hybrid SSM, windowed attention.
    "workloads.0.model": st.sampled_from(
        [
            "Llama-3-70B",
            "Mixtral-8x7B",
            "Qwen/Qwen3-30B-A3B-Instruct-2507",
            "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
            "deepseek-ai/DeepSeek-V3.1",
            "openai/gpt-oss-20b",
            "nvidia/NVIDIA-Nemotron-Nano-9B-v2",
            "google/gemma-3-12b-it",
        ]
    ),
    "workloads.0.arrivals": st.sampled_from(
        [
            {"kind": "poisson", "requests_per_s": 5, "prompt_tokens": 800, "output_tokens": 300},
            {"kind": "bursty", "requests_per_s": 5, "cv": 3.0},
            {"kind": "diurnal", "requests_per_s": 20, "peak_to_mean": 1.5},
            {"kind": "trace", "path": "azure-llm-2023-code", "requests_per_s": 20},
        ]
    ),
    "workloads": st.just(
        [
            TINY["workloads"][0] | {"servers": 1},
            {"name": "train", "kind": "training", "model": "Llama-3-70B", "servers": 1},
        ]
    ),
    "controls.site_power_limit_w": st.one_of(st.none(), st.floats(1e3, 2e5)),
    "controls.training_power_floor_fraction": st.one_of(st.none(), st.floats(0, 1)),
    "events": st.sampled_from(
        [
            [{"time_s": 600, "kind": "utility_loss", "duration_s": 300}],
            [{"time_s": 300, "kind": "chiller_trip", "count": 9}],
            [{"time_s": 100, "kind": "crah_fail", "count": 5, "duration_s": 600}],
            [{"time_s": 0, "kind": "cdu_pump_fail", "count": 4}],
        ]
    ),
}
#: The same fields with values that are extreme or simply wrong.
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    **{k: st.one_of(v, wide) for k, v in PLAUSIBLE.items()},
    "cooling.liquid_class": st.sampled_from(["W17", "W99", ""]),
    "cooling.type": st.sampled_from(["air", "water"]),
    "events": st.lists(
        st.fixed_dictionaries({"time_s": wide, "kind": st.sampled_from(["utility_loss", "chiller_trip", "x"])}),
        max_size=2,
    ),
}


def changes_of(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """One to four of ``fields``, each with a drawn value."""
    keys = st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=4, unique=True)
    return keys.flatmap(lambda ks: st.fixed_dictionaries({k: fields[k] for k in ks}))


#: Most ticks an example may run: a fleet that keeps shutting down and rebooting (a plant sized for
#: 1 W) changes every tick, a few ms each, so a drawn month at 10 s ticks would take ten minutes.
#: Longer runs are the hostile-scenario tests' business (refused past 1e9 ticks, memory checked).
MAX_TICKS = 10_000


def run_or_refuse(changes: dict[str, Any]) -> None:
    """The run ends in a named error, or balances with finite KPIs (undefined ones NaN, i.e. null)."""
    try:
        sc = load_scenario("default", {**TINY, **changes})
        assume(sc.duration_s / sc.step_s <= MAX_TICKS)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a RuntimeWarning (overflow, 0/0) is a wrong number on its way
            result = simulate(sc, debug=True)  # debug: the ledger is checked every interval
    except InvalidInputError as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("simulated")
    k = result.kpis
    for key, value in k.items():
        if isinstance(value, float):
            assert not math.isinf(value), f"{key} = {value} for {changes}"
    assert k["facility_energy_j"] >= 0.0 and k["tokens_out"] >= 0.0
    assert abs(k["ledger_residual_j"]) <= 1e-6 * max(k["facility_energy_j"], 1.0)
    if not math.isnan(k["pue"]):
        assert k["pue"] >= 1.0 - 1e-12
    ts = result.timeseries.select_dtypes("number")
    assert not ts.isin([math.inf, -math.inf]).any().any(), f"inf in the time series for {changes}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(changes_of(PLAUSIBLE))
def test_plausible_scenarios_balance_or_are_refused_by_name(changes: dict[str, Any]) -> None:
    run_or_refuse(changes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(changes_of(HOSTILE))
def test_hostile_scenarios_balance_or_are_refused_by_name(changes: dict[str, Any]) -> None:
    run_or_refuse(changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"cooling.design_heat_w": 1.0},
        {"events": [{"time_s": 600, "kind": "utility_loss", "duration_s": 300}]},
        {"workloads.0.arrivals.requests_per_s": 1e-6},
    ],
)
def test_hostile_but_valid_runs_balance(changes: dict[str, Any]) -> None:
    # Cases the fuzz test above may not draw: a plant sized for 1 W, an outage with no generator
    # (nothing metered while dark), next to no requests.
    result = simulate(load_scenario("default", {**TINY, **changes}), debug=True)
    k = result.kpis
    assert abs(k["ledger_residual_j"]) <= 1e-6 * max(k["facility_energy_j"], 1.0)
    assert all(not (isinstance(v, float) and math.isinf(v)) for v in k.values())
