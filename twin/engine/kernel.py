"""The engine: a simpy event kernel with the fleet advanced in closed form between events.

simpy holds the discrete events: report boundaries, weather hours, thermal shutdowns, and the
faults, repairs, battery cut-offs and control windows of :mod:`twin.engine.faults` and
:mod:`twin.engine.controls` (called through a few hooks). The loop is SimPy's documented
``peek``/``step`` pattern: before each event the continuous state is advanced from ``state.t_s``
to ``env.peek()``, then the event is processed. A battery reaching its cut-off inside a block is
solved for like a die crossing, scheduled, and the block recomputed up to that instant.

Advancing is done in blocks of ticks computed as ``(K ticks x S servers)`` arrays. Ticks exist only
where inputs vary (``step_s``); with constant inputs a whole inter-event span is one step. A block is
*computed* without touching the state and then *committed*; when a block reveals a change of regime
(the cooling plant runs short of capacity, or a die reaches its shutdown temperature) it is cut at
that tick. While a thermal node is away from its setpoint the engine steps one tick at a time so that
temperatures, throttling and heat feed back each tick; a die crossing its shutdown temperature inside
a tick is solved for exactly and scheduled as an event at that instant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy
from simpy.core import URGENT

from twin._types import FloatArray
from twin.engine.boundary import WeatherBoundary
from twin.engine.controls import Controls
from twin.engine.cooling import PlantStep, build_plant
from twin.engine.demand import DemandModel
from twin.engine.faults import FaultSystem
from twin.engine.pool_stats import PoolStats
from twin.engine.serving import ServerConstants, ServeResult, serve_block
from twin.engine.state import FleetState
from twin.engine.telemetry import Recorder
from twin.facility import Facility
from twin.ledger import BASE_CATEGORIES, Ledger
from twin.physics.accelerator import accelerator_power_w, clock_for_power_limit, thermal_power_limit_w
from twin.physics.thermal import rc_step, rc_time_to_threshold_s
from twin.units import L_PER_M3, WATER_DENSITY_KG_M3

#: Most (tick x server) cells handled in one vectorised block (bounds memory per block).
MAX_BLOCK_CELLS = 2_000_000
#: Times closer than this are the same instant. [s]
TIME_EPS_S = 1e-9


@dataclass
class Interval:
    """Sums and extremes over the current report interval."""

    duration_s: float = 0.0
    peak_facility_power_w: float = 0.0
    max_die_temp_c: float = -np.inf
    max_inlet_temp_c: float = -np.inf
    throttled_gpu_s: float = 0.0
    capped_gpu_s: float = 0.0
    clock_gpu_s: float = 0.0
    gpu_s: float = 0.0
    water_kg: float = 0.0
    free_cooling_s: float = 0.0
    unmet_heat_j: float = 0.0
    energy_j: dict[str, float] = field(default_factory=dict)
    metered_j: float = 0.0
    tokens: dict[str, float] = field(default_factory=dict)


@dataclass
class Block:
    """Everything computed for a block of ticks, before it is committed."""

    t0: FloatArray
    t1: FloatArray
    dts: FloatArray
    site_w: dict[str, FloatArray]
    metered_w: FloatArray
    serve: ServeResult
    requests: FloatArray
    gpus: FloatArray
    clock: FloatArray
    throttled: Any
    capped: Any
    die_end: FloatArray
    die_max: FloatArray
    inlet_c: FloatArray
    plant: PlantStep
    extra: dict[str, Any] = field(default_factory=dict)


class Engine:
    """One simulation run of a facility.

    Parameters
    ----------
    fac : Facility
        The facility as arrays.
    rng : numpy.random.Generator
        The run's random generator (passed to every subsystem that draws).
    progress : callable, optional
        Called as ``progress(t_s, duration_s)`` after each report interval.
    debug : bool
        Check the energy ledger after every interval.
    """

    def __init__(
        self,
        fac: Facility,
        rng: np.random.Generator,
        progress: Callable[[float, float], None] | None = None,
        debug: bool = False,
    ) -> None:
        sc = fac.scenario
        self.fac = fac
        self.rng = rng
        self.progress = progress
        self.debug = debug
        self.env = simpy.Environment()
        self.duration_s = sc.duration_s
        self.step_s = sc.step_s
        self.report_s = sc.report_interval_s
        self.n_reports = math.ceil(self.duration_s / self.report_s - 1e-9)
        self.plant = build_plant(sc.cooling, fac.nameplate_it_power_w, fac.nameplate_losses_w(), fac.n_racks)
        self.weather = WeatherBoundary(sc.weather, sc.start, sc.source_dir)
        self.boundary = self.weather.at(0.0)
        self.const = ServerConstants.build(fac)
        self.demand = DemandModel(fac, rng)
        self.pool_stats = PoolStats(fac, self.demand)
        inlet = self.plant.inlet_temp_c(fac.n_servers)
        self.state = FleetState.initial(fac.n_servers, fac.gpus_per_server, float(inlet[0]), sc.fleet.power_cap_w)
        self.events: list[dict[str, Any]] = []
        self.faults = FaultSystem(self)
        self.controls = Controls(self)
        cooling_cats = tuple(f"cooling_{c}" for c in self.plant.components)
        self.categories = (*BASE_CATEGORIES, *cooling_cats, *self.faults.categories)
        self.ledger = Ledger(self.n_reports, self.categories)
        self.pool_names = [p.name for p in fac.pools]
        self.recorder = Recorder(self.n_reports, self._columns())
        self.interval_index = 0
        self.acc = self._new_interval()
        self.env.process(self._reporter())
        if not self.weather.constant:
            self.env.process(self._weather_hours())

    # ----------------------------------------------------------------- event loop
    def run(self) -> None:
        """Advance to the end of the scenario, processing events in time order."""
        end = self.duration_s
        while True:
            t_next = min(self.env.peek(), end)
            if t_next > self.state.t_s + TIME_EPS_S:
                self._advance(self.state.t_s, t_next)
            if self.env.peek() > end:
                break
            self.env.step()
        if self.acc.duration_s > 0 and self.interval_index < self.n_reports:
            self._flush()

    def log_event(self, kind: str, **detail: Any) -> None:
        """Record a discrete event (thermal shutdown, fault, control action) with its time."""
        self.events.append({"time_s": float(self.env.now), "event": kind, **detail})

    def _reporter(self) -> Generator[simpy.Event, Any, None]:
        # A report closes its interval before any other event at the same instant (URGENT):
        # a row's point values (servers up, weather, battery) are those at the interval's end.
        while True:
            ev = self.env.event()
            ev._ok, ev._value = True, None
            self.env.schedule(ev, URGENT, self.report_s)
            yield ev
            self._flush()

    def _weather_hours(self) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(self.weather.next_change_s(self.env.now) - self.env.now)
            self.boundary = self.weather.at(self.env.now)

    def _shutdown_at(self, delay_s: float, servers: np.ndarray) -> None:
        def handler(_: simpy.Event) -> None:
            st = self.state
            newly = servers & st.server_up
            st.server_up &= ~servers
            if newly.any():
                self.log_event(
                    "thermal_shutdown", servers=int(newly.sum()), die_temp_c=float(st.die_temp_c[newly].max())
                )
                self.faults.on_thermal_shutdown(newly)

        self.env.timeout(max(delay_s, 0.0)).callbacks.append(handler)

    # ------------------------------------------------------------- continuous part
    def _tick_edges(self, t_from: float, t_to: float, fine: bool) -> FloatArray:
        if not (fine or self.demand.varies):
            return np.array([t_from, t_to])
        first = math.floor(t_from / self.step_s + 1e-9) + 1
        last = math.ceil(t_to / self.step_s - 1e-9)
        inner = np.arange(first, last, dtype=np.float64) * self.step_s
        return np.concatenate(([t_from], inner[(inner > t_from + TIME_EPS_S) & (inner < t_to - TIME_EPS_S)], [t_to]))

    def _advance(self, t_from: float, t_to: float) -> None:
        k_max = max(1, MAX_BLOCK_CELLS // max(self.fac.n_servers, 1))
        t = t_from
        # An event scheduled while advancing (a shutdown crossing) ends the advance at its time.
        while t < min(t_to, self.env.peek()) - TIME_EPS_S:
            stop = min(t_to, self.env.peek())
            transient = self.plant.transient
            edges = self._tick_edges(t, stop, fine=transient)
            n = 1 if transient else min(k_max, edges.size - 1)
            block = self._compute(edges[:n], edges[1 : n + 1])
            cut = self._first_regime_change(block, transient)
            if cut is not None:
                shorter = self._cut(block, cut)
                if shorter is None:  # a shutdown crossing at this very instant: the event handles it
                    break
                block = shorter
            t_empty = self.faults.crossing_s(block)  # the battery reaches its cut-off: scheduled, cut there
            if t_empty is not None:
                if t_empty <= t + TIME_EPS_S:
                    break
                block = self._truncate(block, t_empty)
            self._commit(block)
            t = float(block.t1[-1])
        self.state.t_s = t

    def _first_regime_change(self, b: Block, transient: bool) -> int | None:
        """First tick where a die reaches shutdown or (outside a transient) a thermal node drifts."""
        hot = np.flatnonzero(b.die_max >= self.fac.accelerator.shutdown_temp_c)
        if hot.size:
            return int(hot[0])
        if transient:
            return None
        k = b.plant.first_drift_tick()
        if k is None or (k == 0 and b.dts.size == 1 and b.dts[0] <= self.step_s + TIME_EPS_S):
            return None  # no drift, or already a single fine tick: commit it
        return k

    def _cut(self, b: Block, k: int) -> Block | None:
        """Recompute the block up to tick ``k``; at a die crossing, up to the crossing instant."""
        if k > 0:
            return self._compute(b.t0[:k], b.t1[:k])
        shut = self.fac.accelerator.shutdown_temp_c
        st = self.state
        if b.die_max[0] < shut:  # a node drifts fast from the first tick: step one fine tick
            t1 = min(b.t1[0], b.t0[0] + self.step_s)
            return self._compute(b.t0[:1], np.array([t1]))
        p_gpu = b.site_w["_gpu_w"][0]
        tss = b.inlet_c + self.fac.thermal_resistance_k_w * p_gpu
        t_cross = rc_time_to_threshold_s(st.die_temp_c, tss, self.fac.accelerator.die_time_constant_s, shut)
        t_cross = np.where(st.server_up, t_cross, np.inf)
        dt_c = float(np.min(t_cross))
        if not np.isfinite(dt_c):  # reached only through the tick's rising inlet: stop at the tick end
            dt_c = float(b.dts[0])
        hit = st.server_up & (t_cross <= dt_c + 1e-6)
        if not hit.any():
            hit = st.server_up & (b.die_end >= shut)
        self._shutdown_at(float(b.t0[0]) + dt_c - self.env.now, hit)
        if dt_c <= TIME_EPS_S:
            return None
        return self._compute(b.t0[:1], b.t0[:1] + dt_c)

    def _truncate(self, b: Block, t_end: float) -> Block:
        """Recompute the block up to ``t_end`` (the ticks before it and the part of the tick it falls in)."""
        k = int(np.count_nonzero(b.t1 < t_end - TIME_EPS_S))
        return self._compute(b.t0[: k + 1], np.concatenate((b.t1[:k], [t_end])))

    def _compute(self, t0: FloatArray, t1: FloatArray) -> Block:
        fac, st, c, acc = self.fac, self.state, self.const, self.fac.accelerator
        dts = t1 - t0
        dem = self.demand.block(t0, t1)
        dem, dropped = self.faults.route_demand(dem)  # arrivals go to the servers that are up
        serve_args = (dem.prefill_tokens, dem.decode_tokens, dem.prompt_len, dem.context_len)
        queues = (st.backlog_prefill_tokens, st.backlog_decode_tokens, dts)
        ones = np.ones_like(dem.requests)

        def serve(clock: FloatArray) -> ServeResult:
            res = serve_block(
                c,
                *serve_args,
                clock,
                *queues,
                requests=dem.requests,
                train_fraction=dem.train_fraction,
                replay_busy=dem.replay_busy,
            )
            return self.faults.pause_training(res)

        res0 = serve(ones)
        pw = (acc.idle_power_w, acc.max_power_w)
        ks = (acc.static_power_fraction, acc.mem_power_fraction, acc.clock_exponent)
        p_full = accelerator_power_w(*pw, res0.busy, res0.mem_activity, res0.sm_activity, 1.0, *ks)
        r_th = fac.thermal_resistance_k_w
        inlet = self.plant.inlet_temp_c(fac.n_servers)
        thermal_w = thermal_power_limit_w(inlet, acc.slowdown_temp_c, r_th)

        def run_at(limit_w: FloatArray) -> tuple[ServeResult, FloatArray, FloatArray, FloatArray]:
            clock, res = ones, res0
            if np.any(p_full > limit_w):
                clock = clock_for_power_limit(
                    limit_w, *pw, res.busy, res.mem_activity, res.sm_activity, *ks, acc.min_clock_fraction
                )
                clock = np.where(p_full > limit_w, clock, 1.0)
                res = serve(clock)
            p_gpu = accelerator_power_w(*pw, res.busy, res.mem_activity, res.sm_activity, clock, *ks)
            p_gpu, floor_extra = self.controls.apply_floor(p_gpu, limit_w)
            return res, clock, p_gpu, floor_extra

        limit_w = np.minimum(st.power_cap_w, thermal_w)
        res, clock, p_gpu, floor_extra = run_at(limit_w)
        site, metered_w, plant, extra = self._chain(p_gpu, res, dts)
        site_limited = np.zeros(dts.size, dtype=bool)
        if self.controls.over_limit(metered_w):  # site limit: cap every GPU to a share of its demand

            def metered_at(share: FloatArray) -> FloatArray:
                r, _, p, _ = run_at(np.minimum(limit_w, share[:, None] * p_full))
                return self._chain(p, r, dts)[1]

            frac = self.controls.solve_fraction(metered_at, dts.size)
            site_limited = frac < 1.0
            limit_w = np.minimum(limit_w, frac[:, None] * p_full)
            res, clock, p_gpu, floor_extra = run_at(limit_w)
            site, metered_w, plant, extra = self._chain(p_gpu, res, dts)
        up = st.server_up.astype(np.float64)
        gpus = st.gpus_up * up
        extra.update(dropped=dropped, floor_extra_w=floor_extra, site_limited=site_limited)
        # Die temperature: exact RC step per tick with the tick's power.
        die = st.die_temp_c
        die_max = np.empty(dts.size)
        tau, live = acc.die_time_constant_s, st.server_up
        for k in range(dts.size):
            die = rc_step(die, inlet + r_th * p_gpu[k], tau, dts[k])
            die_max[k] = np.max(die, where=live, initial=-np.inf)
        site["_gpu_w"] = p_gpu
        return Block(
            t0=t0,
            t1=t1,
            dts=dts,
            site_w=site,
            metered_w=metered_w,
            serve=res,
            requests=dem.requests,
            gpus=gpus,
            clock=clock,
            throttled=(p_full > thermal_w) & (thermal_w <= st.power_cap_w),
            capped=(p_full > limit_w) & (limit_w < thermal_w),
            die_end=die,
            die_max=die_max,
            inlet_c=inlet,
            plant=plant,
            extra=extra,
        )

    def _chain(
        self, p_gpu: FloatArray, res: ServeResult, dts: FloatArray
    ) -> tuple[dict[str, FloatArray], FloatArray, PlantStep, dict[str, Any]]:
        """Power from the GPUs up the chain to the meter, with the units and sources up now."""
        fac, st, units = self.fac, self.state, self.faults.units
        up = st.server_up.astype(np.float64)
        gpus = st.gpus_up * up
        server = fac.scenario.fleet.server
        gpu_w = p_gpu * gpus
        other_w = (server.other_idle_power_w + (server.other_max_power_w - server.other_idle_power_w) * res.busy) * up
        it_w = gpu_w + other_w
        psu_loss = fac.stages["psu"].loss_w(it_w, units.psu) * up
        pdu_in = fac.rack_sum(it_w + psu_loss)
        pdu_loss = fac.stages["pdu"].loss_w(pdu_in, units.pdu)
        site = {
            "accelerators": gpu_w.sum(axis=1),
            "server_other": other_w.sum(axis=1),
            "psu_loss": psu_loss.sum(axis=1),
            "pdu_loss": pdu_loss.sum(axis=1),
        }
        ups_out = site["accelerators"] + site["server_other"] + site["psu_loss"] + site["pdu_loss"]
        site["ups_loss"] = fac.stages["ups"].loss_w(ups_out, units.ups)
        heat_liquid = self.plant.liquid_fraction * (site["accelerators"] + site["server_other"])
        heat_air = ups_out + site["ups_loss"] - heat_liquid
        plant = self.plant.compute(heat_liquid, heat_air, dts, self.boundary)
        cooling_w = np.zeros_like(dts)
        for name, power in plant.powers_w.items():
            site[f"cooling_{name}"] = power
            cooling_w = cooling_w + power
        site["other_facility"] = np.full(dts.size, fac.scenario.site.other_facility_power_w)
        # Sources: UPS and transformer losses, battery, what the meter reads.
        metered_w, extra = self.faults.balance(site, ups_out, cooling_w, pdu_in, it_w)
        extra.update(it_w=it_w, server_w=it_w + psu_loss)
        return site, metered_w, plant, extra

    def _commit(self, b: Block) -> None:
        st, a, dts = self.state, self.acc, b.dts
        self.plant.commit(b.plant)
        st.die_temp_c = b.die_end
        st.inlet_temp_c = self.plant.inlet_temp_c(self.fac.n_servers)
        st.clock_fraction = b.clock[-1] * np.ones(self.fac.n_servers)
        st.backlog_prefill_tokens = b.serve.backlog_prefill_tokens[-1]
        st.backlog_decode_tokens = b.serve.backlog_decode_tokens[-1]
        a.duration_s += float(dts.sum())
        for name in self.categories:
            a.energy_j[name] += float(b.site_w[name] @ dts)
        a.metered_j += float(b.metered_w @ dts)
        a.peak_facility_power_w = max(a.peak_facility_power_w, float(b.metered_w.max()))
        a.max_die_temp_c = max(a.max_die_temp_c, float(b.die_max.max()))
        a.max_inlet_temp_c = max(a.max_inlet_temp_c, float(b.inlet_c.max()), float(st.inlet_temp_c.max()))
        self.faults.commit(b)
        self.controls.commit(b)
        gpu_dt = b.gpus * dts[:, None]
        a.throttled_gpu_s += float(np.sum(gpu_dt * b.throttled))
        a.capped_gpu_s += float(np.sum(gpu_dt * b.capped))
        a.clock_gpu_s += float(np.sum(gpu_dt * b.clock))
        a.gpu_s += float(np.sum(gpu_dt))
        a.water_kg += float(b.plant.water_kg_s @ dts)
        a.free_cooling_s += float(b.plant.free_cooling_fraction @ dts)
        a.unmet_heat_j += float(b.plant.unmet_w @ dts)
        res = b.serve
        tok = a.tokens
        for pool in self.fac.pools:
            s = slice(int(pool.servers[0]), int(pool.servers[-1]) + 1)
            for key, arr in (
                ("prefill", res.prefill_tokens),
                ("generated", res.decode_tokens),
                ("training", res.training_tokens * b.gpus),
                ("step_x_tokens", res.step_time_s * res.decode_tokens),
                ("batch_x_tokens", res.batch * res.decode_tokens),
                ("requests", b.requests),
            ):
                k = f"{pool.name}:{key}"
                tok[k] = tok.get(k, 0.0) + float(arr[:, s].sum())
        self.pool_stats.commit(b)

    # -------------------------------------------------------------------- reports
    def _new_interval(self) -> Interval:
        return Interval(energy_j=dict.fromkeys(self.categories, 0.0))

    def _columns(self) -> list[str]:
        cols = [
            "time_s", "duration_s", "facility_power_w", "facility_peak_power_w", "it_power_w",
            "cooling_power_w", "losses_power_w", "pue", "gpu_power_mean_w", "clock_fraction_mean",
            "die_temp_max_c", "inlet_temp_max_c", "throttled_gpu_s", "capped_gpu_s", "servers_up",
            "dry_bulb_c", "wet_bulb_c", "free_cooling_fraction", "water_l", "unmet_heat_w",
            "loop_excess_k", "room_excess_k",
            "tokens_generated", "tokens_prefill", "tokens_training", "tokens_out",
        ]  # fmt: skip
        cols += [f"{c}_power_w" for c in self.categories]
        cols += self.faults.columns() + self.controls.columns()
        for name in self.pool_names:
            cols += [
                f"{name}_requests", f"{name}_tokens_prefill", f"{name}_tokens_generated",
                f"{name}_tokens_training", f"{name}_backlog_tokens", f"{name}_batch_mean",
                f"{name}_step_time_mean_s",
            ]  # fmt: skip
        return cols + self.pool_stats.columns()

    def _flush(self) -> None:
        i, a = self.interval_index, self.acc
        dur = a.duration_s
        e = a.energy_j
        for name, energy in e.items():
            self.ledger.book(i, name, energy)
        self.ledger.meter(i, a.metered_j)
        if self.debug:
            self.ledger.check(upto=i + 1)
        it_j = e["accelerators"] + e["server_other"]
        cooling_j = sum(v for k, v in e.items() if k.startswith("cooling"))
        losses_j = e["psu_loss"] + e["pdu_loss"] + e["ups_loss"] + e["transformer_loss"]
        plant = self.plant
        row: dict[str, float] = {
            "time_s": i * self.report_s,
            "duration_s": dur,
            "facility_power_w": a.metered_j / dur,
            "facility_peak_power_w": a.peak_facility_power_w,
            "it_power_w": it_j / dur,
            "cooling_power_w": cooling_j / dur,
            "losses_power_w": losses_j / dur,
            "pue": a.metered_j / it_j if it_j > 0 else np.nan,
            "gpu_power_mean_w": e["accelerators"] / a.gpu_s if a.gpu_s > 0 else 0.0,
            "clock_fraction_mean": a.clock_gpu_s / a.gpu_s if a.gpu_s > 0 else np.nan,
            "die_temp_max_c": a.max_die_temp_c,
            "inlet_temp_max_c": a.max_inlet_temp_c,
            "throttled_gpu_s": a.throttled_gpu_s,
            "capped_gpu_s": a.capped_gpu_s,
            "servers_up": float(self.state.server_up.sum()),
            "dry_bulb_c": self.boundary["dry_bulb_c"],
            "wet_bulb_c": self.boundary["wet_bulb_c"],
            "free_cooling_fraction": a.free_cooling_s / dur,
            "water_l": a.water_kg / WATER_DENSITY_KG_M3 * L_PER_M3,
            "unmet_heat_w": a.unmet_heat_j / dur,
            "loop_excess_k": getattr(plant, "loop_excess_k", 0.0),
            "room_excess_k": getattr(plant, "room_excess_k", 0.0),
        }
        row.update({f"{c}_power_w": e[c] / dur for c in self.categories})
        totals = {"prefill": 0.0, "generated": 0.0, "training": 0.0}
        t = a.tokens
        for pool in self.fac.pools:
            n = pool.name
            for kind in totals:
                v = t.get(f"{n}:{kind}", 0.0)
                totals[kind] += v
                row[f"{n}_tokens_{kind}"] = v
            gen = t.get(f"{n}:generated", 0.0)
            row[f"{n}_requests"] = t.get(f"{n}:requests", 0.0)
            s = pool.servers
            row[f"{n}_backlog_tokens"] = float(
                self.state.backlog_prefill_tokens[s].sum() + self.state.backlog_decode_tokens[s].sum()
            )
            row[f"{n}_batch_mean"] = t.get(f"{n}:batch_x_tokens", 0.0) / gen if gen > 0 else 0.0
            row[f"{n}_step_time_mean_s"] = t.get(f"{n}:step_x_tokens", 0.0) / gen if gen > 0 else np.nan
        row["tokens_prefill"] = totals["prefill"]
        row["tokens_generated"] = totals["generated"]
        row["tokens_training"] = totals["training"]
        row["tokens_out"] = totals["generated"] + totals["training"]
        row.update(self.pool_stats.flush())
        row.update(self.faults.flush_row(dur))
        row.update(self.controls.flush_row(dur))
        self.recorder.record(i, row)
        self.interval_index += 1
        self.acc = self._new_interval()
        if self.progress is not None:
            self.progress(min(self.env.now, self.duration_s), self.duration_s)
