"""Faults, redundancy and backup power as the engine sees them.

Everything here is discrete state changed by simpy events, plus one continuous quantity (the
battery's stored energy) advanced with the blocks the kernel commits:

* **Power sources.** The LV bus is live when the utility is up or the generator runs. The UPS
  output is energised while the bus is live, or from the battery until it reaches its cut-off;
  the instant it does is solved for inside the block (:func:`battery_empty_offset_s`) and
  scheduled as an event, where the UPS goes dark and every server it feeds is shed. Loads not on
  the UPS (the cooling plant unless ``power.cooling_on_ups``, other facility load) run only on a
  live bus. The generator (at the LV switchboard, after the MV transformer) starts on a utility
  loss unless it fails to start (drawn with the run's generator) and picks up the load after its
  start delay; chillers restart ``cooling.chiller_restart_s`` after their power returns.
* **Redundancy.** Units of a 2N stage are split between feeds A and B (A takes the odd one);
  stages that are not 2N sit on feed A. PSUs follow the PDUs' sides when the PDUs are 2N.
  A feed or PDU loss takes the units on its side out; the load shares over the units still up
  (``StageModel.loss_w(load, units_up)``), so 2N loses no load and its losses change. A server
  whose PSUs are all unpowered goes down. A stage carrying more than its surviving units' rating
  counts as overloaded (reported; breaker trips are not modelled).
* **The ledger.** ``metered = utility + generator``. While the battery carries the UPS,
  ``battery_net`` books minus what it delivers; while charging, plus what the charger draws.
  The transformer is de-energised (no loss) while the utility is down.
* **Servers.** A server is up when powered, not failed, not thermally shut down and not booting
  (``fleet.server.boot_s`` after power or repair returns). A training pool is one synchronous job:
  when any of its servers goes down it loses the tokens (and the IT energy) since its last
  checkpoint and pauses ``restart_s`` before continuing elastically on the servers up. Inference
  arrivals are spread over the pool's servers that are up (a load balancer): they back up in the
  survivors' queues; requests queued at a server that goes down, and arrivals while no server of
  the pool is up, are dropped. Thermally shut-down servers are restarted (booted) after each
  repair; if the plant has not recovered they shut down again by the thermal model.
* **Random faults.** For each component kind with an MTBF, one process draws candidate failures
  at rate ``n_units / MTBF`` and keeps those that hit a unit that is up (Poisson thinning, exact for
  independent exponential units); each failure is repaired after an exponential time of mean MTTR.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from twin._types import BoolArray, FloatArray
from twin.engine.demand import Demand
from twin.engine.segments import IntervalAccumulator, Segments
from twin.engine.serving import ServeResult
from twin.facility_parts.fleet import Facility
from twin.facility_parts.plant import PlantSpec
from twin.facility_parts.power import ScheduledFault
from twin.physics.power import (
    battery_empty_offset_s,
    battery_step_j,
    battery_time_to_full_s,
)

if TYPE_CHECKING:
    from twin.engine.kernel import Block, Engine

SIDES = ("A", "B")
#: Stored energy within this of a bound counts as at the bound. [J]
BATTERY_EPS_J = 1e-6
#: Per-interval tallies of the time series.
INTERVAL_TALLIES = ("generator_j", "tokens_lost", "tokens_dropped")


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


@dataclass
class ChainUnits:
    """Units up (and energised) per stage: PSUs per server, PDUs per rack, UPS modules."""

    psu: FloatArray
    pdu: FloatArray
    ups: float


@dataclass
class Job:
    """A training pool's checkpoint state."""

    index: int
    servers: BoolArray
    interval_s: float
    stall_s: float
    restart_s: float
    tokens_since: float = 0.0
    energy_since_j: float = 0.0
    paused_until: float = 0.0
    restarting: bool = False
    ckpt_token: int = 0
    rollbacks: int = 0


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


