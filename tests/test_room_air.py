"""An uncooled room: what heats the servers' air, when tripped servers return, when the room model is out of range."""

from __future__ import annotations

import numpy as np
import pytest

from twin import load_scenario, simulate
from twin.facility import build_facility

#: The outage scenario with no generator and the cooling plant off the UPS: the plant is dark for
#: the hour the utility is lost (7 200-10 800 s), the servers trip on hot room air.
DARK = {"power.cooling_on_ups": False, "power.generator": None}


@pytest.fixture(scope="module")
def dark():
    sc = load_scenario("utility-outage-late-generator", DARK)
    return sc, simulate(sc)


def test_only_white_space_heat_warms_the_room_while_it_is_dark(dark):
    # With every server off and nothing cooling, C dT/dt = the heat released in the white space:
    # the PDUs' losses. The UPS's losses (in the electrical room) do not count. Long after the
    # cooling stopped (minutes are many of the racks' 262 s time constant) the racks' steel warms
    # with the air, so C = the air's and the racks' capacities together (Khankari 2011).
    sc, r = dark
    ts = r.timeseries
    plant = build_facility(sc).cooling
    capacity_j_k = plant.room_capacity_j_k + plant.room_rack_capacity_j_k
    assert plant.room_rack_capacity_j_k == pytest.approx(3.0 * plant.room_capacity_j_k, rel=0.01)
    off = (ts["time_s"] > 9000) & (ts["time_s"] <= 10800) & (ts["it_power_w"] == 0.0)
    assert off.sum() > 10
    t, room = ts.loc[off, "time_s"].to_numpy(), ts.loc[off, "room_excess_k"].to_numpy()
    slope_k_s = np.polyfit(t, room, 1)[0]
    pdu_w = ts.loc[off, "pdu_loss_power_w"].mean()
    assert ts.loc[off, "ups_loss_power_w"].mean() > pdu_w  # the larger loss is left out...
    # ...the PDUs' alone warm the room (to the air node's step: its pull-back request is held over
    # each 1 s tick, which slows the air's share, a quarter, by about dt / (2 tau) = 1 / 120).
    assert slope_k_s * capacity_j_k == pytest.approx(pdu_w * (1.0 - 0.25 / 120.0), rel=2e-3)


def test_room_tripped_servers_boot_once_the_room_is_cool(dark):
    _, r = dark
    ev = r.events
    trips = ev[ev["event"] == "thermal_shutdown"]
    boots = ev[ev["event"] == "servers_booted"]
    assert len(trips) == 1 and trips["time_s"].iloc[0] < 7300  # room air past 45 C within a minute
    # Cooling is back at 10 800 s; the room takes a while to fall below the trip, then boot (300 s).
    assert len(boots) == 1 and boots["time_s"].iloc[0] > 10800 + 300
    assert r.timeseries["it_power_w"].iloc[-1] > 0.5 * r.timeseries["it_power_w"].iloc[0]


def test_a_run_warns_when_room_air_leaves_the_models_range(dark):
    _, r = dark
    assert any("beyond the room model's range" in w for w in r.meta["warnings"])
    ok = simulate(load_scenario("utility-outage-late-generator"))
    assert not any("room model" in w for w in ok.meta["warnings"])


def _cooling_loss(server_heat_capacity_j_k: float, conductance_w_k: float = 100.0, **cooling):
    """The Opengate set-up (all cooling lost at t = 0, 5 kW/rack), with the servers' mass alone
    behind the air unless ``cooling`` says otherwise."""
    from twin.validation.facility_anchors import _cooling_loss_scenario

    sc = _cooling_loss_scenario(1, 120.0)
    extra = {
        "server_heat_capacity_j_k": server_heat_capacity_j_k,
        "server_air_conductance_w_k": conductance_w_k,
        "rack_heat_capacity_j_k": 0.0,
        **cooling,
    }
    sc = sc.model_copy(update={"cooling": sc.cooling.model_copy(update=extra)})
    return build_facility(sc), simulate(sc).timeseries


def _slope(ts, i):
    """K/s over the i-th 10 s report interval (row i holds the room at its end)."""
    room = np.concatenate(([0.0], ts["room_excess_k"].to_numpy()))
    return (room[i + 1] - room[i]) / 10.0


