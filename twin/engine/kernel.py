"""The engine: a simpy event kernel with the fleet advanced in closed form between events.

simpy holds the discrete events (report boundaries now; weather, faults and controls as later
subsystems register processes). The loop is SimPy's documented ``peek``/``step`` pattern: before
each event the continuous state is advanced from ``state.t_s`` to ``env.peek()`` in vectorised
blocks of ticks, then the event is processed. Ticks exist only where inputs vary (``step_s``);
with constant inputs a whole inter-event span is one step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from twin._types import FloatArray
from twin.engine.cooling import build_plant
from twin.engine.demand import DemandModel
from twin.engine.serving import ServerConstants, serve_block
from twin.engine.state import FleetState
from twin.engine.telemetry import Recorder
from twin.facility import Facility
from twin.ledger import BASE_CATEGORIES, Ledger
from twin.physics.accelerator import (
    accelerator_power_w,
    clock_for_power_limit,
    thermal_power_limit_w,
)
from twin.physics.thermal import rc_step

#: Most (tick x server) cells handled in one vectorised block (bounds memory per block).
MAX_BLOCK_CELLS = 2_000_000


@dataclass
class Interval:
    """Sums over the current report interval."""

    duration_s: float = 0.0
    peak_facility_power_w: float = 0.0
    max_die_temp_c: float = -np.inf
    throttled_gpu_s: float = 0.0
    capped_gpu_s: float = 0.0
    clock_gpu_s: float = 0.0
    gpu_s: float = 0.0
    tokens: dict[str, float] = field(default_factory=dict)


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
        self.plant = build_plant(sc.cooling)
        self.const = ServerConstants.build(fac)
        self.demand = DemandModel(fac)
        inlet = self.plant.inlet_temp_c(fac.n_servers)
        self.state = FleetState.initial(fac.n_servers, fac.gpus_per_server, float(inlet.mean()), sc.fleet.power_cap_w)
        self.state.inlet_temp_c = inlet
        self.state.die_temp_c = inlet.copy()
        self.categories = (*BASE_CATEGORIES, *(f"cooling_{c}" if c != "cooling" else c for c in self.plant.components))
        self.ledger = Ledger(self.n_reports, self.categories)
        self.pool_names = [p.name for p in fac.pools]
        self.recorder = Recorder(self.n_reports, self._columns())
        self.interval_index = 0
        self.acc = Interval()
        self._energy: dict[str, float] = dict.fromkeys(self.categories, 0.0)
        self._metered = 0.0
        self.env.process(self._reporter())

    # ----------------------------------------------------------------- event loop
    def run(self) -> None:
        """Advance to the end of the scenario, processing events in time order."""
        end = self.duration_s
        while True:
            t_next = min(self.env.peek(), end)
            if t_next > self.state.t_s:
                self._advance(self.state.t_s, t_next)
            if self.env.peek() > end:
                break
            self.env.step()
        if self.acc.duration_s > 0 and self.interval_index < self.n_reports:
            self._flush()

    def _reporter(self) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(self.report_s)
            self._flush()

    # ------------------------------------------------------------- continuous part
    def _tick_edges(self, t_from: float, t_to: float) -> FloatArray:
        if not self.demand.varies:
            return np.array([t_from, t_to])
        first = math.floor(t_from / self.step_s + 1e-9) + 1
        last = math.ceil(t_to / self.step_s - 1e-9)
        inner = np.arange(first, last, dtype=np.float64) * self.step_s
        return np.concatenate(([t_from], inner[(inner > t_from) & (inner < t_to)], [t_to]))

    def _advance(self, t_from: float, t_to: float) -> None:
        edges = self._tick_edges(t_from, t_to)
        k_max = max(1, MAX_BLOCK_CELLS // max(self.fac.n_servers, 1))
        for i in range(0, edges.size - 1, k_max):
            e = edges[i : i + k_max + 1]
            self._block(e[:-1], e[1:])
        self.state.t_s = t_to

    def _block(self, t0: FloatArray, t1: FloatArray) -> None:
        fac, st, c, acc = self.fac, self.state, self.const, self.fac.accelerator
        dts = t1 - t0
        dem = self.demand.block(t0, t1)
        ones = np.ones_like(dem.requests)
        clock = ones
        serve_args = (dem.prefill_tokens, dem.decode_tokens, dem.prompt_len, dem.context_len)
        res = serve_block(c, *serve_args, clock, st.backlog_prefill_tokens, st.backlog_decode_tokens, dts)
        pw_args = (acc.idle_power_w, acc.max_power_w)
        k_args = (acc.static_power_fraction, acc.mem_power_fraction, acc.clock_exponent)
        p_full = accelerator_power_w(*pw_args, res.busy, res.mem_activity, res.sm_activity, 1.0, *k_args)
        r_th = fac.thermal_resistance_k_w
        thermal_w = thermal_power_limit_w(st.inlet_temp_c, acc.slowdown_temp_c, r_th)
        limit_w = np.minimum(st.power_cap_w, thermal_w)
        if np.any(p_full > limit_w):
            clock = clock_for_power_limit(
                limit_w, *pw_args, res.busy, res.mem_activity, res.sm_activity, *k_args, acc.min_clock_fraction
            )
            clock = np.where(p_full > limit_w, clock, 1.0)
            res = serve_block(c, *serve_args, clock, st.backlog_prefill_tokens, st.backlog_decode_tokens, dts)
        p_gpu = accelerator_power_w(*pw_args, res.busy, res.mem_activity, res.sm_activity, clock, *k_args)
        up = st.server_up.astype(np.float64)
        gpus = st.gpus_up * up
        server = fac.scenario.fleet.server
        gpu_w = p_gpu * gpus
        other_w = (server.other_idle_power_w + (server.other_max_power_w - server.other_idle_power_w) * res.busy) * up
        it_w = gpu_w + other_w
        psu_loss = fac.stages["psu"].loss_w(it_w) * up
        rack_in = fac.rack_sum(it_w + psu_loss)
        pdu_loss = fac.stages["pdu"].loss_w(rack_in)
        site = {
            "accelerators": gpu_w.sum(axis=1),
            "server_other": other_w.sum(axis=1),
            "psu_loss": psu_loss.sum(axis=1),
            "pdu_loss": pdu_loss.sum(axis=1),
        }
        ups_out = site["accelerators"] + site["server_other"] + site["psu_loss"] + site["pdu_loss"]
        site["ups_loss"] = fac.stages["ups"].loss_w(ups_out)
        heat_liquid = self.plant.liquid_fraction * site["accelerators"]
        heat_air = ups_out + site["ups_loss"] - heat_liquid
        cooling = self.plant.step(heat_liquid, heat_air, t0, dts)
        for name, power in cooling.items():
            site[name if name == "cooling" else f"cooling_{name}"] = power
        site["other_facility"] = np.full(dts.size, fac.scenario.site.other_facility_power_w)
        cooling_w = sum(cooling.values(), start=np.zeros(dts.size))
        tx_out = ups_out + site["ups_loss"] + cooling_w + site["other_facility"]
        site["transformer_loss"] = fac.stages["transformer"].loss_w(tx_out)
        metered_w = tx_out + site["transformer_loss"]
        # Die temperature: exact RC step per tick with the tick's power.
        tau = acc.die_time_constant_s
        die = st.die_temp_c
        die_max = np.empty(dts.size)
        for k in range(dts.size):
            die = rc_step(die, st.inlet_temp_c + r_th * p_gpu[k], tau, dts[k])
            die_max[k] = np.max(np.where(st.server_up, die, -np.inf))
        st.die_temp_c = die
        st.clock_fraction = clock[-1]
        st.backlog_prefill_tokens = res.backlog_prefill_tokens[-1]
        st.backlog_decode_tokens = res.backlog_decode_tokens[-1]
        # Book the block into the current interval.
        a = self.acc
        a.duration_s += float(dts.sum())
        for name, power in site.items():
            self._energy[name] += float(power @ dts)
        self._metered += float(metered_w @ dts)
        a.peak_facility_power_w = max(a.peak_facility_power_w, float(metered_w.max()))
        a.max_die_temp_c = max(a.max_die_temp_c, float(die_max.max()))
        gpu_dt = gpus * dts[:, None]
        throttled = (p_full > thermal_w) & (thermal_w <= st.power_cap_w)
        capped = (p_full > st.power_cap_w) & (st.power_cap_w < thermal_w)
        a.throttled_gpu_s += float(np.sum(gpu_dt * throttled))
        a.capped_gpu_s += float(np.sum(gpu_dt * capped))
        a.clock_gpu_s += float(np.sum(gpu_dt * clock))
        a.gpu_s += float(np.sum(gpu_dt))
        for pool in fac.pools:
            s = slice(int(pool.servers[0]), int(pool.servers[-1]) + 1)
            tok = a.tokens
            for kind, arr in (
                ("prefill", res.prefill_tokens),
                ("generated", res.decode_tokens),
                ("training", res.training_tokens * gpus),
            ):
                key = f"{pool.name}:{kind}"
                tok[key] = tok.get(key, 0.0) + float(arr[:, s].sum())
            key = f"{pool.name}:step_x_tokens"
            tok[key] = tok.get(key, 0.0) + float(np.sum(res.step_time_s[:, s] * res.decode_tokens[:, s]))
            key = f"{pool.name}:batch_x_tokens"
            tok[key] = tok.get(key, 0.0) + float(np.sum(res.batch[:, s] * res.decode_tokens[:, s]))
            key = f"{pool.name}:requests"
            tok[key] = tok.get(key, 0.0) + float(dem.requests[:, s].sum())

    # -------------------------------------------------------------------- reports
    def _columns(self) -> list[str]:
        cols = [
            "time_s",
            "duration_s",
            "facility_power_w",
            "facility_peak_power_w",
            "it_power_w",
            "cooling_power_w",
            "losses_power_w",
            "pue",
            "gpu_power_mean_w",
            "clock_fraction_mean",
            "die_temp_max_c",
            "inlet_temp_mean_c",
            "throttled_gpu_s",
            "capped_gpu_s",
            "tokens_generated",
            "tokens_prefill",
            "tokens_training",
            "tokens_out",
        ]
        cols += [f"{c}_power_w" for c in self.categories]
        for name in self.pool_names:
            cols += [
                f"{name}_requests",
                f"{name}_tokens_prefill",
                f"{name}_tokens_generated",
                f"{name}_tokens_training",
                f"{name}_backlog_tokens",
                f"{name}_batch_mean",
                f"{name}_step_time_mean_s",
            ]
        return cols

    def _flush(self) -> None:
        i = self.interval_index
        a = self.acc
        dur = a.duration_s
        for name, energy in self._energy.items():
            self.ledger.book(i, name, energy)
        self.ledger.meter(i, self._metered)
        if self.debug:
            self.ledger.check(upto=i + 1)
        e = self._energy
        it_j = sum(e[c] for c in ("accelerators", "server_other"))
        cooling_j = sum(v for k, v in e.items() if k.startswith("cooling"))
        losses_j = sum(e[c] for c in ("psu_loss", "pdu_loss", "ups_loss", "transformer_loss"))
        row: dict[str, float] = {
            "time_s": i * self.report_s,
            "duration_s": dur,
            "facility_power_w": self._metered / dur,
            "facility_peak_power_w": a.peak_facility_power_w,
            "it_power_w": it_j / dur,
            "cooling_power_w": cooling_j / dur,
            "losses_power_w": losses_j / dur,
            "pue": self._metered / it_j if it_j > 0 else np.nan,
            "gpu_power_mean_w": e["accelerators"] / a.gpu_s if a.gpu_s > 0 else 0.0,
            "clock_fraction_mean": a.clock_gpu_s / a.gpu_s if a.gpu_s > 0 else np.nan,
            "die_temp_max_c": a.max_die_temp_c,
            "inlet_temp_mean_c": float(np.mean(self.state.inlet_temp_c)),
            "throttled_gpu_s": a.throttled_gpu_s,
            "capped_gpu_s": a.capped_gpu_s,
        }
        row.update({f"{c}_power_w": e[c] / dur for c in self.categories})
        totals = {"prefill": 0.0, "generated": 0.0, "training": 0.0}
        for pool in self.fac.pools:
            n = pool.name
            t = a.tokens
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
        self.recorder.record(i, row)
        self.interval_index += 1
        self.acc = Interval()
        self._energy = dict.fromkeys(self.categories, 0.0)
        self._metered = 0.0
        if self.progress is not None:
            self.progress(min(self.env.now, self.duration_s), self.duration_s)
