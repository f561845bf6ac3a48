"""The one-line facility schematic: each power box's load over its rating and each cooling box's
temperature, checked by hand against the run's own numbers and the scenario's ratings."""

from __future__ import annotations

import pytest
from test_hostile_outputs import OUTAGE  # a battery that carries the load, then runs out

import twin
from twin.dashboard import schematic
from twin.facility import build_facility

SHORT = {"duration_s": 3600, "step_s": 10, "report_interval_s": 300}


def draw(
    source: str, overrides: dict[str, object]
) -> tuple[twin.Result, dict[str, schematic.Node], set[tuple[str, str]]]:
    sc = twin.load_scenario(source, overrides)
    result = twin.simulate(sc)
    nodes, edges = schematic.schematic(result, build_facility(sc))
    by_key = {n.key: n for n in nodes}
    assert len(by_key) == len(nodes)  # one box per key
    lines = {(e.source, e.target) for e in edges}
    assert {k for line in lines for k in line} <= set(by_key)  # every line joins two boxes drawn
    return result, by_key, lines


def test_the_default_pod_power_boxes_are_peak_load_over_rating() -> None:
    result, nodes, lines = draw("default", SHORT)
    ts = result.timeseries
    # By hand from the scenario: UPS 2 x 1.4 MW 2N (one carries the load), transformer 1 x 2 MW,
    # PDUs 2 x 45 kW 2N per rack, PSUs 6 x 3.3 kW N+1 per server (five carry it).
    power = result.scenario["power"]
    assert power["ups"] == {**power["ups"], "rated_w": 1.4e6, "count": 2, "redundancy": "2N"}
    ups_out_w = (ts["it_power_w"] + ts["psu_loss_power_w"] + ts["pdu_loss_power_w"]).max()
    assert nodes["ups"].load == pytest.approx(ups_out_w / 1.4e6, rel=1e-12)
    # the engine's per-tick peak is at least the peak of the report means, and close to it here
    assert nodes["ups"].load <= result.kpis["ups_load_fraction_max"] <= 1.01 * nodes["ups"].load
    assert nodes["ups"].lines == (f"{ups_out_w / 1e3:,.0f} kW", f"{ups_out_w / 1.4e6:.0%} of rating")
    secondary_w = (ts["facility_power_w"] - ts["transformer_loss_power_w"]).max()
    assert nodes["transformer"].load == pytest.approx(secondary_w / 2e6, rel=1e-12)
    n_servers = result.meta["n_servers"]
    n_racks = n_servers // result.scenario["fleet"]["servers_per_rack"]
    assert nodes["pdu"].load == pytest.approx(ups_out_w / (n_racks * 45e3), rel=1e-12)
    assert nodes["psu"].load == pytest.approx(ts["it_power_w"].max() / (n_servers * 5 * 3.3e3), rel=1e-12)
    assert nodes["accelerators"].load == pytest.approx(ts["gpu_power_mean_w"].max() / 700.0, rel=1e-12)  # H100 max
    assert nodes["grid"].load is None  # no site limit: nothing to rate the grid draw by
    assert {("grid", "transformer"), ("ups", "pdu"), ("psu", "accelerators")} <= lines
    # Cooling: W32 liquid with chillers, towers and an economiser.
    assert nodes["cold_plates"].temp_c == ts["die_temp_max_c"].max()
    assert nodes["cdu"].temp_c == ts["inlet_temp_max_c"].max() == pytest.approx(32.0 + 5.0)  # W32 + CDU approach
    assert nodes["fws"].temp_c == pytest.approx(32.0)  # the setpoint: chillers hold it
    assert nodes["chillers"].lines[1] == f"{ts['cooling_chiller_power_w'].max() / 1e3:,.0f} kW"
    assert nodes["rejection"].label == "cooling towers"
    # Tower water = wet-bulb + the tower's approach (4 K [EST], twin.physics.heat_rejection.TOWER_APPROACH_K).
    assert nodes["rejection"].temp_c == pytest.approx(ts["wet_bulb_c"].max() + 4.0)
    assert {("cdu", "fws"), ("crah", "chw"), ("chillers", "rejection")} <= lines
    assert {"generator", "battery", "ideal"}.isdisjoint(nodes)


def test_a_plant_without_chillers_shows_no_chiller_and_floats_on_the_weather() -> None:
    sc = "scenarios/chillerless-w32-tower.yaml"
    assert twin.load_scenario(sc).cooling.n_chillers == 0  # type: ignore[union-attr]
    result, nodes, lines = draw(sc, SHORT)
    assert "chillers" not in nodes and "chw" not in nodes
    assert ("crah", "fws") in lines  # the CRAH coils take the facility water
    assert ("economiser", "rejection") in lines
    # facility supply = max(setpoint, tower water + 2 K exchanger approach)
    tower_c = result.timeseries["wet_bulb_c"].max() + 4.0
    assert nodes["fws"].temp_c == pytest.approx(max(32.0, tower_c + 2.0))
    assert nodes["economiser"].temp_c == pytest.approx(tower_c + 2.0)


def test_an_air_cooled_hall_shows_crahs_not_cdus() -> None:
    result, nodes, lines = draw("scenarios/air-cooled.yaml", SHORT)
    assert "crah" in nodes and "chw" in nodes and "chillers" in nodes
    assert {"cdu", "cold_plates", "fws"}.isdisjoint(nodes)
    assert nodes["room"].label == "servers (air)"
    # the air the servers draw is what the run reports as their (air) inlet
    assert nodes["room"].temp_c == pytest.approx(result.timeseries["inlet_temp_max_c"].max())
    assert ("accelerators", "room") in lines


def test_a_battery_a_generator_and_a_site_limit_get_their_boxes() -> None:
    limit_w = 200e3
    overrides = {
        **OUTAGE,
        "power.generator": {"rated_w": 300e3, "start_delay_s": 600},
        "controls.site_power_limit_w": limit_w,
    }
    result, nodes, lines = draw("default", overrides)
    ts = result.timeseries
    assert nodes["generator"].load == pytest.approx(ts["generator_power_w"].max() / 300e3, rel=1e-12)
    assert nodes["generator"].load > 0  # it picked up the load
    assert nodes["battery"].lines[1] == f"charge ≥ {ts['battery_soc'].min():.0%}"
    assert nodes["grid"].load == pytest.approx(ts["facility_power_w"].max() / limit_w, rel=1e-12)
    assert {("generator", "ups"), ("battery", "ups")} <= lines
    assert nodes["ideal"].temp_c == ts["die_temp_max_c"].max()  # an ideal plant: one box, no loops
    assert not {"cdu", "crah", "chillers"} & set(nodes)


def test_a_box_without_a_value_is_grey_not_zero() -> None:
    box = schematic.Node("grid", "grid", ("n/a",), "power", 0, 2.0)
    assert schematic.colour_value(box) is None
    assert schematic.colour_value(schematic.Node("fws", "facility water", (), "cooling", 3, 1.0, temp_c=32.0)) == 32.0
    assert schematic.kw(None) == "n/a" and schematic.deg(None) == "n/a"