def test_rack_steel_slows_the_room_by_default():
    # The default room: its air, and the racks' steel behind h A. Khankari (2011): with the same
    # heat, the air warms at Q / (C_a + C_s) (1 + (C_s / C_a) exp(-t / t_c)), t_c = C_a C_s /
    # (G (C_a + C_s)) = 262 s: over the air alone's Q / C_a, (1 + 3 exp(-t / t_c)) / 4 here.
    from twin.validation.facility_anchors import _cooling_loss_scenario

    sc = _cooling_loss_scenario(1, 120.0)
    plant = build_facility(sc).cooling
    c_air, c_racks, g = plant.room_capacity_j_k, plant.room_rack_capacity_j_k, plant.room_rack_conductance_w_k
    assert (c_racks, g) == pytest.approx((4 * 43_400.0, 4 * 41.5))
    t_c = c_air * c_racks / (g * (c_air + c_racks))
    assert t_c == pytest.approx(262.0, abs=1.0)
    racks = simulate(sc).timeseries
    _, air_only = _cooling_loss(0.0)
    # up to 80 s, before the air-only room's dies throttle (its heat then falls)
    for i in range(8):
        hand = (1.0 + c_racks / c_air * np.exp(-(10.0 * i + 5.0) / t_c)) / (1.0 + c_racks / c_air)
        assert _slope(racks, i) / _slope(air_only, i) == pytest.approx(hand, abs=0.01)
    assert (racks["room_excess_k"].to_numpy() < air_only["room_excess_k"].to_numpy()).all()


def test_server_mass_slows_the_room_after_a_cooling_loss():
    # Two nodes: right after the loss the air alone takes the heat (dT/dt = Q / C_air); once the
    # servers' mass follows, Q / (C_air + C_mass). A strongly coupled mass gives the sum at once.
    fac, air_only = _cooling_loss(0.0)
    _, with_mass = _cooling_loss(65e3)
    _, strong = _cooling_loss(65e3, 1e6)
    c_air = fac.cooling.room_capacity_j_k
    n = fac.n_servers
    assert fac.cooling.room_mass_capacity_j_k == 0.0

    heat_w = _slope(air_only, 0) * c_air  # the white space's heat over the first 10 s
    assert _slope(with_mass, 0) == pytest.approx(heat_w / c_air, rel=0.05)
    assert _slope(strong, 0) == pytest.approx(heat_w / (c_air + n * 65e3), rel=0.05)
    # a minute in, the finite coupling has the mass taking a good part of the heat
    assert _slope(with_mass, 6) < 0.8 * _slope(air_only, 6)
    assert _slope(with_mass, 6) > _slope(strong, 6)
    assert (with_mass["room_excess_k"].to_numpy()[1:] < air_only["room_excess_k"].to_numpy()[1:]).all()


def test_room_nodes_hold_exactly_the_heat_put_in():
    # Energy: with no cooling (unpowered) and no pull-back (tau -> inf), the white space's heat ends
    # up in the air, the racks' steel and the servers' mass: C_a dT_a + sum C_s dT_s = Q t, block
    # after block, whatever the ticks.
    from twin.engine.cooling import build_plant
    from twin.validation.facility_anchors import _cooling_loss_scenario

    sc = _cooling_loss_scenario(2, 60.0)
    extra = {"control_time_constant_s": 1e15, "server_heat_capacity_j_k": 65e3}
    fac = build_facility(sc.model_copy(update={"cooling": sc.cooling.model_copy(update=extra)}))
    plant = build_plant(fac.cooling)
    plant.powered = False
    caps = np.concatenate(([plant.room_capacity_j_k], plant.solid_capacities_j_k))
    assert caps.size == 3  # air, servers, racks
    held_j, put_j = 0.0, 0.0
    weather = {"dry_bulb_c": 25.0, "wet_bulb_c": 18.0}
    for dts in (np.ones(7), np.array([0.5, 0.5, 2.0, 2.0, 2.0, 10.0]), np.full(100, 1.0)):
        heat = 4e4 * (1.0 + 0.1 * np.arange(dts.size))
        step = plant.compute(np.zeros_like(dts), heat, dts, weather)
        plant.commit(step)
        put_j += float(np.sum(heat * dts))
        held_j = float(caps @ np.concatenate(([plant.room_excess_k], plant.solids_k)))
        assert held_j == pytest.approx(put_j, rel=1e-9)
    assert plant.solids_k.min() > 0.0 and plant.room_excess_k > plant.solids_k.max()  # the air leads
