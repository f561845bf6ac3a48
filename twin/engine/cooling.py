"""Cooling as the engine sees it: heat in; electric power, water and inlet temperatures out.

:class:`PhysicalPlant` wraps :func:`twin.physics.cooling_plant.plant_power` and adds the thermal
dynamics the plant function has no memory for, as lumped RC nodes (exact steps,
:mod:`twin.physics.thermal`):

* the technology coolant loop (TCS: cold plates, CDU secondary), heat capacity ``C_loop`` =
  loop volume x rho x cp (1 L per kW of design liquid heat, parameters.md 4);
* the room air, ``C_room`` = air volume x rho x cp plus any mass in close contact, and behind it
  the solids it washes, each coupled to the air by a conductance ``G``: the rack enclosures' steel
  (on by default) and the servers' mass (heat sinks, chassis; off by default)
  (:func:`twin.physics.thermal.room_trajectory`): right after a cooling loss the air warms at
  ``Q / C_room``, and as the solids follow, at ``Q / (C_room + sum C_solid)`` (Khankari 2011);
* optional chilled-water storage, an energy buffer of ``V rho cp dT_chw``.

Each node is described by its excess temperature ``dT`` above the setpoint the plant holds. The
plant controller asks for the node's heat plus ``C dT / tau_ctrl`` (a proportional pull-back); what
it cannot remove (``unmet``) warms the node::

    C d(dT)/dt = unmet - C dT / tau_ctrl   ->   dT_ss = unmet tau_ctrl / C,  time constant tau_ctrl

so with spare capacity a warm loop relaxes to its setpoint with ``tau_ctrl``, and with a shortfall
it warms until throttled GPUs shed enough heat. Room air above :data:`SERVER_AIR_SHUTDOWN_C` powers
cold-plate servers off too (the kernel's ``thermal_shutdown``); operators restart them once the
room air is back below it. The UPS's losses load the plant but sit in the electrical room: what
the plant leaves unmet of them does not warm the white space. Device inlets
are the TCS supply (facility supply + CDU approach) plus ``dT_loop`` for cold-plate GPUs, and the
CRAH supply air plus ``dT_room`` for air-cooled ones.

A plant without chillers (``n_chillers = 0``) holds no setpoint above the weather: its facility
supply (and the CRAH supply air, whose coils take that water) floats on the tower or dry-cooler
water (:func:`twin.physics.cooling_plant.facility_supply_c`), so a hot hour raises the cold-plate
inlets by that rise, ``supply_rise_k``, on top of ``dT_loop``, and the room air by ``air_rise_k``;
the dies follow and throttle at their slowdown temperature. The kernel shows the plant the weather
at the start and after every block (:meth:`PhysicalPlant.see_weather`). Such a plant is never
:attr:`PhysicalPlant.at_rest`: its blocks stop at every weather hour, where the inlets change.

Faults (``twin/engine/fault_schedule.py``) act through four attributes: ``chillers_available`` (trips,
restart after a power cut), ``cdu_fraction`` (CDUs whose pumps run: the survivors carry at most
their rated share, ``(n_cdus - 1)`` units being sized for the design liquid heat),
``crah_fraction`` (CRAH units running: their rated air flow and fan power scale with the count)
and ``powered`` (no power: nothing is removed, every watt warms its node, ``C d(dT)/dt = Q``).
The loop and room are single lumped nodes, so a CDU failure is a capacity shortfall shared by
every rack rather than a local loss of flow: the time to shutdown it gives is an upper bound.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from twin._types import FloatArray
from twin.facility_parts.plant import CoolingSpec, IdealPlantSpec, PlantSpec
from twin.physics.cooling_plant import PlantResult, crah_supply_air_c, facility_supply_c, plant_power
from twin.physics.plant_params import ASHRAE_AIR_CLASSES, PlantParams
from twin.physics.thermal import RoomModes, rc_step, room_modes, room_trajectory
from twin.units import STANDARD_PRESSURE_PA

#: Node excess temperature below which a node counts as at its setpoint. [K]
AT_SETPOINT_K = 1e-6
#: A node changing faster than this needs tick-by-tick feedback. [K/s]
FINE_RATE_K_S = 1e-3
#: Largest node drift accepted within one vectorised block (inlets are held at their start value). [K]
DRIFT_K = 0.1
#: [EST] Room air at which cold-plate servers power off. [C] The upper allowable inlet of ASHRAE
#: class A4, the widest air class (TC 9.9, 2021): no IT equipment is specified for hotter air, and
#: the air-cooled parts of a cold-plate server (CPUs, memory, NICs, PSUs: the ``1 - liquid_share``
#: of its heat) trip their BMC's inlet-critical limit about there. Air-cooled servers go down by
#: their GPU dies, which breathe the room air: that path is anchored on a measured room (Opengate
#: 2007, 189 s at 5 kW/rack, docs/anchors.md), reached with room air well above 45 C. The room
#: holds its air and the racks' steel by default, not the servers' or the building's mass, so the
#: time to this trip is a lower bound.
SERVER_AIR_SHUTDOWN_C = ASHRAE_AIR_CLASSES["A4"][1]


@dataclass
class PlantStep:
    """What the plant did over a block of ``K`` ticks (arrays of length ``K``)."""

    powers_w: dict[str, FloatArray]
    water_kg_s: FloatArray
    free_cooling_fraction: FloatArray
    unmet_w: FloatArray
    loop_excess_k: float = 0.0
    room_excess_k: float = 0.0
    solids_k: tuple[float, ...] = ()
    storage_j: float = 0.0
    drift_k: FloatArray | None = None
    rate_k_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    #: Loop and room excess after each tick ``(2, K)`` (None: the plant has no nodes). [K]
    nodes_k: FloatArray | None = None
    #: The nodes' fastest rate in each tick ``(K,)`` (``rate_k_s`` is the last). [K/s]
    rate_k: FloatArray | None = None

    def first_drift_tick(self) -> int | None:
        """Index of the first tick whose node drift from the block start exceeds :data:`DRIFT_K`."""
        if self.drift_k is None:
            return None
        over = np.flatnonzero(self.drift_k > DRIFT_K)
        return int(over[0]) if over.size else None


class IdealPlant:
    """Limiting case: no cooling energy, inlets fixed at ``supply_temp_c`` (faults have no effect)."""

    components: tuple[str, ...] = ()
    n_chillers: int = 0
    floats_on_weather: bool = False

    def __init__(self, spec: IdealPlantSpec) -> None:
        self.spec = spec
        self.liquid_fraction = spec.liquid_fraction
        self.liquid_cooled = spec.liquid_cooled
        self.chillers_available: float | None = None
        self.cdu_fraction = 1.0
        self.crah_fraction = 1.0
        self.powered = True

    @property
    def transient(self) -> bool:
        """Never away from its setpoints."""
        return False

    @property
    def at_rest(self) -> bool:
        """Always at its setpoints."""
        return True

    def see_weather(self, weather: Mapping[str, float]) -> None:
        """Nothing follows the weather."""

    @property
    def store_full(self) -> bool:
        """No chilled-water store to recharge."""
        return True

    def inlet_temp_c(self, n_servers: int, excess_k: FloatArray | None = None) -> FloatArray:
        """Device inlet temperature per server (``excess_k`` is ignored: no node moves). [C]"""
        return np.full(n_servers, self.spec.supply_temp_c)

    @property
    def room_air_c(self) -> float:
        """Room air the servers draw: held at the supply temperature (an air-cooled ideal plant). [C]"""
        return -np.inf if self.liquid_cooled else float(self.spec.supply_temp_c)

    def compute(
        self,
        heat_liquid_w: FloatArray,
        heat_air_w: FloatArray,
        dts: FloatArray,
        weather: dict[str, float] | dict[str, FloatArray],
        heat_elsewhere_w: FloatArray | float = 0.0,
        excess_k: FloatArray | None = None,
    ) -> PlantStep:
        """Remove all heat at no cost."""
        zeros = np.zeros_like(dts)
        return PlantStep({}, zeros, np.ones_like(dts), zeros.copy())

    def commit(self, step: PlantStep) -> None:
        """Nothing to remember."""


class PhysicalPlant:
    """The facility cooling plant with loop, room and storage thermal nodes."""

    components: tuple[str, ...] = ("chiller", "heat_rejection_fans", "pumps", "cdu_pumps", "crah_fans")

    def __init__(self, spec: PlantSpec) -> None:
        self.spec = spec
        self.liquid_fraction = spec.liquid_fraction
        self.liquid_cooled = spec.liquid_cooled
        self.params = p = spec.params
        self.loop_capacity_j_k = spec.loop_capacity_j_k
        self.room_capacity_j_k = spec.room_capacity_j_k
        self.storage_capacity_j = spec.storage_capacity_j
        self.tau_s = spec.control_time_constant_s
        self.tcs_supply_c = p.facility_supply_c + p.cdu_approach_k
        #: The room's solid nodes that hold heat (servers' mass, racks' steel): capacities and
        #: conductances to the air. [J/K], [W/K]
        solids = [
            (c, g)
            for c, g in (
                (spec.room_mass_capacity_j_k, spec.room_mass_conductance_w_k),
                (spec.room_rack_capacity_j_k, spec.room_rack_conductance_w_k),
            )
            if c > 0.0
        ]
        self.solid_capacities_j_k = np.array([c for c, _ in solids])
        self.solid_conductances_w_k = np.array([g for _, g in solids])
        self._modes: dict[float, RoomModes] = {}
        self.loop_excess_k = 0.0
        self.room_excess_k = 0.0
        #: The solids above the CRAH supply air. [K]
        self.solids_k = np.zeros(len(solids))
        self.storage_j = self.storage_capacity_j
        #: Facility supply and CRAH supply air above their setpoints now (plants without chillers;
        #: :meth:`see_weather`). [K]
        self.supply_rise_k = 0.0
        self.air_rise_k = 0.0
        self.chillers_available: float | None = None
        self.n_chillers = p.n_chillers
        #: No chillers: supply temperatures follow the weather, and servers hot room air tripped
        #: restart once it cools (no fault to clear).
        self.floats_on_weather = p.economiser_only
        self.cdu_fraction = 1.0
        self.crah_fraction = 1.0
        self.powered = True
        self.cdu_capacity_w = spec.cdu_capacity_w
        self._crah_params: dict[float, PlantParams] = {1.0: p}
        self._rate_k_s = 0.0

    @property
    def transient(self) -> bool:
        """True while a node changes faster than :data:`FINE_RATE_K_S`.

        The engine then computes each tick from the nodes' state at its start, so temperature,
        throttling and heat feed back every tick (:meth:`twin.engine.transient.TransientStepper.block`).
        """
        return self._rate_k_s > FINE_RATE_K_S

    @property
    def at_rest(self) -> bool:
        """Powered, loop and room exactly at their setpoints, storage full: blocks may span reports.

        While at rest a block's ticks do not depend on where the block starts; the engine checks
        each block for unmet heat (the only way out of rest) and cuts it before.
        """
        return (
            self.powered
            and not self.floats_on_weather
            and self.loop_excess_k == 0.0
            and self.room_excess_k == 0.0
            and not self.solids_k.any()
            and self.storage_j >= self.storage_capacity_j
            and self._rate_k_s == 0.0
        )

    @property
    def store_full(self) -> bool:
        """The chilled-water store (if any) is full: :meth:`compute` then recharges nothing.

        A block computed with ``excess_k`` is the one-tick-at-a-time result only while the store
        stays full (its recharge is decided once per block).
        """
        return self.storage_j >= self.storage_capacity_j

    @property
    def room_air_c(self) -> float:
        """Room air the servers draw: CRAH supply plus the room's excess. [C]"""
        return float(self.room_air_at_c(self.room_excess_k))

    def room_air_at_c(self, room_excess_k: FloatArray | float) -> FloatArray:
        """Room air at the room excess ``room_excess_k`` (e.g. after each tick of a block). [C]"""
        return np.asarray(self.params.crah_supply_air_c + self.air_rise_k + room_excess_k)

    def see_weather(self, weather: Mapping[str, float]) -> None:
        """The weather now (dry- and wet-bulb) sets the supply of a plant without chillers."""
        if not self.floats_on_weather:
            return
        p = self.params
        supply_c = float(facility_supply_c(weather["dry_bulb_c"], weather["wet_bulb_c"], p))
        self.supply_rise_k = supply_c - p.facility_supply_c
        self.air_rise_k = float(crah_supply_air_c(supply_c, p)) - p.crah_supply_air_c

    def inlet_temp_c(self, n_servers: int, excess_k: FloatArray | None = None) -> FloatArray:
        """Device inlet temperature per server: TCS supply (cold plates) or room air. [C]

        With ``excess_k``, the loop and room excess at each tick's start ``(2, K)``, one row per tick ``(K, n)``.
        """
        if excess_k is None:
            loop, room = self.loop_excess_k, self.room_excess_k
            shape: tuple[int, ...] = (n_servers,)
        else:
            loop, room = excess_k[0][:, None], excess_k[1][:, None]
            shape = (excess_k.shape[1], n_servers)
        if self.liquid_cooled:
            return np.broadcast_to(self.tcs_supply_c + self.supply_rise_k + loop, shape).copy()
        return np.broadcast_to(self.room_air_at_c(room), shape).copy()

    def compute(
        self,
        heat_liquid_w: FloatArray,
        heat_air_w: FloatArray,
        dts: FloatArray,
        weather: dict[str, float] | dict[str, FloatArray],
        heat_elsewhere_w: FloatArray | float = 0.0,
        excess_k: FloatArray | None = None,
    ) -> PlantStep:
        """Plant power and node evolution over a block (state is changed only by :meth:`commit`).

        ``heat_elsewhere_w`` is the part of ``heat_air_w`` released outside the white space (the
        UPS's losses, in its electrical room): the plant removes it, but what it leaves unmet warms
        that room, not the air the servers draw, so the room node takes only the white space's
        share of the unmet air heat. The controller pulls back the loop and room excess of the
        block's start, or, given ``excess_k`` ``(2, K)``, those at each tick's start (the kernel's
        transient blocks, :meth:`twin.engine.transient.TransientStepper.block`).
        """
        loop0, room0 = (self.loop_excess_k, self.room_excess_k) if excess_k is None else excess_k
        q_rec_l = self.loop_capacity_j_k * loop0 / self.tau_s
        q_rec_a = self.room_capacity_j_k * room0 / self.tau_s
        total_a = np.asarray(heat_air_w + q_rec_a, dtype=np.float64)
        white = np.clip(
            np.divide(total_a - heat_elsewhere_w, total_a, out=np.ones_like(total_a), where=total_a > 0), 0.0, 1.0
        )
        if not self.powered:
            return self._unpowered(heat_liquid_w + q_rec_l, total_a, dts, white, excess_k)
        recharge = 0.0
        if self.storage_j < self.storage_capacity_j:
            recharge = (self.storage_capacity_j - self.storage_j) / self.tau_s
        liquid_w = heat_liquid_w + q_rec_l
        no_path_w = np.zeros_like(dts)
        if self.cdu_fraction < 1.0:  # CDUs down: the survivors carry at most their rated share
            served = np.minimum(liquid_w, self.cdu_capacity_w * self.cdu_fraction)
            no_path_w, liquid_w = liquid_w - served, served
        res = self._run(liquid_w, heat_air_w + q_rec_a + recharge, weather)
        if recharge > 0 and np.any(res.unmet_heat_w > 0):
            recharge = 0.0  # no spare capacity: do not recharge the store now
            res = self._run(liquid_w, heat_air_w + q_rec_a, weather)
        unmet_l = np.asarray(res.unmet_liquid_w, dtype=np.float64) * np.ones_like(dts) + no_path_w
        unmet_a = np.asarray(res.unmet_air_w, dtype=np.float64) * np.ones_like(dts)
        # Chilled-water storage carries unmet heat while it holds cold water.
        storage = self.storage_j + recharge * float(dts.sum())
        from_store = np.zeros_like(dts)
        if self.storage_capacity_j > 0:
            want = (unmet_l + unmet_a) * dts
            supplied = np.minimum(want, np.maximum(storage - np.concatenate(([0.0], np.cumsum(want)[:-1])), 0.0))
            from_store = np.divide(supplied, dts, out=np.zeros_like(dts), where=dts > 0)
            share_l = np.divide(unmet_l, unmet_l + unmet_a, out=np.zeros_like(dts), where=(unmet_l + unmet_a) > 0)
            unmet_l = unmet_l - from_store * share_l
            unmet_a = unmet_a - from_store * (1.0 - share_l)
            storage = min(storage - float(supplied.sum()), self.storage_capacity_j)
        loop, room, solids = self._nodes(unmet_l, unmet_a * white, dts, excess_k)
        drift, rates = self._drift_rate(loop, room, dts)
        ones = np.ones_like(dts)
        powers = {
            "chiller": res.chiller_power_w * ones,
            "heat_rejection_fans": (res.tower_fan_power_w + res.dry_cooler_fan_power_w) * ones,
            "pumps": res.pump_power_w * ones,
            "cdu_pumps": res.cdu_pump_power_w * ones,
            "crah_fans": res.crah_fan_power_w * ones,
        }
        return PlantStep(
            powers_w=powers,
            water_kg_s=res.water_kg_s * ones,
            free_cooling_fraction=res.free_cooling_fraction * ones,
            unmet_w=unmet_l + unmet_a,
            loop_excess_k=float(loop[-1]),
            room_excess_k=float(room[-1]),
            solids_k=tuple(solids[-1].tolist()),
            storage_j=storage,
            drift_k=drift,
            rate_k_s=float(rates[-1]),
            nodes_k=np.stack((loop, room)),
            rate_k=rates,
        )

    def commit(self, step: PlantStep) -> None:
        """Accept a computed block: move the nodes to their new state."""
        self.loop_excess_k = step.loop_excess_k
        self.room_excess_k = step.room_excess_k
        self.solids_k = np.array(step.solids_k)
        self.storage_j = step.storage_j
        self._rate_k_s = step.rate_k_s

    def _unpowered(
        self,
        heat_liquid_w: FloatArray,
        heat_air_w: FloatArray,
        dts: FloatArray,
        white: FloatArray,
        excess_k: FloatArray | None,
    ) -> PlantStep:
        """No power: no component runs and all heat (plus the pull-back request) is unmet.

        ``white`` is the white space's share of the air heat, ``excess_k`` the nodes' states the
        pull-back was asked at (:meth:`compute`).
        """
        ones = np.ones_like(dts)
        unmet_l = np.asarray(heat_liquid_w, dtype=np.float64) * ones
        unmet_a = np.asarray(heat_air_w, dtype=np.float64) * ones
        loop, room, solids = self._nodes(unmet_l, unmet_a * white, dts, excess_k)
        drift, rates = self._drift_rate(loop, room, dts)
        zeros = np.zeros_like(dts)
        return PlantStep(
            powers_w=dict.fromkeys(self.components, zeros),
            water_kg_s=zeros,
            free_cooling_fraction=zeros,
            unmet_w=unmet_l + unmet_a,
            loop_excess_k=float(loop[-1]),
            room_excess_k=float(room[-1]),
            solids_k=tuple(solids[-1].tolist()),
            storage_j=self.storage_j,
            drift_k=drift,
            rate_k_s=float(rates[-1]),
            nodes_k=np.stack((loop, room)),
            rate_k=rates,
        )

    def _params(self) -> PlantParams:
        """Parameters with the CRAH fleet reduced to the units running."""
        frac = self.crah_fraction
        if frac not in self._crah_params:
            base = self._crah_params[1.0]
            self._crah_params[frac] = replace(base, crah_capacity_factor=base.crah_capacity_factor * max(frac, 1e-9))
        return self._crah_params[frac]

    def _run(
        self, heat_liquid_w: FloatArray, heat_air_w: FloatArray, weather: dict[str, float] | dict[str, FloatArray]
    ) -> PlantResult:
        return plant_power(
            heat_liquid_w,
            heat_air_w,
            weather["dry_bulb_c"],
            weather["wet_bulb_c"],
            self._params(),
            chillers_available=self.chillers_available,
            pressure_pa=weather.get("pressure_pa", STANDARD_PRESSURE_PA),
        )

    def _drift_rate(self, loop: FloatArray, room: FloatArray, dts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Largest node drift from the block start per tick, and the nodes' fastest rate in each tick.

        The nodes the devices breathe or drink from (loop, room air), not the room's solids: those
        reach the inlets only through the air, whose steps already carry them, and a warm rack
        cooling over tens of minutes must not hold the engine at one tick per step.
        """
        start = np.array([[self.loop_excess_k], [self.room_excess_k]])
        nodes = np.stack((loop, room))
        drift = np.max(np.abs(nodes - start), axis=0)
        rates = np.max(np.abs(np.diff(nodes, axis=1, prepend=start)), axis=0) / dts
        return drift, rates

    def _nodes(
        self, unmet_l: FloatArray, unmet_a: FloatArray, dts: FloatArray, excess_k: FloatArray | None
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Loop, room air and the room's solids (ticks x solids) after each tick, from the unmet heat.

        The unmet heat includes the controller's pull-back, asked at the block's start state or at
        ``excess_k`` (each tick's start, as guessed: :meth:`compute`). Where heat is unmet the
        pull-back is unmet too, so each node's tick is corrected by the pull-back at the state it
        has reached against the one it was asked at: exact when the guess is, and the node's own
        feedback no longer waits for the next guess (the kernel's passes then settle in a few).
        """
        pull_l = pull_a = None
        if excess_k is not None:
            pull_l = np.where(unmet_l > 0, excess_k[0], np.nan)
            pull_a = np.where(unmet_a > 0, excess_k[1], np.nan)
        loop = self._node(self.loop_excess_k, unmet_l, self.loop_capacity_j_k, dts, pull_l)
        room, solids = self._room(unmet_a, dts, pull_a)
        return loop, room, solids

    def _room(
        self, unmet_w: FloatArray, dts: FloatArray, pulled_k: FloatArray | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Room air after each tick, and each solid node's excess (ticks x solids): exact steps.

        ``pulled_k``: the air excess each tick's pull-back was asked at (NaN: none unmet; :meth:`_nodes`).
        """
        n = self.solids_k.size
        if n == 0:
            air = self._node(self.room_excess_k, unmet_w, self.room_capacity_j_k, dts, pulled_k)
            return air, np.zeros((dts.size, 0))
        out = np.zeros((dts.size, n + 1))
        x = np.concatenate(([self.room_excess_k], self.solids_k))
        if not np.any(x > AT_SETPOINT_K) and not np.any(unmet_w > 0):
            return out[:, 0], out[:, 1:]
        if pulled_k is not None and not np.all(np.isnan(pulled_k)):  # corrected tick by tick
            for k in range(dts.size):
                modes = self._room_modes(float(dts[k]))
                q = _pulled(unmet_w[k], float(x[0]), pulled_k, k, self.room_capacity_j_k, self.tau_s)
                x = out[k] = np.maximum(modes.phi @ x + modes.gamma * q, 0.0)
            return out[:, 0], out[:, 1:]
        # runs of equal ticks, each one vectorised trajectory
        edges = np.concatenate(([0], np.flatnonzero(np.diff(dts)) + 1, [dts.size]))
        for a, b in itertools.pairwise(edges):
            out[a:b] = room_trajectory(float(x[0]), x[1:], unmet_w[a:b], self._room_modes(float(dts[a])))
            x = out[b - 1]
        return out[:, 0], out[:, 1:]

    def _room_modes(self, dt_s: float) -> RoomModes:
        """The room's exact step over ``dt_s`` (cached: a run's ticks share a few lengths)."""
        if dt_s not in self._modes:
            self._modes[dt_s] = room_modes(
                self.room_capacity_j_k, self.solid_capacities_j_k, self.solid_conductances_w_k, self.tau_s, dt_s
            )
        return self._modes[dt_s]

    def _node(
        self,
        excess_k: float,
        unmet_w: FloatArray,
        capacity_j_k: float,
        dts: FloatArray,
        pulled_k: FloatArray | None = None,
    ) -> FloatArray:
        """Excess temperature of a node after each tick (exact RC steps, see the module docstring).

        ``pulled_k``: the excess each tick's pull-back was asked at (NaN: none unmet; :meth:`_nodes`).
        """
        if excess_k <= AT_SETPOINT_K and not np.any(unmet_w > 0):
            return np.zeros_like(dts)
        out = np.empty_like(dts)
        dt = excess_k
        tau = self.tau_s
        for k in range(dts.size):
            if dt <= AT_SETPOINT_K and unmet_w[k] <= 0.0:  # at its setpoint, as a block starting here finds it
                dt = out[k] = 0.0
                continue
            unmet = _pulled(unmet_w[k], dt, pulled_k, k, capacity_j_k, tau)
            dt = max(float(rc_step(dt, unmet * tau / capacity_j_k, tau, dts[k])), 0.0)
            out[k] = dt
        return out


def _pulled(
    unmet_w: float, excess_k: float, pulled_k: FloatArray | None, k: int, capacity_j_k: float, tau_s: float
) -> float:
    """Tick ``k``'s unmet heat, its pull-back at ``excess_k``, not ``pulled_k[k]`` (:meth:`PhysicalPlant._nodes`)."""
    if pulled_k is None or math.isnan(pulled_k[k]):  # no heat unmet: nothing to correct
        return float(unmet_w)
    return float(unmet_w + capacity_j_k * (excess_k - pulled_k[k]) / tau_s)


def build_plant(spec: CoolingSpec) -> IdealPlant | PhysicalPlant:
    """The engine's cooling model for the facility's compiled plant."""
    if isinstance(spec, IdealPlantSpec):
        return IdealPlant(spec)
    return PhysicalPlant(spec)
