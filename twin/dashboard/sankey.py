"""The energy-flow (Sankey) diagram's links, from a run's ledger categories (no Streamlit, no plotly).

The power chain of :func:`twin.engine.supply` as a graph: the grid (and any generator) feeds the
transformer; its secondary feeds the UPS, the other facility loads and the cooling plant (through
the UPS when ``power.cooling_on_ups``); the UPS feeds the PDUs, which feed the servers' PSUs, which
feed the accelerators and the rest of the servers. Every leaf is one ledger category, so the
leaves add up to the booked energy, and every inner node passes on what it takes in: the flow out
of the grid is the metered energy to the ledger's residual. A battery that delivered more than it
took (``battery_net`` < 0) is a second source into the UPS; one that took more is a leaf.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from twin.dashboard.frames import flow_group
from twin.ledger import category_label
from twin.units import J_PER_KWH

#: Inner nodes, in the chain's order.
GRID, GRID_AND_GENERATOR, TRANSFORMER, UPS, PDU, PSU, COOLING, BATTERY = (
    "grid",
    "grid + generator",
    "transformer",
    "UPS",
    "PDUs",
    "server PSUs",
    "cooling",
    "UPS battery",
)
#: The node each leaf category hangs from (cooling components hang from :data:`COOLING`).
_PARENT: dict[str, str] = {
    "accelerators": PSU,
    "server_other": PSU,
    "psu_loss": PSU,
    "pdu_loss": PDU,
    "ups_loss": UPS,
    "transformer_loss": TRANSFORMER,
    "other_facility": TRANSFORMER,
    "battery_net": UPS,
}
#: Where each inner node takes its energy from (the UPS's feed, and cooling's, depend on the run).
_FEED: dict[str, str] = {PSU: PDU, PDU: UPS, UPS: TRANSFORMER}

COLUMNS = ["source", "target", "energy_j", "energy_kwh", "category"]


def sankey_links(kpis: Mapping[str, float], cooling_on_ups: bool = False) -> pd.DataFrame:
    """Links ``source, target, energy_j, energy_kwh, category`` of the run's energy flow.

    ``category`` is the ledger category of a leaf link and empty for a link between inner
    nodes. Links that carry no energy are left out.
    """
    energy = {
        key[len("energy_") : -len("_j")]: float(v)
        for key, v in kpis.items()
        if key.startswith("energy_") and key.endswith("_j") and v is not None
    }
    feed = {**_FEED, COOLING: UPS if cooling_on_ups else TRANSFORMER}
    leaves: list[tuple[str, str, float, str]] = []
    battery_in_j = 0.0
    for category, joules in energy.items():
        if category == "battery_net" and joules < 0:
            battery_in_j = -joules  # the battery carried load: a source, not a sink
            continue
        parent = COOLING if category.startswith("cooling") else _PARENT.get(category, TRANSFORMER)
        leaves.append((parent, category_label(category), joules, category))
    # Each inner node's outflow, from the leaves up the chain (PSUs -> PDUs -> UPS -> transformer).
    out_j: dict[str, float] = {}
    for parent, _, joules, _ in leaves:
        out_j[parent] = out_j.get(parent, 0.0) + joules
    inner: list[tuple[str, str, float, str]] = []
    for node in (PSU, PDU, COOLING, UPS):
        total = out_j.get(node, 0.0) - (battery_in_j if node == UPS else 0.0)
        if node == UPS and battery_in_j > 0:
            inner.append((BATTERY, UPS, battery_in_j, ""))
        out_j[feed[node]] = out_j.get(feed[node], 0.0) + total
        inner.append((feed[node], node, total, ""))
    source = GRID_AND_GENERATOR if float(kpis.get("generator_output_j") or 0.0) > 0 else GRID
    inner.append((source, TRANSFORMER, out_j.get(TRANSFORMER, 0.0), ""))
    rows = [(s, t, j, j / J_PER_KWH, c) for s, t, j, c in (*inner, *leaves) if j > 0]
    return pd.DataFrame(rows, columns=COLUMNS)


def node_group(node: str, category: str = "") -> str:
    """The group a node is coloured by: a leaf's :func:`~twin.dashboard.frames.flow_group`, cooling, or the chain."""
    if category:
        return flow_group(category)
    return "cooling" if node == COOLING else "power chain"
