"""Faults and their repair, cooling faults, server boots, and what faults cost, for one engine run.

Everything here is discrete state changed by simpy events; the sources and the chain's units are
in :mod:`twin.engine.supply`, training checkpoints in :mod:`twin.engine.jobs`, and arrivals are
spread over the servers up by :func:`twin.engine.demand.route_demand`.

* **Servers.** A server is up when powered (its PSUs energised), not failed, not thermally shut
  down and not booting (``fleet.server.boot_s`` after power or repair returns). Inference
  arrivals back up in the survivors' queues; requests queued at a server that goes down are
  dropped. Thermally shut-down servers are restarted (booted) after each repair; if the plant
  has not recovered they shut down again by the thermal model.
* **Cooling faults** act on the plant (:mod:`twin.engine.cooling`): chillers tripped or waiting
  ``cooling.chiller_restart_s`` after their power returns, CDUs and CRAH units down, and the
  plant unpowered while neither the bus nor (with ``power.cooling_on_ups``) the battery feeds it.
* **Random faults.** For each component kind with an MTBF, one process draws candidate failures
  at rate ``n_units / MTBF`` and keeps those that hit a unit that is up (Poisson thinning, exact for
  independent exponential units); each failure is repaired after an exponential time of mean MTTR.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from twin._types import BoolArray, FloatArray, IntArray
from twin.engine.block import Block, EngineView
from twin.engine.cooling import SERVER_AIR_SHUTDOWN_C
from twin.engine.demand import Demand, DroppedTokens, route_demand
from twin.engine.fault_tally import COLUMNS, Tally
from twin.engine.jobs import Job, TrainingJobs
from twin.engine.segments import Segments
from twin.engine.server_constants import ServeResult
from twin.engine.state import at
from twin.engine.supply import SIDES, PowerSupply
from twin.facility_parts.power import ScheduledFault


class FaultSystem:
    """Fault events, repairs and their consequences for one engine run (the kernel's hooks)."""

    def __init__(self, eng: EngineView) -> None:
        self.eng = eng
        self.env: simpy.Environment = eng.env
        fac = eng.fac
        self.fac = fac
        self.rng = eng.rng
        self.power = PowerSupply(fac, self.env, self.rng, eng.log_event, self._changed)
        self.plant_powered = True
        self.chillers_down = 0
        self.cdus_down = 0
        self.crahs_down = 0
        self.chiller_ready_at = 0.0
        n = fac.n_servers
        self.failed = np.zeros(n, dtype=np.int64)
        self.thermal = np.zeros(n, dtype=bool)
        self.hot_restart_pending = False  # servers room air tripped, waiting for it to cool
        self.booting = np.zeros(n, dtype=bool)
        self.boot_done_at = np.zeros(n)
        self.powered = np.ones(n, dtype=bool)
        self.shed_w = np.zeros(n)
        self.last_server_w = np.zeros(n)
        self.jobs = TrainingJobs(fac, self.env, self._rolled_back)
        self.inference_pools = fac.serving_groups()  # a disaggregated pool's roles apart
        self.tally = Tally()
        self.jobs.start()
        for ev in fac.faults.events:
            self._schedule_fault(ev)
        for rel in fac.faults.random:
            self.env.process(self._random_faults(rel.kind, rel.mtbf_s, rel.mttr_s))

    def _rolled_back(self, job: Job, tokens: float, energy_j: float) -> None:
        """A training job lost its work since the last checkpoint: count and log it."""
        t = self.tally
        t.tokens_lost += tokens
        t.lost_energy_j += energy_j
        self._count("tokens_lost", tokens)
        self.eng.log_event(
            "training_rollback", workload=self.fac.pools[job.index].name, tokens_lost=tokens, energy_lost_j=energy_j
        )

    # --------------------------------------------------------------- faults and repairs
    def _schedule_fault(self, ev: ScheduledFault) -> None:
        def fire(_: simpy.Event) -> None:
            self._scheduled(ev)

        at(self.env, ev.time_s, fire)

    def _scheduled(self, ev: ScheduledFault) -> None:
        undo = self._apply(ev.kind, ev)
        if ev.duration_s is not None:
            at(self.env, self.env.now + ev.duration_s, lambda _: self._repair(ev.kind, undo))

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

            at(self.env, self.env.now + repair_s, repaired)

    def _population(self, kind: str) -> int:
        fac = self.fac
        plant = self.eng.plant
        return {
            "utility": 1,
            "ups": fac.stages["ups"].count,
            "pdu": fac.stages["pdu"].count * fac.n_racks,
            "chiller": max(int(plant.n_chillers), 1),
            "cdu": fac.cooling.n_cdus,
            "crah": fac.cooling.n_crahs,
            "server": fac.n_servers,
            "gpu": fac.n_gpus,
        }[kind]

    def _apply(self, kind: str, ev: ScheduledFault | None, unit: int | None = None) -> dict[str, Any]:
        """Take units out; return what :meth:`_repair` needs to put them back."""
        now = self.env.now
        t = self.tally
        power = self.power
        if np.isnan(t.first_fault_s):
            t.first_fault_s = now
        t.last_fault_s = now
        count = ev.count if ev is not None else 1
        undo: dict[str, Any] = {"kind": kind}
        detail: dict[str, Any] = {}
        if kind in ("utility_loss", "utility"):
            power.utility_down += 1
        elif kind == "generator_fail":
            power.gen_failed += 1
        elif kind == "feed_loss":
            side = str(ev.side) if ev is not None else "A"
            power.feed_down[side] += 1
            undo["side"] = detail["side"] = side
        elif kind in ("pdu_loss", "pdu"):
            if ev is not None:
                side = str(ev.side)
                racks = np.arange(self.fac.n_racks) if ev.rack is None else np.array([ev.rack])
                power.pdu_blocked[side][racks] += 1
                undo.update(side=side, racks=racks, blocked=True)
                detail.update(side=side, racks=int(racks.size))
            else:
                per_rack = self.fac.stages["pdu"].count
                rack, slot = divmod(int(unit or 0), per_rack)
                side = "A" if slot < power.pdu_on["A"] else "B"
                power.pdu_up[side][rack] -= 1
                undo.update(side=side, racks=np.array([rack]), blocked=False)
                detail.update(side=side, rack=rack)
        elif kind in ("ups_fail", "ups"):
            sides = []
            for _ in range(count):
                side = max(SIDES, key=lambda s: power.ups_up[s])
                if power.ups_up[side] <= 0:
                    break
                power.ups_up[side] -= 1
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
        power = self.power
        if kind in ("utility_loss", "utility"):
            power.utility_down -= 1
        elif kind == "generator_fail":
            power.gen_failed -= 1
        elif kind == "feed_loss":
            power.feed_down[undo["side"]] -= 1
        elif kind in ("pdu_loss", "pdu"):
            if undo["blocked"]:
                power.pdu_blocked[undo["side"]][undo["racks"]] -= 1
            else:
                power.pdu_up[undo["side"]][undo["racks"]] += 1
        elif kind in ("ups_fail", "ups"):
            for side in undo["sides"]:
                power.ups_up[side] += 1
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
        """Operators restart servers that shut down hot once a fault is cleared or cooling returns.

        Cold-plate servers that room air tripped wait until the room air is back below the trip
        (the kernel calls :meth:`restart_when_cool` after each block): booted into air still too
        hot, they would only power off again.
        """
        if self.eng.fac.liquid_cooled and self.eng.plant.room_air_c > SERVER_AIR_SHUTDOWN_C:
            self.hot_restart_pending = bool(self.thermal.any())
            return
        self._boot(self.thermal.copy())
        self.thermal[:] = False
        self.hot_restart_pending = False

    def restart_when_cool(self) -> None:
        """Restart servers held back by hot room air once cooling runs and the room is below the trip."""
        if self.hot_restart_pending and self.plant_powered:
            self._restart_hot_servers()
            if not self.hot_restart_pending:
                self._refresh_servers()

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

    # --------------------------------------------------------------- power, cooling and servers
    def _changed(self) -> None:
        """Re-derive sources, units, cooling and servers after any discrete change."""
        self.power.update_generator()
        self.power.update_supply()
        self.power.update_units()
        self._update_cooling()
        self._refresh_servers()

    def _update_cooling(self) -> None:
        plant = self.eng.plant
        sup = self.power.supply
        powered = sup.bus_live or (sup.cooling_on_ups and sup.on_battery)
        now = self.env.now
        if powered and not self.plant_powered:
            self.chiller_ready_at = now + self.fac.cooling.chiller_restart_s
            at(self.env, self.chiller_ready_at, lambda _: self._cooling_back())
        if powered != self.plant_powered:
            self.eng.log_event("cooling_power", on=powered)
        self.plant_powered = powered
        plant.powered = powered
        n_chillers = int(plant.n_chillers)
        ready = now >= self.chiller_ready_at - 1e-9
        plant.chillers_available = float(max(n_chillers - self.chillers_down, 0)) if ready else 0.0
        if self.chillers_down == 0 and ready:
            plant.chillers_available = None
        n_cdus, n_crahs = self.fac.cooling.n_cdus, self.fac.cooling.n_crahs
        plant.cdu_fraction = max(n_cdus - self.cdus_down, 0) / n_cdus
        plant.crah_fraction = max(n_crahs - self.crahs_down, 0) / n_crahs

    def _cooling_back(self) -> None:
        """The chillers run again after a power cut: restart what shut down hot."""
        self._update_cooling()
        if self.plant_powered:
            self._restart_hot_servers()
            self._refresh_servers()

    def _boot(self, servers: BoolArray) -> None:
        servers = servers & (self.power.units.psu > 0)  # unpowered servers boot when their power returns
        if not servers.any():
            return
        boot_s = self.fac.server.boot_s
        self.booting |= servers
        self.boot_done_at[servers] = self.env.now + boot_s
        at(self.env, self.env.now + boot_s, lambda _: self._boot_done())

    def _boot_done(self) -> None:
        done = self.booting & (self.boot_done_at <= self.env.now + 1e-9)
        if done.any():
            self.booting &= ~done
            self.eng.log_event("servers_booted", servers=int(done.sum()))
            self._refresh_servers()

    def _refresh_servers(self) -> None:
        st = self.eng.state
        powered = self.power.units.psu > 0
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
        self.jobs.servers_back(new_up)  # a job that lost every server restarts once some are back

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
        self.jobs.servers_down(servers, st.server_up)
        for pool in self.inference_pools:
            hit = servers & pool
            if hit.any():
                decode = float(st.backlog_decode_tokens[hit].sum())
                prefill = float(st.backlog_prefill_tokens[hit].sum())
                self.tally.tokens_dropped += decode
                self.tally.prefill_tokens_dropped += prefill
                self._count("tokens_dropped", decode)
                st.backlog_decode_tokens[hit] = 0.0
                st.backlog_prefill_tokens[hit] = 0.0

    # ------------------------------------------------------------- kernel hooks
    def route_demand(self, dem: Demand) -> tuple[Demand, DroppedTokens]:
        """Spread each inference pool's arrivals over its servers that are up (:func:`route_demand`)."""
        return route_demand(dem, self.eng.cols, self.eng.state.server_up, self.inference_pools)

    def pause_training(self, res: ServeResult, part: slice | IntArray | None = None) -> ServeResult:
        """Servers of a training job that is restarting or writing a checkpoint sit idle (``res``: columns ``part``)."""
        return self.jobs.pause_training(res, self.eng.cols, part)

    def commit(self, b: Block, seg: Segments) -> None:
        """Advance the battery, the jobs' work since their checkpoints and the fault tallies over a committed block."""
        self.power.commit(b.extra.chain, b.dts)
        self.jobs.commit(b)
        self.last_server_w = np.array(b.cols.expand(b.extra.chain.server_w[-1]), dtype=np.float64)
        self.tally.commit(b, seg, float(self.shed_w.sum()), self.power.supply.on_generator)

    # --------------------------------------------------------------- reporting
    def _count(self, key: str, value: float) -> None:
        self.tally.interval.add_scalar(key, value)

    def columns(self) -> list[str]:
        """Time-series columns this subsystem fills."""
        return list(COLUMNS)

    def close_open(self) -> None:
        """Close the open interval (the run's end)."""
        self.tally.interval.close_open()

    def rows(self, duration_s: FloatArray) -> dict[str, FloatArray | float]:
        """Values of the intervals closed since the last call (``duration_s`` of each)."""
        return self.tally.rows(duration_s, self.power.soc, float(self.powered.sum()))

    def kpis(self) -> dict[str, float]:
        """Run totals of what faults cost."""
        return self.tally.kpis(self.power.battery, self.jobs.rollbacks)


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
