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
    # the PDUs' losses. The UPS's losses (in the electrical room) do not count.
    sc, r = dark
    ts = r.timeseries
    capacity_j_k = build_facility(sc).cooling.room_capacity_j_k
    off = (ts["time_s"] > 7800) & (ts["time_s"] <= 10800) & (ts["it_power_w"] == 0.0)
    assert off.sum() > 10
    t, room = ts.loc[off, "time_s"].to_numpy(), ts.loc[off, "room_excess_k"].to_numpy()
    slope_k_s = np.polyfit(t, room, 1)[0]
    pdu_w = ts.loc[off, "pdu_loss_power_w"].mean()
    assert ts.loc[off, "ups_loss_power_w"].mean() > pdu_w  # the larger loss is left out...
    # ...the PDUs' alone warm the room (to the node's step: its pull-back request is held over each
    # 1 s tick, which slows the rise by about dt / (2 tau) = 1 / 120).
    assert slope_k_s * capacity_j_k == pytest.approx(pdu_w * (1.0 - 1.0 / 120.0), rel=2e-3)


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
    assert any("beyond the one-node room model's range" in w for w in r.meta["warnings"])
    ok = simulate(load_scenario("utility-outage-late-generator"))
    assert not any("room model" in w for w in ok.meta["warnings"])


def _cooling_loss(server_heat_capacity_j_k: float, conductance_w_k: float = 100.0):
    """The Opengate set-up (all cooling lost at t = 0, 5 kW/rack), with the servers' mass."""
    from twin.validation.anchors import _cooling_loss_scenario

    sc = _cooling_loss_scenario(1, 120.0)
    extra = {"server_heat_capacity_j_k": server_heat_capacity_j_k, "server_air_conductance_w_k": conductance_w_k}
    sc = sc.model_copy(update={"cooling": sc.cooling.model_copy(update=extra)})
    return build_facility(sc), simulate(sc).timeseries


def test_server_mass_slows_the_room_after_a_cooling_loss():
    # Two nodes: right after the loss the air alone takes the heat (dT/dt = Q / C_air); once the
    # servers' mass follows, Q / (C_air + C_mass). A strongly coupled mass gives the sum at once.
    fac, air_only = _cooling_loss(0.0)
    _, with_mass = _cooling_loss(65e3)
    _, strong = _cooling_loss(65e3, 1e6)
    c_air = fac.cooling.room_capacity_j_k
    n = fac.n_servers
    assert fac.cooling.room_mass_capacity_j_k == 0.0

    def slope(ts, i):  # K/s over the i-th 10 s report interval (row i holds the room at its end)
        room = np.concatenate(([0.0], ts["room_excess_k"].to_numpy()))
        return (room[i + 1] - room[i]) / 10.0

    heat_w = slope(air_only, 0) * c_air  # the white space's heat over the first 10 s
    assert slope(with_mass, 0) == pytest.approx(heat_w / c_air, rel=0.05)
    assert slope(strong, 0) == pytest.approx(heat_w / (c_air + n * 65e3), rel=0.05)
    # a minute in, the finite coupling has the mass taking a good part of the heat
    assert slope(with_mass, 6) < 0.8 * slope(air_only, 6)
    assert slope(with_mass, 6) > slope(strong, 6)
    assert (with_mass["room_excess_k"].to_numpy()[1:] < air_only["room_excess_k"].to_numpy()[1:]).all()
