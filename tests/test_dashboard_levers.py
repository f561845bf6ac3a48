"""The dashboard's lever table: widget values → scenario overrides (no Streamlit)."""

from __future__ import annotations

import shlex
from datetime import date, datetime
from typing import Any

import pytest
import yaml

import twin
from twin.cli import _parse_sets
from twin.dashboard import levers as lv
from twin.errors import ScenarioError
from twin.scenario import edits as ed

SHORT = {"duration_s": 3600, "step_s": 10, "report_interval_s": 300}


@pytest.fixture(scope="module")
def base() -> twin.Scenario:
    return twin.load_scenario("default")


def test_baseline_values_give_no_overrides(base: twin.Scenario) -> None:
    values = lv.baseline_values(base)
    assert values["rows"] == 4
    assert values["accelerator"] == "H100-SXM"
    assert values["power_cap_w"] is None
    assert values["start_date"] == date(2024, 7, 15)
    assert lv.what_if_overrides(base, values) == {}
    assert lv.what_if_overrides(base, {}) == {}


def test_unknown_lever_is_named(base: twin.Scenario) -> None:
    with pytest.raises(KeyError, match="bogus"):
        lv.what_if_overrides(base, {"bogus": 1})


def _variants(lever: lv.Lever, base: twin.Scenario) -> list[Any]:
    if lever.kind == "choice":
        return [o for o in lv.lever_options(lever, base) if o != lever.read(base)]
    if lever.kind == "bool":
        return [not lever.read(base)]
    if lever.kind == "date":
        return [date(2024, 1, 10)]
    assert lever.min_value is not None
    assert lever.max_value is not None
    ends: list[Any] = [lever.min_value, lever.max_value]
    if lever.kind == "int":
        ends = [int(v) for v in ends]
    if lever.kind == "optional_float":
        ends.append(None)  # switched off
    return [v for v in ends if v != lever.read(base)]


#: Other lever values under which a lever acts (it qualifies another: a fault's duration, ...).
CONTEXT: dict[str, dict[str, Any]] = {
    "dry_bulb_c": {"weather_source": "diurnal"},  # they act on the synthetic climates only
    "wet_bulb_c": {"weather_source": "diurnal"},
    "arrivals_pool": {"arrivals": "poisson"},
    "model_pool": {"model": "Qwen/Qwen3-32B"},
    "fault_start_h": {"fault": "chiller_trip"},
    "fault_duration_min": {"fault": "chiller_trip"},
    "fault_count": {"fault": "chiller_trip"},
    "battery_runtime_s": {"fault": "utility_loss"},
    "generator_delay_s": {"fault": "utility_loss"},
}


@pytest.mark.parametrize("lever", lv.LEVERS, ids=lambda lever: lever.key)
def test_every_lever_value_makes_a_valid_scenario(lever: lv.Lever, base: twin.Scenario) -> None:
    """Each lever points at real fields: its limits and options all validate and change the what-if."""
    context = CONTEXT.get(lever.key, {})
    assert lever.active(base, {**lv.baseline_values(base), **context}), lever.key
    before = lv.what_if_overrides(base, context)
    variants = _variants(lever, base)
    assert variants, lever.key
    for value in variants:
        if lever.key == "model" and value == base.workloads[0].model:
            continue  # the first pool's own model: offered for the other pools
        overrides = lv.what_if_overrides(base, {**context, lever.key: value})
        assert overrides != before, (lever.key, value)
        sc = twin.load_scenario("default", overrides)
        assert sc != base


@pytest.mark.parametrize("key", ["fault", "arrivals", "battery_runtime_s", "generator_delay_s"])
def test_fault_and_trace_options_validate_on_every_offered_scenario(key: str) -> None:
    """Every option of the fault and trace levers makes a valid scenario of every scenario the app offers."""
    lever = lv.LEVER_BY_KEY[key]
    for choice in lv.scenario_choices():
        sc = twin.load_scenario(choice.source)
        if not lever.applies(sc):
            continue
        context = {"fault": "utility_loss"} if key in CONTEXT else {}
        for value in [lever.read(sc), *_variants(lever, sc)]:
            overrides = lv.what_if_overrides(sc, {**context, key: value})
            twin.load_scenario(choice.source, overrides)


