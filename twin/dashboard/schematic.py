"""The one-line facility schematic's boxes and lines, from a run and its compiled facility (no Streamlit, no plotly).

Two chains, each box placed on a grid (``x`` column, ``y`` row) and coloured by one number:

* **Power** (top row): grid (and generator, UPS battery where the scenario has them) ->
  transformer -> UPS -> PDUs -> server PSUs -> accelerators. A box's ``load`` is the stage's peak
  load over the capacity that must carry it (``rated_w`` x the units needed: N of a 2N or N+1
  stage, every rack's PDUs, every server's PSUs), the load the engine rates it by
  (:meth:`twin.engine.supply.PowerSupply.balance`): the transformer's secondary, the UPS output
  (plus the cooling plant when ``power.cooling_on_ups``), the PDUs' input, the PSUs' output (the
  servers' IT power). PDUs and PSUs are the fleet's mean, so one hot rack can be above it. The
  accelerators' is the peak mean GPU power over the power cap (or the device's maximum).
* **Cooling** (rows below), after :mod:`twin.physics.cooling_plant`'s topology: cold plates -> CDUs
  -> facility water (liquid), room air -> CRAHs -> chilled water (air; the facility water when the
  plant has no chillers), then chillers and economiser -> towers or dry coolers. A box's ``temp_c``
  is the peak temperature it delivers: die and coolant inlet, facility supply (the setpoint, or
  the weather's when there are no chillers, plus any loop excess), CRAH supply air, the chilled
  water setpoint, the economiser's and the tower's leaving water.

Peaks are over the report intervals' means (``Result.timeseries``), so a tick's peak can be a
little higher (``kpis["ups_load_fraction_max"]`` is the UPS's per tick).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
import pandas as pd

from twin.facility_parts.fleet import Facility, StageModel
from twin.facility_parts.plant import PlantSpec
from twin.physics.cooling_plant import crah_supply_air_c, facility_supply_c, heat_rejection_leaving_c
from twin.results import Result
from twin.units import J_PER_KWH, S_PER_HOUR

Side = Literal["power", "cooling"]
#: What a line carries: electric power, heat from the IT into the cooling, or water/air in a loop.
EdgeKind = Literal["power", "heat", "coolant"]

#: Names of the heat-rejection kinds (``cooling.heat_rejection``).
HEAT_REJECTION_LABELS = {
    "tower": "cooling towers",
    "dry_cooler": "dry coolers",
    "adiabatic_dry_cooler": "adiabatic dry coolers",
}


@dataclass(frozen=True)
class Node:
    """One box: where it sits, what it says, and the number that colours it.

    ``load`` (power boxes) is peak load over rating [-]; ``temp_c`` (cooling boxes) the peak
    temperature [C]; either is None where the box has none (it is drawn grey).
    """

    key: str
    label: str
    lines: tuple[str, ...]
    side: Side
    x: float
    y: float
    load: float | None = None
    temp_c: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Edge:
    """A line from box ``source`` to box ``target``."""

    source: str
    target: str
    kind: EdgeKind


def peak(ts: pd.DataFrame, series: pd.Series | np.ndarray | str) -> float | None:
    """The largest finite value of a column (by name) or series, None if it has none."""
    values = np.asarray(ts[series] if isinstance(series, str) else series, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else None


def kw(power_w: float | None) -> str:
    """Power as kW with thousands separators (``n/a`` for None)."""
    return "n/a" if power_w is None else f"{power_w / 1e3:,.0f} kW"


def deg(temp_c: float | None) -> str:
    """A temperature to 0.1 °C (``n/a`` for None)."""
    return "n/a" if temp_c is None else f"{temp_c:.1f} °C"


def pct(share: float | None, of: str) -> str:
    """A load share as a percentage ``of`` its rating (``n/a`` for None)."""
    return "n/a" if share is None else f"{share:.0%} of {of}"


def _share(load_w: float | None, capacity_w: float) -> float | None:
    return None if load_w is None or not capacity_w > 0 else load_w / capacity_w


def _stage_node(
    key: str, label: str, x: float, load_w: float | None, stage: StageModel, groups: int, group: str
) -> Node:
    """A conversion stage's box: peak load, load over the capacity its needed units give."""
    capacity_w = groups * stage.units_needed * stage.rated_w
    share = _share(load_w, capacity_w)
    per = f" per {group}" if group else ""
    return Node(
        key,
        label,
        (kw(load_w), pct(share, "rating")),
        "power",
        x,
        2.0,
        load=share,
        detail=f"{stage.count} × {stage.rated_w / 1e3:,.1f} kW{per} ({stage.redundancy}: {stage.units_needed} "
        f"needed); peak load {kw(load_w)} of {kw(capacity_w)}",
    )