@dataclass
class Tally:
    """Run totals of the fault KPIs."""

    tokens_lost: float = 0.0
    lost_energy_j: float = 0.0
    tokens_dropped: float = 0.0
    prefill_tokens_dropped: float = 0.0
    load_shed_j: float = 0.0
    servers_shed_max: float = 0.0
    generator_j: float = 0.0
    time_overloaded_s: float = 0.0
    ups_load_fraction_max: float = 0.0
    first_fault_s: float = float("nan")
    last_fault_s: float = float("nan")
    first_shutdown_s: float = float("nan")
    time_to_thermal_shutdown_s: float = float("nan")
    interval: IntervalAccumulator = field(
        default_factory=lambda: IntervalAccumulator(dict.fromkeys(INTERVAL_TALLIES, "sum"))
    )


class FaultSystem:
    """Fault events, backup power and redundancy for one engine run."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.env: simpy.Environment = eng.env
        fac = eng.fac
        self.fac = fac
        self.rng = eng.rng
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
        self.plant_powered = True
        self.chillers_down = 0
        self.cdus_down = 0
        self.crahs_down = 0
        self.chiller_ready_at = 0.0
        n = fac.n_servers
        self.failed = np.zeros(n, dtype=np.int64)
        self.thermal = np.zeros(n, dtype=bool)
        self.booting = np.zeros(n, dtype=bool)
        self.boot_done_at = np.zeros(n)
        self.powered = np.ones(n, dtype=bool)
        self.shed_w = np.zeros(n)
        self.last_server_w = np.zeros(n)
        self.paused = np.zeros(n, dtype=bool)
        self.jobs = [
            Job(p.index, fac.pool_of_server == p.index, p.checkpoints.interval_s, p.checkpoints.stall_s,
                p.checkpoints.restart_s)
            for p in fac.pools
            if p.checkpoints is not None
        ]  # fmt: skip
        self.inference_pools = [(p.index, fac.pool_of_server == p.index) for p in fac.pools if p.kind == "inference"]
        self.tally = Tally()
        self.supply = Supply(cooling_on_ups=self.cooling_on_ups)
        self.units = ChainUnits(
            psu=np.full(n, float(st["psu"].count)), pdu=np.full(fac.n_racks, float(st["pdu"].count)), ups=0.0
        )
        self._update_units()
        self._update_supply()
        for job in self.jobs:
            self._schedule_checkpoint(job, job.interval_s)
        for ev in fac.faults.events:
            self._schedule_fault(ev)
        for rel in fac.faults.random:
            self.env.process(self._random_faults(rel.kind, rel.mtbf_s, rel.mttr_s))

    # ------------------------------------------------------------------ set-up
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

    def _at(self, time_s: float, callback: Callable[[simpy.Event], None]) -> None:
        self.env.timeout(max(time_s - self.env.now, 0.0)).callbacks.append(callback)

    # --------------------------------------------------------------- faults
    def _schedule_fault(self, ev: ScheduledFault) -> None:
        def fire(_: simpy.Event) -> None:
            self._scheduled(ev)

        self._at(ev.time_s, fire)

    def _scheduled(self, ev: ScheduledFault) -> None:
        undo = self._apply(ev.kind, ev)
        if ev.duration_s is not None:
            self._at(self.env.now + ev.duration_s, lambda _: self._repair(ev.kind, undo))

    def _random_faults(self, kind: str, mtbf_s: float, mttr_s: float) -> Generator[simpy.Event, Any, None]:
        n = self._population(kind)
        down = np.zeros(n, dtype=bool)
        while True:
            yield self.env.timeout(self.rng.exponential(mtbf_s / n))
            unit = int(self.rng.integers(n))
            if down[unit]:
                continue  # thinning: a unit already down cannot fail again
            down[unit] = True
            undo = self._apply(kind, None, unit)
            repair_s = float(self.rng.exponential(mttr_s))

            def repaired(_: simpy.Event, unit: int = unit, undo: dict[str, Any] = undo) -> None:
                down[unit] = False
                self._repair(kind, undo)

            self._at(self.env.now + repair_s, repaired)

    def _population(self, kind: str) -> int:
        fac = self.fac
        plant = self.eng.plant
        return {
            "utility": 1,
            "ups": fac.stages["ups"].count,
            "pdu": fac.stages["pdu"].count * fac.n_racks,
            "chiller": max(int(plant.n_chillers), 1),
            "cdu": _units(fac, "n_cdus"),
            "crah": _units(fac, "n_crahs"),
            "server": fac.n_servers,
            "gpu": fac.n_gpus,
        }[kind]

    def _apply(self, kind: str, ev: ScheduledFault | None, unit: int | None = None) -> dict[str, Any]:
        """Take units out; return what :meth:`_repair` needs to put them back."""
        now = self.env.now
        t = self.tally
        if np.isnan(t.first_fault_s):
            t.first_fault_s = now
        t.last_fault_s = now
        count = ev.count if ev is not None else 1
        undo: dict[str, Any] = {"kind": kind}
        detail: dict[str, Any] = {}
        if kind in ("utility_loss", "utility"):
            self.utility_down += 1
        elif kind == "generator_fail":
            self.gen_failed += 1
        elif kind == "feed_loss":
            side = str(ev.side) if ev is not None else "A"
            self.feed_down[side] += 1
            undo["side"] = detail["side"] = side
        elif kind in ("pdu_loss", "pdu"):
            if ev is not None:
                side = str(ev.side)
                racks = np.arange(self.fac.n_racks) if ev.rack is None else np.array([ev.rack])
                self.pdu_blocked[side][racks] += 1
                undo.update(side=side, racks=racks, blocked=True)
                detail.update(side=side, racks=int(racks.size))
            else:
                per_rack = self.fac.stages["pdu"].count
                rack, slot = divmod(int(unit or 0), per_rack)
                side = "A" if slot < self.pdu_on["A"] else "B"
                self.pdu_up[side][rack] -= 1
                undo.update(side=side, racks=np.array([rack]), blocked=False)
                detail.update(side=side, rack=rack)
        elif kind in ("ups_fail", "ups"):
            sides = []
            for _ in range(count):
                side = max(SIDES, key=lambda s: self.ups_up[s])
                if self.ups_up[side] <= 0:
                    break
                self.ups_up[side] -= 1
                sides.append(side)
            undo["sides"] = sides
            detail["modules"] = len(sides)
        elif kind in ("chiller_trip", "chiller"):
            self.chillers_down += count
            undo["count"] = detail["count"] = count
        elif kind in ("cdu_pump_fail", "cdu"):
            self.cdus_down += count
            undo["count"] = detail["count"] = count
        elif kind in ("crah_fail", "crah"):
            self.crahs_down += count
            undo["count"] = detail["count"] = count
        elif kind in ("server_fail", "server", "gpu_fail", "gpu"):
            servers = self._pick_servers(kind, ev, unit)
            np.add.at(self.failed, servers, 1)
            undo["servers"] = servers
            detail["servers"] = int(np.unique(servers).size)
        self.eng.log_event(_event_name(kind), **detail)
        self._changed()
        return undo

    def _repair(self, kind: str, undo: dict[str, Any]) -> None:
        if kind in ("utility_loss", "utility"):
            self.utility_down -= 1
        elif kind == "generator_fail":
            self.gen_failed -= 1
        elif kind == "feed_loss":
            self.feed_down[undo["side"]] -= 1
        elif kind in ("pdu_loss", "pdu"):
            if undo["blocked"]:
                self.pdu_blocked[undo["side"]][undo["racks"]] -= 1
            else:
                self.pdu_up[undo["side"]][undo["racks"]] += 1
        elif kind in ("ups_fail", "ups"):
            for side in undo["sides"]:
                self.ups_up[side] += 1
        elif kind in ("chiller_trip", "chiller"):
            self.chillers_down -= undo["count"]
        elif kind in ("cdu_pump_fail", "cdu"):
            self.cdus_down -= undo["count"]
        elif kind in ("crah_fail", "crah"):
            self.crahs_down -= undo["count"]
        elif "servers" in undo:
            np.subtract.at(self.failed, undo["servers"], 1)
            self._boot(np.isin(np.arange(self.fac.n_servers), undo["servers"]) & (self.failed == 0))
        self.eng.log_event(_event_name(kind) + "_repaired")
        self._restart_hot_servers()
        self._changed()

    def _restart_hot_servers(self) -> None:
        """Operators restart servers that shut down hot once a fault is cleared or cooling returns."""
        self._boot(self.thermal.copy())
        self.thermal[:] = False

    def _pick_servers(self, kind: str, ev: ScheduledFault | None, unit: int | None) -> np.ndarray:
        g = self.fac.gpus_per_server
        if ev is None:
            return np.array([int(unit or 0) // g if kind == "gpu" else int(unit or 0)])
        pool = np.ones(self.fac.n_servers, dtype=bool)
        if ev.pool is not None:
            pool = self.fac.pool_of_server == ev.pool
        candidates = np.flatnonzero(pool & self.eng.state.server_up)
        if candidates.size == 0:
            return np.array([], dtype=np.int64)
        if kind == "gpu_fail":
            gpus = self.rng.choice(candidates.size * g, size=min(ev.count, candidates.size * g), replace=False)
            return np.asarray(candidates[np.sort(gpus) // g])
        return np.sort(self.rng.choice(candidates, size=min(ev.count, candidates.size), replace=False))

    # --------------------------------------------------------------- power state
    def _changed(self) -> None:
        """Re-derive sources, units, cooling and servers after any discrete change."""
        self._update_generator()
        self._update_supply()
        self._update_units()
        self._update_cooling()
        self._refresh_servers()

    def _update_generator(self) -> None:
        if self.generator is None:
            return
        old = self.gen_state
        if self.utility_down == 0:
            if old in ("starting", "running", "failed_start"):
                self.gen_state = "off"
                if old == "running":
                    self.eng.log_event("generator_stopped")
            return
        if self.gen_failed > 0:
            if old in ("starting", "running"):
                self.gen_state = "off"
                self.eng.log_event("generator_tripped" if old == "running" else "generator_start_aborted")
            return
        if old == "off":
            if self.rng.random() < self.generator.fail_to_start_probability:
                self.gen_state = "failed_start"
                self.eng.log_event("generator_failed_to_start")
                return
            self.gen_state = "starting"
            self.gen_token += 1
            token = self.gen_token
            self._at(self.env.now + self.generator.start_delay_s, lambda _: self._generator_online(token))

    def _generator_online(self, token: int) -> None:
        if token != self.gen_token or self.gen_state != "starting":
            return
        self.gen_state = "running"
        self.eng.log_event("generator_online", delay_s=self.generator.start_delay_s if self.generator else 0.0)
        self._changed()

    def _update_supply(self) -> None:
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
            self.eng.log_event("power_source", source=source)
        if bat is not None and charging and not old.charging:
            bat.token += 1
            token = bat.token
            full_s = float(battery_time_to_full_s(bat.stored_j, bat.capacity_j, bat.charge_w, bat.eta_c))
            if np.isfinite(full_s):
                self._at(self.env.now + full_s, lambda _: self._battery_full(token))
        elif bat is not None and not charging:
            bat.token += 1

    def _battery_full(self, token: int) -> None:
        bat = self.battery
        if bat is None or token != bat.token:
            return
        bat.stored_j = bat.capacity_j
        self.eng.log_event("battery_charged")
        self._changed()

    def _battery_empty(self, token: int) -> None:
        bat = self.battery
        if bat is None or token != bat.token or not self.supply.on_battery:
            return
        bat.stored_j = bat.floor_j
        self.eng.log_event("battery_empty", soc=bat.floor_j / bat.capacity_j)
        self._changed()

    def _update_units(self) -> None:
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

    def _update_cooling(self) -> None:
        plant = self.eng.plant
        sup = self.supply
        powered = sup.bus_live or (self.cooling_on_ups and sup.on_battery)
        now = self.env.now
        if powered and not self.plant_powered:
            self.chiller_ready_at = now + _restart_s(self.fac)
            self._at(self.chiller_ready_at, lambda _: self._cooling_back())
        if powered != self.plant_powered:
            self.eng.log_event("cooling_power", on=powered)
        self.plant_powered = powered
        plant.powered = powered
        n_chillers = int(plant.n_chillers)
        ready = now >= self.chiller_ready_at - 1e-9
        plant.chillers_available = float(max(n_chillers - self.chillers_down, 0)) if ready else 0.0
        if self.chillers_down == 0 and ready:
            plant.chillers_available = None
        n_cdus = _units(self.fac, "n_cdus")
        n_crahs = _units(self.fac, "n_crahs")
        plant.cdu_fraction = max(n_cdus - self.cdus_down, 0) / n_cdus
        plant.crah_fraction = max(n_crahs - self.crahs_down, 0) / n_crahs

    def _cooling_back(self) -> None:
        """The chillers run again after a power cut: restart what shut down hot."""
        self._update_cooling()
        if self.plant_powered:
            self._restart_hot_servers()
            self._refresh_servers()

    # ------------------------------------------------------------------- servers
    def _boot(self, servers: BoolArray) -> None:
        servers = servers & (self.units.psu > 0)  # unpowered servers boot when their power returns
        if not servers.any():
            return
        boot_s = self.fac.server.boot_s
        self.booting |= servers
        self.boot_done_at[servers] = self.env.now + boot_s
        self._at(self.env.now + boot_s, lambda _: self._boot_done())

    def _boot_done(self) -> None:
        done = self.booting & (self.boot_done_at <= self.env.now + 1e-9)
        if done.any():
            self.booting &= ~done
            self.eng.log_event("servers_booted", servers=int(done.sum()))
            self._refresh_servers()

    def _refresh_servers(self) -> None:
        st = self.eng.state
        powered = self.units.psu > 0
        lost = self.powered & ~powered
        back = ~self.powered & powered
        if lost.any():
            self.booting &= ~lost
            self.shed_w[lost] = self.last_server_w[lost]
            self.eng.log_event("load_shed", servers=int(lost.sum()), power_w=float(self.last_server_w[lost].sum()))
        if back.any():
            self.shed_w[back] = 0.0
            self._boot(back & (self.failed == 0))
        self.powered = powered
        self.tally.servers_shed_max = max(self.tally.servers_shed_max, float((~powered).sum()))
        new_up = powered & (self.failed == 0) & ~self.thermal & ~self.booting
        went_down = st.server_up & ~new_up
        st.server_up = new_up
        if went_down.any():
            self._servers_down(went_down)
        for job in self.jobs:  # a job that lost every server restarts once some are back
            if job.paused_until == np.inf and (new_up & job.servers).any():
                self._restart(job)

    def on_thermal_shutdown(self, servers: BoolArray) -> None:
        """Hook of the kernel's shutdown event: remember why, and count what was lost."""
        self.thermal |= servers
        t = self.tally
        if np.isnan(t.first_shutdown_s):
            t.first_shutdown_s = self.env.now
            if not np.isnan(t.last_fault_s):
                t.time_to_thermal_shutdown_s = self.env.now - t.last_fault_s
        self._servers_down(servers)

    def _servers_down(self, servers: BoolArray) -> None:
        st = self.eng.state
        for job in self.jobs:
            if not (servers & job.servers).any() or job.restarting:
                continue  # not this job, or it is already restarting from its checkpoint
            t = self.tally
            t.tokens_lost += job.tokens_since
            t.lost_energy_j += job.energy_since_j
            self._count("tokens_lost", job.tokens_since)
            self.eng.log_event(
                "training_rollback",
                workload=self.fac.pools[job.index].name,
                tokens_lost=job.tokens_since,
                energy_lost_j=job.energy_since_j,
            )
            job.tokens_since = 0.0
            job.energy_since_j = 0.0
            job.rollbacks += 1
            job.restarting = True
            if (st.server_up & job.servers).any():
                self._restart(job)
            else:  # nothing left to restart on: the restart begins when its servers are back
                job.ckpt_token += 1  # cancel the pending checkpoint
                job.paused_until = np.inf
                self.paused[job.servers] = True
        for _, pool in self.inference_pools:
            hit = servers & pool
            if hit.any():
                decode = float(st.backlog_decode_tokens[hit].sum())
                prefill = float(st.backlog_prefill_tokens[hit].sum())
                self.tally.tokens_dropped += decode
                self.tally.prefill_tokens_dropped += prefill
                self._count("tokens_dropped", decode)
                st.backlog_decode_tokens[hit] = 0.0
                st.backlog_prefill_tokens[hit] = 0.0

    # ---------------------------------------------------------------- training jobs
    def _schedule_checkpoint(self, job: Job, at_s: float) -> None:
        job.ckpt_token += 1
        token = job.ckpt_token
        self._at(at_s, lambda _: self._checkpoint(job, token))

    def _checkpoint(self, job: Job, token: int) -> None:
        if token != job.ckpt_token:
            return
        job.tokens_since = 0.0
        job.energy_since_j = 0.0
        now = self.env.now
        if job.stall_s > 0:
            self._pause(job, now + job.stall_s)
        self._schedule_checkpoint(job, now + job.stall_s + job.interval_s)

    def _restart(self, job: Job) -> None:
        """Relaunch from the last checkpoint: ``restart_s`` idle, then the checkpoint clock restarts."""
        now = self.env.now
        job.paused_until = now
        self._pause(job, now + job.restart_s)
        self._schedule_checkpoint(job, now + job.restart_s + job.interval_s)

    def _pause(self, job: Job, until_s: float) -> None:
        job.paused_until = max(job.paused_until, until_s)
        self.paused[job.servers] = True
        self._at(job.paused_until, lambda _: self._resume(job))

    def _resume(self, job: Job) -> None:
        if job.paused_until <= self.env.now + 1e-9:
            self.paused[job.servers] = False
            job.restarting = False

    # ------------------------------------------------------------- kernel hooks
    def route_demand(self, dem: Demand) -> tuple[Demand, dict[str, FloatArray]]:
        """Spread each inference pool's arrivals over its servers that are up.

        ``dem`` holds the engine's current columns (``eng.cols``); sums over servers are weighted
        by the servers in each column.
        """
        cols = self.eng.cols
        up = cols.take(self.eng.state.server_up)
        dropped = {"decode": np.zeros(dem.requests.shape[0]), "prefill": np.zeros(dem.requests.shape[0])}
        if up.all() or not self.inference_pools:
            return dem, dropped
        arrays = {"requests": dem.requests, "prefill_tokens": dem.prefill_tokens, "decode_tokens": dem.decode_tokens}
        out: dict[str, Any] = {k: v.copy() for k, v in arrays.items()}
        for _, pool_s in self.inference_pools:
            pool = cols.take(pool_s)
            live = pool & up
            if cols.count(live) == cols.count(pool):
                continue
            n_live = cols.count(live)
            for key, arr in arrays.items():
                total = cols.total(arr, pool)
                if live.any():
                    live_sum = cols.total(arr, live)[:, None]
                    share = np.divide(
                        arr[:, live],
                        live_sum,
                        out=np.full((arr.shape[0], int(live.sum())), 1.0 / max(n_live, 1.0)),
                        where=live_sum > 0,
                    )
                    out[key][:, live] = share * total[:, None]
                elif key != "requests":
                    dropped["decode" if key == "decode_tokens" else "prefill"] += total
                out[key][:, pool & ~up] = 0.0
        return replace(dem, **out), dropped

    def pause_training(self, res: ServeResult) -> ServeResult:
        """Servers of a training job that is restarting or writing a checkpoint sit idle."""
        if not self.paused.any():
            return res
        p = self.eng.cols.take(self.paused)
        return replace(
            res,
            busy=np.where(p, 0.0, res.busy),
            mem_activity=np.where(p, 0.0, res.mem_activity),
            sm_activity=np.where(p, 0.0, res.sm_activity),
            training_tokens=np.where(p, 0.0, res.training_tokens),
        )

    def balance(
        self, site: dict[str, FloatArray], ups_out_w: FloatArray, cooling_w: FloatArray, pdu_in_w: FloatArray,
        it_w: FloatArray,
    ) -> tuple[FloatArray, dict[str, Any]]:  # fmt: skip
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
        cols = self.eng.cols
        pdu_cap = cols.take_rack(self.units.pdu) * fac.stages["pdu"].rated_w
        over |= np.any(pdu_in_w > pdu_cap * (1.0 + 1e-9), axis=-1)
        psu_cap = cols.take(self.units.psu) * fac.stages["psu"].rated_w
        over |= np.any(it_w > psu_cap * (1.0 + 1e-9), axis=-1)
        if sup.on_generator and self.generator is not None:
            over |= bus > self.generator.rated_w * (1.0 + 1e-9)
        extra = {"ups_in_w": ups_in, "ups_load_fraction": ups_frac, "overloaded": over, "bus_w": bus}
        return metered, extra

    def crossing_s(self, b: Block) -> float | None:
        """Absolute time inside the block where the battery reaches its cut-off (scheduled), else None."""
        bat = self.battery
        if bat is None or not self.supply.on_battery:
            return None
        offset = battery_empty_offset_s(bat.stored_j - bat.floor_j, b.extra["ups_in_w"], b.dts, bat.eta_d)
        if not np.isfinite(offset) or offset >= float(b.dts.sum()) - 1e-9:
            return None
        t = float(b.t0[0]) + offset
        token = bat.token
        self._at(t, lambda _: self._battery_empty(token))
        return t

    @property
    def steady(self) -> bool:
        """No continuous change of this subsystem's state between events (battery idle)."""
        return not (self.supply.on_battery or self.supply.charging)

    def commit(self, b: Block, seg: Segments) -> None:
        """Advance the battery, the checkpoint tallies and the fault KPIs over a committed block.

        The battery changes only in blocks that end at the next report boundary (``steady`` is
        False while it charges or discharges), so its state at a row's end is the committed one.
        """
        dts = b.dts
        span = float(dts.sum())
        bat = self.battery
        sup = self.supply
        cols = b.cols
        if bat is not None and span > 0.0 and (sup.on_battery or sup.charging):
            # Terminal power over the block, positive delivered: the usable window above the floor
            # is what physics.power.battery_step_j advances (its limits are the floor and full).
            power_w = float(b.extra["ups_in_w"] @ dts) / span if sup.on_battery else -sup.charge_w
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
        it_w = b.extra["it_w"]
        for job in self.jobs:
            s = cols.take(job.servers)
            job.tokens_since += float(cols.total(b.serve.training_tokens * b.gpus, s).sum())
            job.energy_since_j += float(cols.total(it_w, s) @ dts)
        self.last_server_w = np.array(cols.expand(b.extra["server_w"][-1]), dtype=np.float64)
        t = self.tally
        drop = b.extra["dropped"]
        t.tokens_dropped += float(drop["decode"].sum())
        t.prefill_tokens_dropped += float(drop["prefill"].sum())
        interval = {"tokens_dropped": seg.sum(drop["decode"]), "generator_j": np.zeros(seg.n)}
        t.load_shed_j += float(self.shed_w.sum()) * span
        if sup.on_generator:
            t.generator_j += float(b.metered_w @ dts)
            interval["generator_j"] = seg.sum(b.metered_w * dts)
        self.tally.interval.add(seg, interval)
        t.time_overloaded_s += float(b.extra["overloaded"] @ dts)
        t.ups_load_fraction_max = max(t.ups_load_fraction_max, float(np.max(b.extra["ups_load_fraction"])))

    # --------------------------------------------------------------- reporting
    def _count(self, key: str, value: float) -> None:
        self.tally.interval.add_scalar(key, value)

    def columns(self) -> list[str]:
        """Time-series columns this subsystem fills."""
        return ["battery_soc", "generator_power_w", "tokens_lost", "tokens_dropped", "servers_fed"]

    def close_open(self) -> None:
        """Close the open interval (the run's end)."""
        self.tally.interval.close_open()

    def rows(self, duration_s: FloatArray) -> dict[str, FloatArray | float]:
        """Values of the intervals closed since the last call (``duration_s`` of each)."""
        i = self.tally.interval.take()
        bat = self.battery
        return {
            "battery_soc": bat.stored_j / bat.capacity_j if bat is not None else float("nan"),
            "generator_power_w": np.divide(
                i["generator_j"], duration_s, out=np.zeros_like(duration_s), where=duration_s > 0
            ),
            "tokens_lost": i["tokens_lost"],
            "tokens_dropped": i["tokens_dropped"],
            "servers_fed": float(self.powered.sum()),
        }

    def kpis(self) -> dict[str, float]:
        """Run totals of what faults cost."""
        t = self.tally
        bat = self.battery
        out = {
            "tokens_lost": t.tokens_lost + t.tokens_dropped,
            "tokens_lost_training": t.tokens_lost,
            "tokens_dropped": t.tokens_dropped,
            "prefill_tokens_dropped": t.prefill_tokens_dropped,
            "lost_energy_j": t.lost_energy_j,
            "training_rollbacks": float(sum(j.rollbacks for j in self.jobs)),
            "load_shed_j": t.load_shed_j,
            "servers_shed_max": t.servers_shed_max,
            "battery_discharged_j": bat.discharged_j if bat is not None else 0.0,
            "battery_charged_j": bat.charged_j if bat is not None else 0.0,
            "generator_output_j": t.generator_j,
            "time_overloaded_s": t.time_overloaded_s,
            "ups_load_fraction_max": t.ups_load_fraction_max,
        }
        # Present only when they happened (a NaN would compare unequal in a deterministic rerun).
        if bat is not None:
            out["battery_min_soc"] = bat.min_soc_seen
            out["battery_end_soc"] = bat.stored_j / bat.capacity_j
            out["battery_capacity_j"] = bat.capacity_j
        if not np.isnan(t.first_shutdown_s):
            out["first_thermal_shutdown_s"] = t.first_shutdown_s
        if not np.isnan(t.time_to_thermal_shutdown_s):
            out["time_to_thermal_shutdown_s"] = t.time_to_thermal_shutdown_s
        return out


def _units(fac: Facility, name: str) -> int:
    """CDUs or CRAH units of the plant (``name``: ``n_cdus`` or ``n_crahs``); an ideal plant counts one."""
    return int(getattr(fac.cooling, name)) if isinstance(fac.cooling, PlantSpec) else 1


def _restart_s(fac: Facility) -> float:
    """Power back to chillers running (an ideal plant has none to restart). [s]"""
    return fac.cooling.chiller_restart_s if isinstance(fac.cooling, PlantSpec) else 0.0


def _event_name(kind: str) -> str:
    """Event-log name of a fault kind (random draws use the reliability section's names)."""
    return {
        "utility": "utility_loss",
        "ups": "ups_fail",
        "pdu": "pdu_loss",
        "chiller": "chiller_trip",
        "cdu": "cdu_pump_fail",
        "crah": "crah_fail",
        "server": "server_fail",
        "gpu": "gpu_fail",
    }.get(kind, kind)


def _source(sup: Supply) -> str:
    """Name of the source carrying the UPS."""
    if sup.on_utility:
        return "utility"
    if sup.on_generator:
        return "generator"
    return "battery" if sup.on_battery else "none"
