"""The energy-flow (Sankey) diagram balances: what enters each node leaves it, and the grid's
outflow is the metered energy to the ledger's residual."""

from __future__ import annotations

import pandas as pd
import pytest
from test_hostile_outputs import OUTAGE  # a battery that carries the load, then runs out

import twin
from twin.dashboard import sankey
from twin.ledger import category_label

SHORT = {"duration_s": 3600, "step_s": 10, "report_interval_s": 300}


def check_balance(links: pd.DataFrame, kpis: dict[str, float]) -> None:
    """Every inner node passes on what it takes; leaves are the ledger; the grid gives the metered energy."""
    into = links.groupby("target")["energy_j"].sum()
    out = links.groupby("source")["energy_j"].sum()
    for node in set(into.index) & set(out.index):
        assert into[node] == pytest.approx(out[node], rel=1e-12), node
    leaves = links[links["category"] != ""]
    booked = {k[len("energy_") : -2]: v for k, v in kpis.items() if k.startswith("energy_") and k.endswith("_j")}
    shown = {c: j for c, j in booked.items() if j > 0}
    assert dict(zip(leaves["category"], leaves["energy_j"], strict=True)) == pytest.approx(shown, rel=1e-12)
    sources = set(out.index) - set(into.index)
    supplied = out[list(sources)].sum() - sum(-j for j in booked.values() if j < 0)  # a battery's share
    residual = abs(kpis["ledger_residual_j"])
    assert abs(supplied - kpis["facility_energy_j"]) <= residual + 1e-9 * kpis["facility_energy_j"]


def test_the_default_pod_flows_from_the_grid_to_the_accelerators() -> None:
    kpis = twin.simulate(twin.load_scenario("default", SHORT)).kpis
    links = sankey.sankey_links(kpis)
    check_balance(links, kpis)
    flow = {(s, t): j for s, t, j in zip(links["source"], links["target"], links["energy_j"], strict=True)}
    # by hand: the PDUs carry the servers and the PSUs' losses, the UPS that plus the PDUs' losses
    servers = kpis["energy_accelerators_j"] + kpis["energy_server_other_j"] + kpis["energy_psu_loss_j"]
    assert flow[(sankey.PDU, sankey.PSU)] == pytest.approx(servers, rel=1e-12)
    assert flow[(sankey.UPS, sankey.PDU)] == pytest.approx(servers + kpis["energy_pdu_loss_j"], rel=1e-12)
    assert flow[(sankey.TRANSFORMER, sankey.COOLING)] == pytest.approx(kpis["cooling_energy_j"], rel=1e-12)
    assert flow[(sankey.PSU, category_label("accelerators"))] == kpis["energy_accelerators_j"]
    assert flow[(sankey.UPS, "UPS loss")] == kpis["energy_ups_loss_j"]
    assert set(links["source"]) - set(links["target"]) == {sankey.GRID}
    groups = {sankey.node_group(t, c) for t, c in zip(links["target"], links["category"], strict=True)}
    assert groups == {"IT", "conversion losses", "cooling", "other facility", "power chain"}


def test_cooling_on_the_ups_is_fed_by_the_ups() -> None:
    kpis = twin.simulate(twin.load_scenario("default", {**SHORT, "power.cooling_on_ups": True})).kpis
    links = sankey.sankey_links(kpis, cooling_on_ups=True)
    check_balance(links, kpis)
    feed = links.loc[links["target"] == sankey.COOLING, "source"]
    assert list(feed) == [sankey.UPS]


def test_a_battery_that_carried_the_load_is_a_second_source() -> None:
    kpis = twin.simulate(twin.load_scenario("default", OUTAGE)).kpis
    assert kpis["energy_battery_net_j"] < 0  # it delivered more than it took back
    links = sankey.sankey_links(kpis)
    check_balance(links, kpis)
    battery = links[links["source"] == sankey.BATTERY]
    assert list(battery["target"]) == [sankey.UPS]
    assert battery["energy_j"].iloc[0] == pytest.approx(-kpis["energy_battery_net_j"], rel=1e-12)
    assert set(links["source"]) - set(links["target"]) == {sankey.GRID, sankey.BATTERY}