def power_nodes(result: Result, fac: Facility) -> tuple[list[Node], list[Edge]]:
    """The power chain's boxes, left to right, and the lines between them."""
    ts = result.timeseries
    it_w = ts["it_power_w"]
    pdu_in_w = it_w + ts["psu_loss_power_w"] + ts["pdu_loss_power_w"]
    ups_w = pdu_in_w + (ts["cooling_power_w"] if fac.supply.cooling_on_ups else 0.0)
    site_limit_w = fac.controls.site_power_limit_w
    grid_w = peak(ts, "facility_power_w")
    grid_share = _share(grid_w, site_limit_w or 0.0)
    source_label = "grid" if site_limit_w is None else "grid (site limit)"
    nodes = [
        Node(
            "grid",
            source_label,
            (kw(grid_w),) if site_limit_w is None else (kw(grid_w), pct(grid_share, "limit")),
            "power",
            0,
            2.0,
            load=grid_share,
            detail="peak draw from the utility (and generator)"
            + ("" if site_limit_w is None else f"; site limit {kw(site_limit_w)}"),
        ),
        _stage_node(
            "transformer",
            "transformer",
            1,
            peak(ts, ts["facility_power_w"] - ts["transformer_loss_power_w"]),
            fac.stages["transformer"],
            1,
            "",
        ),
        _stage_node("ups", "UPS", 2, peak(ts, ups_w), fac.stages["ups"], 1, ""),
        _stage_node("pdu", "PDUs", 3, peak(ts, pdu_in_w), fac.stages["pdu"], fac.n_racks, "rack"),
        _stage_node("psu", "server PSUs", 4, peak(ts, it_w), fac.stages["psu"], fac.n_servers, "server"),
    ]
    cap_w = fac.power_cap_w if fac.power_cap_w is not None else fac.accelerator.max_power_w
    gpu_w = peak(ts, "gpu_power_mean_w")
    share = _share(gpu_w, cap_w)
    nodes.append(
        Node(
            "accelerators",
            "accelerators",
            (
                f"{gpu_w:,.0f} W per GPU" if gpu_w is not None else "n/a",
                pct(share, "cap" if fac.power_cap_w is not None else "max"),
            ),
            "power",
            5,
            2.0,
            load=share,
            detail=f"{fac.n_servers * fac.gpus_per_server:,} × {fac.accelerator.name}: peak mean GPU power over the "
            f"{'power cap' if fac.power_cap_w is not None else 'maximum power'} of {cap_w:,.0f} W; "
            f"accelerators peak {kw(peak(ts, 'accelerators_power_w'))}",
        )
    )
    chain = ["grid", "transformer", "ups", "pdu", "psu", "accelerators"]
    edges = [Edge(a, b, "power") for a, b in pairwise(chain)]
    gen = fac.supply.generator
    if gen is not None:  # at the LV switchboard: it feeds the UPS (and the loads beside it)
        gen_w = peak(ts, "generator_power_w")
        share = _share(gen_w, gen.rated_w)
        nodes.append(
            Node(
                "generator",
                "generator",
                (kw(gen_w), pct(share, "rating")),
                "power",
                1,
                2.8,
                load=share,
                detail=f"rated {kw(gen.rated_w)}; starts {gen.start_delay_s:g} s after a utility loss",
            )
        )
        edges.append(Edge("generator", "ups", "power"))
    if fac.supply.battery is not None:
        soc = peak(ts, -ts["battery_soc"])
        low = "n/a" if soc is None else f"{-soc:.0%}"
        nodes.append(
            Node(
                "battery",
                "UPS battery",
                (f"{fac.supply.battery.capacity_j / J_PER_KWH:,.0f} kWh", f"charge ≥ {low}"),
                "power",
                2,
                2.8,
                detail="lowest state of charge over the run",
            )
        )
        edges.append(Edge("battery", "ups", "power"))
    return nodes, edges


