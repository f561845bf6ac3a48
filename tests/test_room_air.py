"""An uncooled room: what heats the servers' air, when tripped servers return, when the room model is out of range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin import load_scenario, simulate
from twin.facility import build_facility

REPO = Path(__file__).resolve().parent.parent
#: The outage scenario with no generator and the cooling plant off the UPS: the plant is dark for
#: the hour the utility is lost (7 200-10 800 s), the servers trip on hot room air.
DARK = {"power.cooling_on_ups": False, "power.generator": None}


@pytest.fixture(scope="module")
def dark():
    sc = load_scenario(REPO / "scenarios" / "utility-outage-late-generator.yaml", DARK)
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
    ok = simulate(load_scenario(REPO / "scenarios" / "utility-outage-late-generator.yaml"))
    assert not any("room model" in w for w in ok.meta["warnings"])
