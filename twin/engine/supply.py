"""Where power comes from: utility, generator, UPS battery, and the units of the chain up on each feed.

* **Power sources.** The LV bus is live when the utility is up or the generator runs. The UPS
  output is energised while the bus is live, or from the battery until it reaches its cut-off;
  the instant it does is solved for inside the block (:func:`battery_empty_offset_s`) and
  scheduled as an event, where the UPS goes dark and every server it feeds is shed. Loads not on
  the UPS (the cooling plant unless ``power.cooling_on_ups``, other facility load) run only on a
  live bus. The generator (at the LV switchboard, after the MV transformer) starts on a utility
  loss unless it fails to start (drawn with the run's generator) and picks up the load after its
  start delay. The battery's stored energy is advanced over each committed block by
  :func:`twin.physics.power.battery_step_j`.
* **Redundancy.** Units of a 2N stage are split between feeds A and B (A takes the odd one);
  stages that are not 2N sit on feed A. PSUs follow the PDUs' sides when the PDUs are 2N.
  A feed or PDU loss takes the units on its side out; the load shares over the units still up
  (``StageModel.loss_w(load, units_up)``), so 2N loses no load and its losses change. A stage
  carrying more than its surviving units' rating counts as overloaded (reported; breaker trips
  are not modelled).
* **The ledger.** ``metered = utility + generator``. While the battery carries the UPS,
  ``battery_net`` books minus what it delivers; while charging, plus what the charger draws.
  The transformer is de-energised (no loss) while the utility is down.

The fault schedule (:mod:`twin.engine.fault_schedule`) changes the counters here (utility and
generator failures, feeds, PDUs, UPS modules) and then calls the ``update_*`` methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from twin._types import BoolArray, FloatArray
from twin.engine.columns import Columns
from twin.engine.state import at
from twin.facility_parts.fleet import Facility
from twin.physics.power import battery_empty_offset_s, battery_step_j, battery_time_to_full_s

SIDES = ("A", "B")
#: Stored energy within this of a bound counts as at the bound. [J]
BATTERY_EPS_J = 1e-6


def _split(count: int, two_n: bool) -> dict[str, int]:
    """Units of a stage on each feed side."""
    if not two_n:
        return {"A": count, "B": 0}
    return {"A": count - count // 2, "B": count // 2}


@dataclass
class Supply:
    """Where power comes from between two events."""

    bus_live: bool = True
    on_utility: bool = True
    on_generator: bool = False
    on_battery: bool = False
    charging: bool = False
    charge_w: float = 0.0
    cooling_on_ups: bool = False


@dataclass(frozen=True)
class ChainFlows:
    """Power through the chain over a block's ticks ``(K,)`` (per column ``(K, G)`` for servers)."""

    ups_in_w: FloatArray
    ups_load_fraction: FloatArray
    overloaded: BoolArray
    it_w: FloatArray
    server_w: FloatArray


@dataclass
class ChainUnits:
    """Units up (and energised) per stage: PSUs per server, PDUs per rack, UPS modules."""

    psu: FloatArray
    pdu: FloatArray
    ups: float


@dataclass
class Battery:
    """The UPS battery bank (one, behind all modules)."""

    capacity_j: float
    floor_j: float
    stored_j: float
    eta_c: float
    eta_d: float
    charge_w: float
    min_soc_seen: float = 1.0
    discharged_j: float = 0.0
    charged_j: float = 0.0
    token: int = 0