def test_levers_that_qualify_another_act_only_with_it(base: twin.Scenario) -> None:
    # A fault's time, duration and size, the battery and the generator change nothing without the fault.
    for key, value in [
        ("fault_start_h", 5.0),
        ("fault_duration_min", None),
        ("fault_count", 3),
        ("battery_runtime_s", 60.0),
        ("generator_delay_s", None),
        ("arrivals_pool", "code-8b"),
        ("model_pool", "code-8b"),
    ]:
        assert not lv.LEVER_BY_KEY[key].active(base, lv.baseline_values(base)), key
        assert lv.what_if_overrides(base, {key: value}) == {}, key
    # A CRAH failure has no units to count on a feed loss: the count lever is for counted faults.
    assert not lv.LEVER_BY_KEY["fault_count"].active(base, {"fault": "feed_loss"})
    assert lv.LEVER_BY_KEY["fault_count"].active(base, {"fault": "crah_fail"})


def test_model_lever_serves_another_model_in_its_own_precision(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(base, {"model": "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8"})
    assert ov == {"workloads.0.model": "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8"}  # precision: already the model's
    ov = lv.what_if_overrides(base, {"model": "openai/gpt-oss-20b", "model_pool": "code-8b"})
    assert ov == {"workloads.1.model": "openai/gpt-oss-20b"}
    assert twin.load_scenario("default", ov).workloads[1].model == "openai/gpt-oss-20b"
    assert lv.what_if_overrides(base, {"model": "Llama-3-70B"}) == {}  # the pool's own model
    options = lv.lever_options(lv.LEVER_BY_KEY["model"], base)
    assert {"Llama-3.1-8B", "deepseek-ai/DeepSeek-V3.1", "openai/gpt-oss-120b"} <= set(options)


def test_fault_lever_appends_one_event_to_the_scenarios_own(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(
        base, {"fault": "chiller_trip", "fault_start_h": 1.5, "fault_duration_min": 30.0, "fault_count": 2}
    )
    assert ov == {"events": [{"time_s": 5400.0, "kind": "chiller_trip", "count": 2, "duration_s": 1800.0}]}
    ov = lv.what_if_overrides(base, {"fault": "feed_loss", "fault_duration_min": None})
    assert ov == {"events": [{"time_s": 7200.0, "kind": "feed_loss", "target": "A"}]}  # never repaired
    # A scenario with its own events keeps them; "clear" removes them.
    trip = twin.load_scenario("scenarios/chiller-trip-hot-day.yaml")
    ov = lv.what_if_overrides(trip, {"fault": "server_fail", "fault_count": 4})
    kinds = [e["kind"] for e in ov["events"]]
    assert kinds == ["chiller_trip", "chiller_trip", "server_fail"]
    assert twin.load_scenario("scenarios/chiller-trip-hot-day.yaml", ov).events[:2] == trip.events
    assert lv.what_if_overrides(trip, {"fault": "clear"}) == {"events": []}
    assert "clear" not in lv.lever_options(lv.LEVER_BY_KEY["fault"], base)  # nothing to clear


def test_utility_outage_offers_a_battery_and_a_generator(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(base, {"fault": "utility_loss", "generator_delay_s": 600.0})
    sc = twin.load_scenario("default", ov)
    assert sc.power.ups.battery is not None
    assert sc.power.ups.battery.runtime_s == ed.DEFAULT_BATTERY_RUNTIME_S
    assert sc.power.ups.rated_w == base.power.ups.rated_w  # the rest of the UPS stage is the baseline's
    assert sc.power.generator is not None
    assert sc.power.generator.start_delay_s == 600.0
    assert sc.power.generator.rated_w == base.power.transformer.rated_w  # the site's whole supply
    # Both off: the outage drops the load at once.
    ov = lv.what_if_overrides(base, {"fault": "utility_loss", "battery_runtime_s": None, "generator_delay_s": None})
    assert set(ov) == {"events"}
    # A scenario with its own outage: the levers start at its battery and generator and edit them.
    outage = twin.load_scenario("utility-outage-late-generator")
    values = lv.baseline_values(outage)
    assert (values["battery_runtime_s"], values["generator_delay_s"]) == (300.0, 900.0)
    assert lv.what_if_overrides(outage, {"generator_delay_s": 10.0}) == {"power.generator.start_delay_s": 10.0}
    assert lv.what_if_overrides(outage, {"battery_runtime_s": None}) == {"power.ups.battery": None}


def test_battery_given_as_energy_reads_back_as_its_runtime(base: twin.Scenario) -> None:
    # 420 MJ usable at 1.4 MW (one 2N side) is 300 s; stored = 420 MJ / (0.95 x 0.9).
    ups = base.power.ups.model_dump(mode="python", exclude_none=True)
    stored_j = 300.0 * 1.4e6 / (0.95 * 0.9)
    ups["battery"] = {"energy_j": stored_j}
    sc = twin.load_scenario("default", {"power.ups": ups, "events": [{"time_s": 60, "kind": "utility_loss"}]})
    assert lv.baseline_values(sc)["battery_runtime_s"] == pytest.approx(300.0, rel=1e-12)
    assert lv.what_if_overrides(sc, {}) == {}
    ov = lv.what_if_overrides(sc, {"battery_runtime_s": 60.0})
    assert ov == {
        "power.ups.battery": {
            "min_soc": 0.1,
            "initial_soc": 1.0,
            "charge_efficiency": 0.95,
            "discharge_efficiency": 0.95,
            "runtime_s": 60.0,
        }
    }
    twin.load_scenario("default", {"power.ups": ups, **ov})


def test_trace_lever_keeps_the_pools_request_rate(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(base, {"arrivals": "azure-llm-2023-code", "rate_scale": 0.5})
    assert ov == {
        "workloads.0.arrivals": {"kind": "trace", "path": "azure-llm-2023-code", "requests_per_s": 450.0},
        "workloads.1.arrivals": {"kind": "trace", "path": "azure-llm-2023-code", "requests_per_s": 1000.0},
    }
    # One pool only; the other keeps its arrivals and still follows the rate lever and the fleet size.
    ov = lv.what_if_overrides(base, {"arrivals": "poisson", "arrivals_pool": "chat-70b", "rows": 2})
    assert ov["workloads.0.arrivals"] == {
        "kind": "poisson",
        "requests_per_s": 450.0,  # half the servers, the same load per server
        "prompt_tokens": 1000.0,
        "output_tokens": 250.0,
    }
    assert ov["workloads.1.arrivals.requests_per_s"] == 1000.0
    # Replacing a trace by Poisson resamples that trace's lengths; choosing what a pool has is no change.
    trace = twin.load_scenario("scenarios/azure-llm-trace.yaml")
    ov = lv.what_if_overrides(trace, {"arrivals": "poisson"})
    assert ov["workloads.1.arrivals"] == {
        "kind": "poisson",
        "requests_per_s": 1200.0,
        "tokens_from": "azure-llm-2023-code",
    }
    assert lv.what_if_overrides(trace, {"arrivals": "azure-llm-2023-conv", "arrivals_pool": "chat-70b"}) == {}
    assert lv.what_if_overrides(trace, {"rate_scale": 2.0}) == {
        "workloads.0.arrivals.requests_per_s": 1400.0,
        "workloads.1.arrivals.requests_per_s": 2400.0,
    }


def test_rate_scaled_trace_rate_comes_from_the_trace_file() -> None:
    from twin.workload import BUILTIN_TRACES, read_trace, trace_period_s

    sc = twin.load_scenario(
        "scenarios/azure-llm-trace.yaml",
        {"workloads.0.arrivals": {"kind": "trace", "path": "azure-llm-2023-conv", "rate_scale": 100.0}},
    )
    assert lv.what_if_overrides(sc, {"rate_scale": 1.5})["workloads.0.arrivals.rate_scale"] == 150.0
    df, _ = read_trace(BUILTIN_TRACES["azure-llm-2023-conv"])
    trace_rate = len(df) / trace_period_s(df)  # requests per second of the hour-long trace
    ov = lv.what_if_overrides(sc, {"arrivals": "poisson", "arrivals_pool": "chat-70b"})
    assert ov["workloads.0.arrivals"]["requests_per_s"] == pytest.approx(100.0 * trace_rate, rel=1e-12)


def test_fleet_size_scales_pools_and_rates_with_the_servers(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(base, {"rows": 2})
    assert ov == {
        "fleet.rows": 2,
        "workloads.0.servers": 48,
        "workloads.1.servers": 16,
        "workloads.0.arrivals.requests_per_s": 450.0,
        "workloads.1.arrivals.requests_per_s": 1000.0,
    }
    # The load per server is the baseline's, so the IT work and the tokens halve exactly.
    full = twin.simulate(twin.load_scenario("default", SHORT)).kpis
    half = twin.simulate(twin.load_scenario("default", {**SHORT, **ov})).kpis
    assert half["tokens_out"] == pytest.approx(full["tokens_out"] / 2, rel=1e-9)
    assert half["energy_accelerators_j"] == pytest.approx(full["energy_accelerators_j"] / 2, rel=1e-9)


def test_rate_scale_multiplies_on_top_of_the_fleet_scaling(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(base, {"rows": 2, "rate_scale": 2.0})
    # Half the servers at twice the load per server: the baseline's total request rate.
    assert "workloads.0.arrivals.requests_per_s" not in ov
    assert ov["workloads.0.servers"] == 48
    ov = lv.what_if_overrides(base, {"rate_scale": 1.5})
    assert ov == {"workloads.0.arrivals.requests_per_s": 1350.0, "workloads.1.arrivals.requests_per_s": 3000.0}


def test_pools_that_cannot_fit_are_a_scenario_error(base: twin.Scenario) -> None:
    # Two pools need at least one server each; every pool keeps at least one.
    assert lv.scaled_pool_servers(base, 4) == [3, 1]
    with pytest.raises(ScenarioError, match="cannot hold 2 workloads"):
        lv.scaled_pool_servers(base, 1)


def test_synthetic_weather_levers_act_only_on_synthetic_climates(base: twin.Scenario) -> None:
    assert lv.what_if_overrides(base, {"dry_bulb_c": 35.0}) == {}
    ov = lv.what_if_overrides(base, {"weather_source": "constant", "dry_bulb_c": 35.0, "wet_bulb_c": 24.0})
    assert ov == {"weather.source": "constant", "weather.dry_bulb_c": 35.0, "weather.wet_bulb_c": 24.0}


def test_changing_the_accelerator_drops_a_calibrated_file(base: twin.Scenario, tmp_path: Any) -> None:
    calibrated = base.model_copy(update={"fleet": base.fleet.model_copy(update={"accelerator_file": tmp_path})})
    ov = lv.what_if_overrides(calibrated, {"accelerator": "B200"})
    assert ov == {"fleet.accelerator": "B200", "fleet.accelerator_file": None}


def test_run_overrides_bound_the_report_rows(base: twin.Scenario) -> None:
    # 360 one-minute rows, 11:00-17:00 around the preset's 14:00 peak
    assert lv.run_overrides(base, 6) == {"start": "2024-07-15T11:00:00", "duration_s": 21600.0}
    assert lv.run_overrides(base, 24) == {"report_interval_s": 240.0}  # the preset's 24 h, 360 rows
    week = lv.run_overrides(base, 168)
    assert week["duration_s"] == 168 * 3600
    assert week["duration_s"] / week["report_interval_s"] <= lv.MAX_REPORT_POINTS
    assert week["report_interval_s"] % base.step_s == 0


def test_window_centres_on_the_diurnal_peak_inside_the_scenario_run(base: twin.Scenario) -> None:
    assert base.start == datetime(2024, 7, 15) and base.duration_s == 86400.0  # a day, peak at 14:00
    assert lv.window_start(base, 6) == datetime(2024, 7, 15, 11)
    assert lv.window_start(base, 12) == datetime(2024, 7, 15, 8)
    assert lv.window_start(base, 20) == datetime(2024, 7, 15, 4)  # held inside the scenario's day
    assert lv.window_start(base, 24) == base.start  # the whole run
    evening = ed.set_field(base, "start", datetime(2024, 7, 14, 18))
    assert lv.window_start(evening, 6) == datetime(2024, 7, 15, 11)  # the peak of the next day
    faulted = ed.add_fault(base, "server_fail", 7200.0, count=1)
    assert lv.window_start(faulted, 6) == base.start  # faults are timed from the scenario's start
    assert lv.window_text(datetime(2024, 7, 15, 11), 6) == "15 Jul 2024 11:00–17:00"
    assert lv.window_text(datetime(2024, 7, 15, 20), 6) == "15 Jul 2024 20:00–16 Jul 2024 02:00"
    # The start-date lever keeps the window's time of day.
    assert lv.what_if_overrides(lv.windowed(base, 6), {"start_date": date(2024, 1, 15)}) == {
        "start": "2024-01-15T11:00:00"
    }


def test_cli_command_and_cache_key_reproduce_the_overrides(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(
        base,
        {
            "rows": 3,
            "power_cap_w": 450.0,
            "cooling_type": "air",
            "weather_source": "sand-point-ak",
            "start_date": date(2024, 1, 15),
            "economiser": False,
        },
    )
    expected = twin.load_scenario("default", ov).model_dump()
    # `twin run ... --set k=v` as a shell would split it, parsed by the CLI's own parser.
    argv = shlex.split(lv.cli_command("default", ov))
    assert argv[:3] == ["twin", "run", "default"]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert twin.load_scenario("default", _parse_sets(sets)).model_dump() == expected
    # The cache key is YAML that reads back to the same scenario.
    assert twin.load_scenario("default", yaml.safe_load(lv.overrides_key(ov))).model_dump() == expected
    assert lv.overrides_key(ov) == lv.overrides_key(dict(reversed(list(ov.items()))))


def test_scenario_choices_are_loadable() -> None:
    choices = lv.scenario_choices()
    assert choices[0].source == "default"
    labels = [c.label for c in choices]
    assert "scenarios/air-cooled.yaml" in labels
    for choice in choices:
        sc = twin.load_scenario(choice.source)
        assert lv.what_if_overrides(sc, lv.baseline_values(sc)) == {}


def test_scenario_choices_take_extra_folders_with_unique_labels(tmp_path: Any) -> None:
    extra = tmp_path / "scenarios"
    extra.mkdir()
    (extra / "air-cooled.yaml").write_text("base: default\nname: mine\nfleet: {accelerator: B200}\n")
    choices = lv.scenario_choices([extra])
    labels = [c.label for c in choices]
    assert len(set(labels)) == len(labels)
    mine = next(c for c in choices if c.source == str((extra / "air-cooled.yaml").resolve()))
    assert mine.label == str((extra / "air-cooled.yaml").resolve())
    assert twin.load_scenario(mine.source).fleet.accelerator == "B200"


def test_every_climate_reads_as_a_name_not_a_slug() -> None:
    from twin.dashboard.levers import CLIMATE_LABELS, WEATHER_SOURCES

    assert set(WEATHER_SOURCES) <= set(CLIMATE_LABELS)
    assert all("-" not in CLIMATE_LABELS[s] or "(" in CLIMATE_LABELS[s] for s in WEATHER_SOURCES)
