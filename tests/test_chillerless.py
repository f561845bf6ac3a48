"""Plants without chillers (``cooling.n_chillers: 0``): the facility water floats on the weather.

Hand values: W32 towers (4 K approach) and dry coolers (10 K approach,
``twin.physics.heat_rejection``) behind a 2 K economiser exchanger, a 5 K CDU approach and an 8 K
CRAH coil approach (``twin.physics.cooling``).
"""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin import load_scenario, simulate
from twin.catalog.cooling import chiller_curve
from twin.cli import app
from twin.errors import ScenarioError
from twin.facility import build_facility
from twin.physics.cooling_plant import facility_supply_c, plant_power
from twin.physics.plant_params import PlantParams
from twin.scenario import Scenario

SHIPPED = Path(__file__).resolve().parent.parent / "scenarios" / "chillerless-w32-tower.yaml"
TRAIN = [{"name": "train", "kind": "training", "model": "Llama-3.1-8B", "mfu": 0.45}]
CHILLERLESS = {
    "model": "plant", "type": "liquid", "liquid_class": "W32", "heat_rejection": "tower",
    "n_chillers": 0, "air_class": "A3", "crah_supply_air_c": 40,
}  # fmt: skip


def params(heat_rejection: str = "tower") -> PlantParams:
    chiller = chiller_curve("Carrier 19XR 742kW/5.42COP/VSD")
    return PlantParams.from_presets(
        "W32", "A3", chiller=chiller, design_heat_w=1e6, heat_rejection=heat_rejection,  # type: ignore[arg-type]
        n_chillers=0, crah_supply_air_c=40.0,
    )  # fmt: skip


def small(weather, cooling=None, **kw):
    """Two racks of four servers (64 GPUs) training flat out, on a plant without chillers."""
    over = {
        "fleet.rows": 1, "fleet.racks_per_row": 2, "duration_s": 3600, "step_s": 10, "report_interval_s": 600,
        "workloads": TRAIN, "weather": weather, "cooling": cooling or CHILLERLESS,
        "power.ups.rated_w": 120e3, "power.transformer.rated_w": 250e3, "site.other_facility_power_w": 500,
    }  # fmt: skip
    over.update(kw)
    return load_scenario("default", over)


def constant(dry_bulb_c: float, wet_bulb_c: float) -> dict:
    return {"source": "constant", "dry_bulb_c": dry_bulb_c, "wet_bulb_c": wet_bulb_c}


@pytest.mark.parametrize(
    ("kind", "dry_bulb_c", "wet_bulb_c", "supply_c"),
    [
        ("tower", 35.0, 28.0, 28.0 + 4.0 + 2.0),  # wet-bulb + tower approach + exchanger: 34 C > W32
        ("tower", 35.0, 20.0, 32.0),  # 26 C water: the setpoint holds (the valve mixes up to it)
        ("dry_cooler", 30.0, 20.0, 30.0 + 10.0 + 2.0),  # dry-bulb + dry-cooler approach + exchanger: 42 C
        ("dry_cooler", 15.0, 10.0, 32.0),
    ],
)
def test_supply_floats_at_source_plus_approaches(kind, dry_bulb_c, wet_bulb_c, supply_c):
    p = params(kind)
    res = plant_power(0.9e6, 0.1e6, dry_bulb_c, wet_bulb_c, p)
    assert float(facility_supply_c(dry_bulb_c, wet_bulb_c, p)) == pytest.approx(supply_c)
    assert float(res.facility_supply_c) == pytest.approx(supply_c)
    assert float(res.tcs_supply_c) == pytest.approx(supply_c + 5.0)
    assert float(res.crah_supply_air_c) == pytest.approx(max(40.0, supply_c + 8.0))
    # economiser only: no chiller, all heat leaves through the tower or dry cooler
    assert float(res.chiller_power_w) == 0.0 and float(res.chiller_load_w) == 0.0
    assert float(res.free_cooling_w) == pytest.approx(1e6) and float(res.unmet_heat_w) == 0.0


def test_plant_with_chillers_holds_its_setpoint():
    chiller = chiller_curve("Carrier 19XR 742kW/5.42COP/VSD")
    p = PlantParams.from_presets("W32", chiller=chiller, design_heat_w=1e6)  # type: ignore[arg-type]
    res = plant_power(0.9e6, 0.1e6, 35.0, 28.0, p)
    assert float(res.facility_supply_c) == 32.0 and float(res.crah_supply_air_c) == 24.0
    assert float(res.chiller_power_w) > 0.0


def test_beyond_the_rating_the_heat_is_unmet():
    """The floating supply carries any weather; the tower's rated heat still caps what leaves."""
    res = plant_power(1.5e6, 0.0, 30.0, 20.0, params())
    assert float(res.heat_rejected_w) == pytest.approx(1.2e6)
    assert float(res.unmet_heat_w) == pytest.approx(0.3e6)


