"""Inputs that used to give a physically wrong number with exit 0 (issue 15): each now ends in a
correct result (the heat reaches the GPUs) or a named error (exit 2)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from twin import load_scenario, simulate
from twin.checks import MAX_OVERLOAD
from twin.cli import app
from twin.engine.cooling import SERVER_AIR_SHUTDOWN_C
from twin.errors import ConsistencyError, ScenarioError
from twin.facility import build_facility
from twin.physics.cooling_plant import plant_power
from twin.physics.plant_params import PlantParams

FLAT = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
LINEAR = (0.0, 1.0, 0.0)


def small(**over: object):
    """Two racks of four 8-GPU servers (64 H100) serving an 8B chat model, a power chain to match."""
    base: dict[str, object] = {
        "fleet.rows": 1, "fleet.racks_per_row": 2, "duration_s": 1800, "step_s": 1, "report_interval_s": 60,
        "power.ups.rated_w": 120e3, "power.transformer.rated_w": 250e3, "site.other_facility_power_w": 500,
        "workloads": [{"name": "chat", "kind": "inference", "model": "Llama-3.1-8B", "max_batch": 128,
                       "arrivals": {"kind": "constant", "requests_per_s": 60, "prompt_tokens": 500,
                                    "output_tokens": 200}}],
    }  # fmt: skip
    base.update(over)
    return load_scenario("default", base)


# ------------------------------------------------------------------------- heat rejection limit
def test_heat_rejection_is_capped_at_its_rating_and_heat_is_conserved() -> None:
    # 1 MW design with a tower rated 1.2 MW: 2 MW of liquid heat on a cold day (all free cooling)
    # rejects at most 1.2 MW; the other 0.8 MW is unmet (it warms the loop).
    p = PlantParams(
        design_heat_w=1e6, chiller_q_ref_w=1e6, chiller_cop_ref=5.0, chiller_capft=FLAT, chiller_eirft=FLAT,
        chiller_eirfplr=LINEAR, chiller_plr_min=0.1, n_chillers=4,
    )  # fmt: skip
    r = plant_power(np.array([0.5e6, 2e6]), 0.0, 0.0, -5.0, p)
    assert r.heat_rejected_w[0] == pytest.approx(0.5e6)  # under the rating: nothing changes
    assert float(r.unmet_heat_w[0]) == 0.0
    assert r.heat_rejected_w[1] == pytest.approx(p.heat_rejection_rated_w, rel=1e-9)
    assert r.unmet_liquid_w[1] == pytest.approx(2e6 - 1.2e6, rel=1e-9)
    np.testing.assert_allclose(r.free_cooling_w + r.chiller_load_w + r.unmet_heat_w, [0.5e6, 2e6], rtol=1e-12)


def test_heat_rejection_cap_with_chillers_counts_their_compressor_heat() -> None:
    # Hot day, no economiser: chiller load L and compressor work L/5 must fit 1.2 MW, so L = 1 MW.
    p = PlantParams(
        design_heat_w=1e6, chiller_q_ref_w=1e6, chiller_cop_ref=5.0, chiller_capft=FLAT, chiller_eirft=FLAT,
        chiller_eirfplr=LINEAR, chiller_plr_min=0.1, n_chillers=4, economiser_enabled=False,
    )  # fmt: skip
    r = plant_power(1.5e6, 0.0, 35.0, 28.0, p)
    assert float(r.chiller_load_w) == pytest.approx(1e6, rel=1e-6)
    assert float(r.chiller_power_w) == pytest.approx(0.2e6, rel=1e-6)
    assert float(r.unmet_liquid_w) == pytest.approx(0.5e6, rel=1e-5)


def test_a_plant_sized_for_one_watt_shuts_the_gpus_down_and_the_ledger_balances() -> None:
    # `--set cooling.design_heat_w=1` ran at 50.6 C dies, nothing throttled and PUE improved.
    r = simulate(small(**{"cooling.design_heat_w": 1.0, "duration_s": 600}), debug=True)
    k = r.kpis
    assert k["min_servers_up"] == 0
    assert k["max_die_temp_c"] == pytest.approx(92.0, abs=1e-6)  # H100 shutdown temperature
    shut = r.events[r.events["event"] == "thermal_shutdown"]
    assert float(shut["time_s"].iloc[0]) < 60  # the 1 L loop boils off its margin in seconds
    assert abs(k["ledger_residual_j"]) < 1e-9 * k["facility_energy_j"]


# ---------------------------------------------------------------------------- room air trip
def test_hot_room_air_powers_cold_plate_servers_off() -> None:
    # CRAHs at 30 % of the air load: the room air passes 45 C although the cold plates are fine.
    r = simulate(small(**{"cooling.plant_overrides": {"crah_capacity_factor": 0.3}, "duration_s": 900}), debug=True)
    shut = r.events[r.events["event"] == "thermal_shutdown"]
    assert len(shut) == 1 and "room_air_c" in str(shut["detail"].iloc[0])
    air_c = float(str(shut["detail"].iloc[0]).split("room_air_c=")[1])
    # Caught at the tick it crossed (the event's detail holds the air to 0.01 K, so 45.0 is a crossing).
    assert SERVER_AIR_SHUTDOWN_C <= air_c < SERVER_AIR_SHUTDOWN_C + 1.0
    assert r.kpis["max_die_temp_c"] < 89.0  # not by the dies
    assert r.kpis["min_servers_up"] == 0
    assert abs(r.kpis["ledger_residual_j"]) < 1e-9 * r.kpis["facility_energy_j"]


def test_ample_crahs_never_trip_the_room() -> None:
    r = simulate(small(duration_s=900), debug=True)
    assert r.kpis["min_servers_up"] == 8
    assert "thermal_shutdown" not in set(r.events.get("event", []))


# ----------------------------------------------------------------------------- refused inputs
def test_a_replica_larger_than_its_pool_is_refused() -> None:
    # `--set workloads.0.tensor_parallel=1024` on a 768-GPU pool reported 17.9 M tokens.
    sc = load_scenario("default", {"workloads.0.tensor_parallel": 1024})
    with pytest.raises(ScenarioError, match=r"workloads\.0\.tensor_parallel.*1024 GPUs.*768 GPUs"):
        build_facility(sc)


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [("cooling.design_heat_w", 2.4128444885095428e16, r"<= 10000000000"), ("cooling.n_chillers", 10**6, r"<= 20000")],
)
def test_a_plant_past_any_site_is_refused_by_name(field: str, value: float, limit: str) -> None:
    # The fuzz test drew `cooling.design_heat_w=2.4e16`: 3e10 chillers, each count tried every step,
    # and the run never finished. Exit 2, naming the field and the bound.
    out = CliRunner().invoke(app, ["validate", "default", "--set", f"{field}={value}"])
    assert out.exit_code == 2
    assert field in out.output and re.search(limit, out.output)


@pytest.mark.parametrize(
    ("field", "value", "stage"),
    [
        ("power.ups.rated_w", 1.0, "power.ups"),
        ("power.pdu.rated_w", 10e3, "power.pdu"),
        ("power.psu.rated_w", 100.0, "power.psu"),
        ("power.transformer.rated_w", 1e5, "power.transformer"),
    ],
)
def test_a_stage_far_beyond_its_overload_rating_is_refused(field: str, value: float, stage: str) -> None:
    # `power.ups.rated_w=1` ran to PUE 71 290 and 46.75 GW: losses priced at a million times rating.
    sc = load_scenario("default", {field: value})
    with pytest.raises(ConsistencyError, match=stage):
        simulate(sc)
    res = CliRunner().invoke(app, ["validate", "default", "--set", f"{field}={value}"])
    assert res.exit_code == 2 and stage in res.output


def test_oversubscription_within_the_overload_rating_runs_and_run_says_so(tmp_path) -> None:
    # 30 % over the UPS is a legitimate what-if (under MAX_OVERLOAD): it runs, and `run` warns as `validate` does.
    assert MAX_OVERLOAD >= 1.3
    out = tmp_path / "o"
    res = CliRunner().invoke(
        app, ["run", "-q", "--out", str(out), "--set", "duration_s=600", "--set", "power.ups.rated_w=0.8e6"]
    )
    assert res.exit_code == 0, res.output
    assert "oversubscribed" in res.output


def test_run_says_a_power_cap_outside_the_settable_range_is_clamped(tmp_path) -> None:
    res = CliRunner().invoke(
        app, ["run", "-q", "--out", str(tmp_path / "o"), "--set", "duration_s=600", "--set", "fleet.power_cap_w=1"]
    )
    assert res.exit_code == 0, res.output
    assert "power_cap_w" in res.output and "200-700 W" in res.output