def cooling_nodes(result: Result, fac: Facility) -> tuple[list[Node], list[Edge]]:
    """The cooling loops' boxes (right: the IT; left: the outdoor air) and the lines between them."""
    ts = result.timeseries
    spec = fac.cooling
    die_c, inlet_c = peak(ts, "die_temp_max_c"), peak(ts, "inlet_temp_max_c")
    if not isinstance(spec, PlantSpec):  # the ideal plant: inlets held, no loops to draw
        medium = "coolant" if spec.liquid_cooled else "air"
        node = Node(
            "ideal",
            "ideal cooling",
            (f"{medium} in {deg(inlet_c)}", f"die ≤ {deg(die_c)}"),
            "cooling",
            5,
            1.0,
            temp_c=die_c,
            detail="cooling.model: ideal (no plant, no cooling energy)",
        )
        return [node], [Edge("accelerators", "ideal", "heat")]
    p = spec.params
    db, wb = ts["dry_bulb_c"].to_numpy(), ts["wet_bulb_c"].to_numpy()
    supply = facility_supply_c(db, wb, p) + ts["loop_excess_k"].to_numpy()
    chillers = p.n_chillers > 0
    liquid = fac.liquid_cooled
    air = not liquid or spec.liquid_fraction < 1.0
    nodes: list[Node] = []
    edges: list[Edge] = []
    fws = liquid or not chillers  # the facility water loop carries the liquid heat, or the CRAHs' without chillers
    if liquid:
        nodes += [
            Node(
                "cold_plates",
                "cold plates",
                (f"die ≤ {deg(die_c)}", f"inlet ≤ {deg(inlet_c)}"),
                "cooling",
                5,
                1.0,
                temp_c=die_c,
                detail=f"{spec.liquid_fraction:.0%} of the servers' heat to liquid",
            ),
            Node(
                "cdu",
                f"{spec.n_cdus} × CDU",
                (f"supply ≤ {deg(inlet_c)}", f"pumps {kw(peak(ts, 'cooling_cdu_pumps_power_w'))}"),
                "cooling",
                4,
                1.0,
                temp_c=inlet_c,
                detail=f"coolant to the cold plates: facility supply + {p.cdu_approach_k:g} K approach",
            ),
        ]
        edges += [
            Edge("accelerators", "cold_plates", "heat"),
            Edge("cold_plates", "cdu", "coolant"),
            Edge("cdu", "fws", "coolant"),
        ]
    if fws:
        top = peak(ts, supply)
        nodes.append(
            Node(
                "fws",
                "facility water",
                (f"supply ≤ {deg(top)}", f"return ≈ {deg(None if top is None else top + p.facility_delta_t_k)}"),
                "cooling",
                3,
                1.0 if liquid else 0.0,
                temp_c=top,
                detail=f"setpoint {p.facility_supply_c:g} °C"
                + ("" if chillers else ", floating on the weather (no chillers)")
                + f"; return at the design ΔT of {p.facility_delta_t_k:g} K",
            ),
        )
    if air:
        air_c = crah_supply_air_c(supply, p)
        room_c = peak(ts, air_c + ts["room_excess_k"].to_numpy())
        crah_c = peak(ts, air_c)
        loop = "fws" if not chillers else "chw"
        room_lines = (f"air in ≤ {deg(room_c)}", f"die ≤ {deg(die_c)}") if not liquid else (f"≤ {deg(room_c)}",)
        nodes += [
            Node(
                "room",
                "servers (air)" if not liquid else "room air",
                room_lines,
                "cooling",
                5,
                0.0,
                temp_c=room_c,
                detail="the air the servers draw: CRAH supply plus any excess the room builds up",
            ),
            Node(
                "crah",
                f"{spec.n_crahs} × CRAH",
                (f"air ≤ {deg(crah_c)}", f"fans {kw(peak(ts, 'cooling_crah_fans_power_w'))}"),
                "cooling",
                4,
                0.0,
                temp_c=crah_c,
                detail=f"supply-air setpoint {p.crah_supply_air_c:g} °C",
            ),
        ]
        edges += [Edge("accelerators", "room", "heat"), Edge("room", "crah", "coolant"), Edge("crah", loop, "coolant")]
        if chillers:
            nodes.append(
                Node(
                    "chw",
                    "chilled water",
                    (f"supply {deg(p.chw_supply_c)}", f"return ≈ {deg(p.chw_supply_c + p.chw_delta_t_k)}"),
                    "cooling",
                    3,
                    0.0,
                    temp_c=p.chw_supply_c,
                    detail=f"setpoint; return at the design ΔT of {p.chw_delta_t_k:g} K",
                ),
            )
    loops = [k for k in ("fws", "chw") if any(n.key == k for n in nodes)]
    source_c = heat_rejection_leaving_c(db, wb, p)
    if chillers:
        nodes.append(
            Node(
                "chillers",
                f"{p.n_chillers} × chiller",
                (f"water {deg(p.chw_supply_c)}", kw(peak(ts, "cooling_chiller_power_w"))),
                "cooling",
                2,
                0.0,
                temp_c=p.chw_supply_c,
                detail="chilled-water setpoint; peak electric power",
            ),
        )
        edges += [Edge(loop, "chillers", "coolant") for loop in loops]
    if p.economiser_enabled:
        hours = result.kpis.get("free_cooling_h")
        duration_s = result.kpis.get("duration_s")
        free = None if hours is None or not duration_s else hours * S_PER_HOUR / duration_s
        econ_c = peak(ts, source_c + p.hx_approach_k)
        nodes.append(
            Node(
                "economiser",
                "economiser",
                (f"water ≤ {deg(econ_c)}", "n/a" if free is None else f"carries {free:.0%}"),
                "cooling",
                2,
                1.0,
                temp_c=econ_c,
                detail=f"tower water + {p.hx_approach_k:g} K exchanger approach; "
                "carries: the equivalent share of the run on full free cooling",
            ),
        )
        edges += [Edge(loop, "economiser", "coolant") for loop in loops]
    wet = p.heat_rejection != "dry_cooler"
    outdoor = peak(ts, "wet_bulb_c" if wet else "dry_bulb_c")
    nodes.append(
        Node(
            "rejection",
            HEAT_REJECTION_LABELS.get(p.heat_rejection, p.heat_rejection),
            (f"water ≤ {deg(peak(ts, source_c))}", f"{'wet' if wet else 'dry'}-bulb {deg(outdoor)}"),
            "cooling",
            1,
            0.5,
            temp_c=peak(ts, source_c),
            detail=f"leaving water; fans peak {kw(peak(ts, 'cooling_heat_rejection_fans_power_w'))}",
        ),
    )
    edges += [Edge(k, "rejection", "coolant") for k in ("chillers", "economiser") if any(n.key == k for n in nodes)]
    return nodes, edges


def schematic(result: Result, fac: Facility) -> tuple[list[Node], list[Edge]]:
    """Every box and line of the one-line schematic of ``result``, run on the compiled ``fac``."""
    power, power_edges = power_nodes(result, fac)
    cooling, cooling_edges = cooling_nodes(result, fac)
    nodes = [*power, *cooling]
    keys = {n.key for n in nodes}
    edges = [e for e in (*power_edges, *cooling_edges) if e.source in keys and e.target in keys]
    return nodes, edges


def colour_value(node: Node) -> float | None:
    """The number a box is coloured by (load for power, temperature for cooling); None: grey."""
    value = node.load if node.side == "power" else node.temp_c
    return None if value is None or not math.isfinite(value) else value