class PowerSupply:
    """The sources and the chain's units of one engine run.

    ``log`` records an event (:meth:`twin.engine.kernel.Engine.log_event`); ``changed``
    re-derives everything after a change this class makes on its own (generator online, battery
    full or empty).
    """

    def __init__(
        self,
        fac: Facility,
        env: simpy.Environment,
        rng: np.random.Generator,
        log: Callable[..., None],
        changed: Callable[[], None],
    ) -> None:
        self.fac = fac
        self.env = env
        self.rng = rng
        self.log = log
        self._changed = changed
        st = fac.stages
        self.ups_on = _split(st["ups"].count, st["ups"].redundancy == "2N")
        pdu_2n = st["pdu"].redundancy == "2N"
        self.pdu_on = _split(st["pdu"].count, pdu_2n)
        self.psu_on = _split(st["psu"].count, pdu_2n)
        self.feed_down = dict.fromkeys(SIDES, 0)
        self.ups_up = dict(self.ups_on)
        self.pdu_up = {s: np.full(fac.n_racks, self.pdu_on[s], dtype=np.int64) for s in SIDES}
        self.pdu_blocked = {s: np.zeros(fac.n_racks, dtype=np.int64) for s in SIDES}
        self.utility_down = 0
        self.ups_needed = st["ups"].units_needed
        self.generator = fac.supply.generator
        self.gen_failed = 0
        self.gen_state = "none" if self.generator is None else "off"
        self.gen_token = 0
        self.ups_dark = False
        self.cooling_on_ups = fac.supply.cooling_on_ups
        self.battery = self._battery()
        self.supply = Supply(cooling_on_ups=self.cooling_on_ups)
        self.units = ChainUnits(
            psu=np.full(fac.n_servers, float(st["psu"].count)),
            pdu=np.full(fac.n_racks, float(st["pdu"].count)),
            ups=0.0,
        )
        self.update_units()
        self.update_supply()

    def _battery(self) -> Battery | None:
        spec = self.fac.supply.battery
        if spec is None:
            return None
        return Battery(
            capacity_j=spec.capacity_j,
            floor_j=spec.floor_j,
            stored_j=spec.initial_j,
            eta_c=spec.charge_efficiency,
            eta_d=spec.discharge_efficiency,
            charge_w=spec.charge_w,
            min_soc_seen=spec.initial_soc,
        )

    @property
    def categories(self) -> tuple[str, ...]:
        """Ledger categories this subsystem adds."""
        return ("battery_net",) if self.battery is not None else ()

    def update_generator(self) -> None:
        """Start, stop or trip the generator after a change of the utility or of its own state."""
        if self.generator is None:
            return
        old = self.gen_state
        if self.utility_down == 0:
            if old in ("starting", "running", "failed_start"):
                self.gen_state = "off"
                if old == "running":
                    self.log("generator_stopped")
            return
        if self.gen_failed > 0:
            if old in ("starting", "running"):
                self.gen_state = "off"
                self.log("generator_tripped" if old == "running" else "generator_start_aborted")
            return
        if old == "off":
            if self.rng.random() < self.generator.fail_to_start_probability:
                self.gen_state = "failed_start"
                self.log("generator_failed_to_start")
                return
            self.gen_state = "starting"
            self.gen_token += 1
            token = self.gen_token
            at(self.env, self.env.now + self.generator.start_delay_s, lambda _: self._generator_online(token))

    def _generator_online(self, token: int) -> None:
        if token != self.gen_token or self.gen_state != "starting":
            return
        self.gen_state = "running"
        self.log("generator_online", delay_s=self.generator.start_delay_s if self.generator else 0.0)
        self._changed()

    def update_supply(self) -> None:
        """Which source carries the UPS and the bus now; schedule the battery's full charge."""
        on_utility = self.utility_down == 0
        on_generator = not on_utility and self.gen_state == "running"
        bus = on_utility or on_generator
        modules = sum(self.ups_up[s] for s in SIDES if self.feed_down[s] == 0)
        bat = self.battery
        if bus:
            self.ups_dark = False
        elif bat is None or modules == 0 or bat.stored_j <= bat.floor_j + BATTERY_EPS_J:
            self.ups_dark = True
        on_battery = not bus and not self.ups_dark
        charging = bus and bat is not None and bat.stored_j < bat.capacity_j - BATTERY_EPS_J and modules > 0
        old = self.supply
        self.supply = Supply(
            bus_live=bus,
            on_utility=on_utility,
            on_generator=on_generator,
            on_battery=on_battery,
            charging=charging,
            charge_w=bat.charge_w if (charging and bat is not None) else 0.0,
            cooling_on_ups=self.cooling_on_ups,
        )
        source = _source(self.supply)
        if source != _source(old):
            self.log("power_source", source=source)
        if bat is not None and charging and not old.charging:
            bat.token += 1
            token = bat.token
            full_s = float(battery_time_to_full_s(bat.stored_j, bat.capacity_j, bat.charge_w, bat.eta_c))
            if np.isfinite(full_s):
                at(self.env, self.env.now + full_s, lambda _: self._battery_full(token))
        elif bat is not None and not charging:
            bat.token += 1

    def _battery_full(self, token: int) -> None:
        bat = self.battery
        if bat is None or token != bat.token:
            return
        bat.stored_j = bat.capacity_j
        self.log("battery_charged")
        self._changed()

    def _battery_empty(self, token: int) -> None:
        bat = self.battery
        if bat is None or token != bat.token or not self.supply.on_battery:
            return
        bat.stored_j = bat.floor_j
        self.log("battery_empty", soc=bat.floor_j / bat.capacity_j)
        self._changed()

    def update_units(self) -> None:
        """Units energised per stage: UPS modules, PDUs per rack, PSUs per server."""
        fac = self.fac
        energised = not self.ups_dark
        side_live = {s: energised and self.feed_down[s] == 0 and self.ups_up[s] > 0 for s in SIDES}
        self.units.ups = float(sum(self.ups_up[s] for s in SIDES if side_live[s]))
        pdu = np.zeros(fac.n_racks)
        psu = np.zeros(fac.n_servers)
        for s in SIDES:
            if not side_live[s]:
                continue
            rack_units = np.where(self.pdu_blocked[s] > 0, 0, self.pdu_up[s])
            pdu += rack_units
            psu += self.psu_on[s] * (rack_units > 0)[fac.rack_of_server]
        self.units.pdu = pdu
        self.units.psu = psu

    def balance(
        self, site: dict[str, FloatArray], ups_out_w: FloatArray, cooling_w: FloatArray, pdu_in_w: FloatArray,
        it_w: FloatArray, server_w: FloatArray, cols: Columns,
    ) -> tuple[FloatArray, ChainFlows]:  # fmt: skip
        """Book the sources: fill ``site`` with the UPS and transformer losses and the battery; return metered."""
        fac, sup = self.fac, self.supply
        ups = fac.stages["ups"]
        ups_load = ups_out_w + cooling_w if sup.cooling_on_ups else ups_out_w
        if sup.cooling_on_ups:
            site["ups_loss"] = ups.loss_w(ups_load, self.units.ups)
        ups_in = ups_load + site["ups_loss"]
        if not sup.bus_live:
            site["other_facility"] = np.zeros_like(ups_out_w)
        battery = np.zeros_like(ups_out_w)
        if sup.on_battery:
            battery = -ups_in
        elif sup.charging:
            battery = np.full_like(ups_out_w, sup.charge_w)
        if self.battery is not None:
            site["battery_net"] = battery
        bus = np.zeros_like(ups_out_w)
        if sup.bus_live:
            bus = ups_in + battery + site["other_facility"] + (0.0 if sup.cooling_on_ups else cooling_w)
        site["transformer_loss"] = fac.stages["transformer"].loss_w(bus) if sup.on_utility else np.zeros_like(ups_out_w)
        metered = bus + site["transformer_loss"]
        # Overload: a stage carrying more than its surviving units' rating. The UPS load is also
        # reported against the capacity that must survive one failure (N units of a 2N or N+1 stage).
        ups_frac = ups_load / (self.ups_needed * ups.rated_w)
        over = ups_load > self.units.ups * ups.rated_w * (1.0 + 1e-9)
        pdu_cap = cols.take_rack(self.units.pdu) * fac.stages["pdu"].rated_w
        over |= np.any(pdu_in_w > pdu_cap * (1.0 + 1e-9), axis=-1)
        psu_cap = cols.take(self.units.psu) * fac.stages["psu"].rated_w
        over |= np.any(it_w > psu_cap * (1.0 + 1e-9), axis=-1)
        if sup.on_generator and self.generator is not None:
            over |= bus > self.generator.rated_w * (1.0 + 1e-9)
        return metered, ChainFlows(ups_in, ups_frac, over, it_w, server_w)

    def crossing_s(self, chain: ChainFlows, t0_s: float, dts: FloatArray) -> float | None:
        """Absolute time inside a block where the battery reaches its cut-off (scheduled), else None.

        ``chain`` is the block's power through the chain, ``t0_s`` its start and ``dts`` its ticks.
        """
        bat = self.battery
        if bat is None or not self.supply.on_battery:
            return None
        offset = battery_empty_offset_s(bat.stored_j - bat.floor_j, chain.ups_in_w, dts, bat.eta_d)
        if not np.isfinite(offset) or offset >= float(dts.sum()) - 1e-9:
            return None
        t = t0_s + offset
        token = bat.token
        at(self.env, t, lambda _: self._battery_empty(token))
        return t

    @property
    def steady(self) -> bool:
        """No continuous change of this subsystem's state between events (battery idle)."""
        return not (self.supply.on_battery or self.supply.charging)

    def commit(self, chain: ChainFlows, dts: FloatArray) -> None:
        """Advance the battery over a committed block (its chain flows and ticks).

        The battery changes only in blocks that end at the next report boundary (``steady`` is
        False while it charges or discharges), so its state at a row's end is the committed one.
        """
        span = float(dts.sum())
        bat = self.battery
        sup = self.supply
        if bat is not None and span > 0.0 and (sup.on_battery or sup.charging):
            # Terminal power over the block, positive delivered: the usable window above the floor
            # is what physics.power.battery_step_j advances (its limits are the floor and full).
            power_w = float(chain.ups_in_w @ dts) / span if sup.on_battery else -sup.charge_w
            usable_j, exchanged_j = battery_step_j(
                bat.stored_j - bat.floor_j, power_w, span, bat.capacity_j - bat.floor_j, bat.eta_c, bat.eta_d
            )
            bat.stored_j = bat.floor_j + float(usable_j)
            if sup.on_battery:
                bat.discharged_j += float(exchanged_j)
            else:
                bat.charged_j -= float(exchanged_j)
        if bat is not None:
            bat.min_soc_seen = min(bat.min_soc_seen, bat.stored_j / bat.capacity_j)

    @property
    def soc(self) -> float:
        """The battery's state of charge now (NaN without a battery). [-]"""
        bat = self.battery
        return bat.stored_j / bat.capacity_j if bat is not None else float("nan")


def _source(sup: Supply) -> str:
    """Name of the source carrying the UPS."""
    if sup.on_utility:
        return "utility"
    if sup.on_generator:
        return "generator"
    return "battery" if sup.on_battery else "none"