def test_chillerless_run_has_no_chiller_energy_and_balances():
    sc = small(constant(35.0, 28.0))
    r = simulate(sc, debug=True)
    k = r.kpis
    assert k["energy_cooling_chiller_j"] == 0.0
    assert abs(k["ledger_residual_j"]) < 1e-9 * k["facility_energy_j"]
    # the cold plates' coolant is the floating facility water + the CDU approach: 34 + 5 C
    assert k["max_inlet_temp_c"] == pytest.approx(39.0)
    assert r.timeseries["loop_excess_k"].max() == 0.0
    chilled = simulate(small(constant(35.0, 28.0), {**CHILLERLESS, "n_chillers": None, "crah_supply_air_c": 24}))
    assert chilled.kpis["max_inlet_temp_c"] == pytest.approx(37.0)
    assert k["pue"] < chilled.kpis["pue"]


def test_hotter_days_throttle_more():
    """Slowdown set just above the die temperature at the W32 setpoint: hot wet-bulbs throttle, cool ones do not."""
    base = simulate(small(constant(20.0, 15.0))).kpis
    slowdown_c = base["max_die_temp_c"] + 1.5
    over = {"fleet.accelerator_overrides": {"slowdown_temp_c": slowdown_c}}
    throttled, tokens = [], []
    for wet_bulb_c in (15.0, 24.0, 28.0, 30.0):
        k = simulate(small(constant(wet_bulb_c + 6.0, wet_bulb_c), **over), debug=True).kpis
        throttled.append(k["throttled_gpu_h"])
        tokens.append(k["tokens_out"])
        assert k["max_die_temp_c"] <= slowdown_c + 0.5  # the throttle holds the die at its slowdown point
    assert throttled[0] == throttled[1] == 0.0  # supply at the setpoint (26 C water + 2 K <= 32 C)
    assert 0.0 < throttled[2] <= throttled[3]  # 34 and 36 C supply: dies 2 and 4 K hotter
    assert tokens[0] == tokens[1] > tokens[2] > tokens[3]  # the deeper the throttle, the fewer tokens


def test_room_air_follows_the_water_and_trips_then_restarts():
    """Dry coolers at 40 C dry-bulb: 52 C water, 60 C CRAH air: cold-plate servers trip at 45 C; back when cool."""
    dry = {**CHILLERLESS, "heat_rejection": "dry_cooler"}
    weather = {"source": "diurnal", "dry_bulb_c": 28.0, "amplitude_k": 10.0, "dew_point_c": 15.0, "peak_hour": 15}
    r = simulate(small(weather, dry, duration_s=86400, step_s=60, report_interval_s=600), debug=True)
    up = r.timeseries["servers_up"].to_numpy()
    assert up.min() == 0.0 and up[-1] == up.max() == 8.0
    assert abs(r.kpis["ledger_residual_j"]) < 1e-9 * r.kpis["facility_energy_j"]


def test_chiller_faults_are_refused_with_their_field(tmp_path):
    sc = small(constant(25.0, 18.0), events=[{"time_s": 60, "kind": "chiller_trip", "count": 1}])
    with pytest.raises(ScenarioError) as info:
        build_facility(sc)
    assert [p.field for p in info.value.problems] == ["events.0.kind"]
    sc = small(constant(25.0, 18.0), reliability={"chiller": {"mtbf_h": 1000, "mttr_h": 8}})
    with pytest.raises(ScenarioError) as info:
        build_facility(sc)
    assert [p.field for p in info.value.problems] == ["reliability.chiller"]
    path = tmp_path / "trip.yaml"
    path.write_text(SHIPPED.read_text() + "events: [{time_s: 60, kind: chiller_trip, count: 1}]\n")
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert res.exit_code == 2 and "events.0.kind" in res.output


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"type": "air"}, "needs a liquid loop"),
        ({"economiser": False}, "economiser must be true"),
        ({"crah_supply_air_c": 30}, "cannot be below 40"),  # 32 C water + 8 K coil approach
    ],
)
def test_impossible_chillerless_plants_are_refused(change, words):
    with pytest.raises(ScenarioError, match=words):
        load_scenario("default", {"cooling": {**CHILLERLESS, **change}})


def test_schema_round_trip():
    sc = load_scenario(SHIPPED)
    assert sc.cooling.n_chillers == 0
    again = Scenario.model_validate(sc.model_dump(mode="json"))
    assert again.cooling == sc.cooling
    plant = build_facility(sc).cooling
    assert plant.params.n_chillers == plant.params.n_chillers_redundant == 0  # type: ignore[union-attr]


def test_a_run_that_starts_too_hot_trips_at_once():
    """Dry coolers at 35 C dry-bulb: 47 C water, 55 C CRAH air: the servers power off at t = 0."""
    r = simulate(small(constant(35.0, 20.0), {**CHILLERLESS, "heat_rejection": "dry_cooler"}))
    trips = r.events[r.events["event"] == "thermal_shutdown"]
    assert float(trips["time_s"].iloc[0]) == 0.0
    assert r.kpis["min_servers_up"] == 0.0
