"""The engine: a simpy event kernel with the fleet advanced in closed form between events.

simpy holds the discrete events: weather hours, thermal shutdowns, and the faults, repairs,
battery cut-offs and control windows of :mod:`twin.engine.fault_schedule` (with
:mod:`twin.engine.supply` and :mod:`twin.engine.jobs`) and :mod:`twin.engine.controls` (called
through a few hooks). The loop is SimPy's documented ``peek``/``step`` pattern: before each
event the continuous state is advanced from ``state.t_s`` to ``env.peek()``, then the event is
processed. A battery reaching its cut-off inside a block is solved for like a die crossing,
scheduled, and the block recomputed up to that instant.

Advancing is done in blocks of ticks computed as ``(K ticks x G columns)`` arrays. Ticks exist only
where inputs vary (``step_s``) and at report boundaries; with constant inputs a whole inter-event
span is one tick per report interval. A block is *computed* without touching the state and then
*committed*; when a block reveals a change of regime (the cooling plant runs short of capacity, or a
die reaches its shutdown temperature) it is cut at that tick. While a thermal node is away from its
setpoint, temperatures, throttling and heat feed back every tick: each tick is computed from the
nodes' state at its start. A transient block computes many such ticks at once, passing over them
until each starts where the last ended (:mod:`twin.engine.transient`, the one-tick-at-a-time
result to its ``TRANSIENT_TOL_K``), and ends where stepping tick by tick would change course; a die
crossing its shutdown temperature inside a tick is solved for exactly and scheduled as an event at
that instant.

Performance (see ``benchmarks/`` and the README's Performance section):

* **Report intervals do not end blocks** while the plant is at rest (nodes at their setpoints,
  nothing unmet, storage full) and the battery is idle: a block then spans many intervals and
  their rows are closed together, sums split at the boundaries with ``np.add.reduceat``
  (:mod:`twin.engine.segments`). Otherwise a block ends at the next report boundary, as the
  plant's drift limit is measured from a block's start. Rows close before any other event at the
  same instant, so a row's point values (servers up, weather, battery) are those at its end.
* **Identical servers are one column** with a count (:mod:`twin.engine.columns`): servers of a
  pool with identical inputs and state are computed once, and every sum over servers is weighted.
* **Die temperatures** over a run of equal ticks are one linear recurrence solved by
  ``scipy.signal.lfilter`` (the exact RC step, not a Python loop over ticks).
* **Wide blocks on threads** (:mod:`twin.engine.threads`): the serving solve and the governor of a
  block of at least ``2 x MIN_CHUNK_CELLS`` cells run on contiguous chunks of columns, one per
  thread (each column is computed on its own); the chunks join before any sum over columns, so a
  run is the same to the bit on any number of threads.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import simpy

from twin._types import FloatArray
from twin.engine.block import Block, BlockExtras, head_excess
from twin.engine.columns import Columns
from twin.engine.controls import LIMIT_RTOL, Controls
from twin.engine.cooling import FINE_RATE_K_S, SERVER_AIR_SHUTDOWN_C, PhysicalPlant, PlantStep, build_plant
from twin.engine.demand import Demand, DemandModel
from twin.engine.fault_schedule import FaultSystem
from twin.engine.governed import Governed, govern
from twin.engine.pool_stats import PoolStats
from twin.engine.report_rows import interval_kinds, interval_rows, report_columns
from twin.engine.segments import IntervalAccumulator, Segments
from twin.engine.server_constants import ServerConstants, ServeResult
from twin.engine.serving import COMPILED_FROM_CELLS
from twin.engine.state import FleetState
from twin.engine.supply import ChainFlows
from twin.engine.telemetry import Recorder
from twin.engine.threads import chunks, native_limits, rebalanced, resolve_threads, run_all, timed
from twin.engine.transient import TransientStepper
from twin.facility_parts.fleet import Facility
from twin.ledger import BASE_CATEGORIES, Ledger
from twin.physics.thermal import die_steps, rc_time_to_threshold_s

#: Most (tick x column) cells handled in one vectorised block (bounds memory per block).
MAX_BLOCK_CELLS = 100_000
#: Most (tick x rack column) cells in one block. A rack column costs a few sums per tick, a server
#: column the serving solve: where servers group into few columns but racks (each a mix of them)
#: do not, blocks of MAX_BLOCK_CELLS rack cells ran one or two ticks each and their fixed costs
#: (regrouping, the per-server state) dominated (mix-1.5m: 3.7 s CPU, 2.0 s at this bound).
MAX_BLOCK_RACK_CELLS = 400_000
#: Most ticks in one block whatever the columns (bounds the per-tick arrays).
MAX_BLOCK_TICKS = 20_000
#: Advances (event gaps) after which servers are regrouped even if no group split (to merge again).
REGROUP_EVERY = 64
#: Times closer than this are the same instant. [s]
TIME_EPS_S = 1e-9
#: Solves of a site-limited block at most: the share the bisection found, then lowered by the
#: excess where the governor's re-solve lands above the limit (:meth:`Engine._block`).
SITE_REPAIR_ROUNDS = 6
#: Fewest (tick x column) cells a thread computes, else the block is computed serially: half a
#: block of MAX_BLOCK_CELLS. Each numpy call releases the GIL only while it runs, and the serving
#: solve makes hundreds of them per block, some per tick on a row of columns: on smaller chunks the
#: threads mostly wait for each other (measured on mix-38k, 9 472 columns in blocks of 10 ticks, on
#: a busy 2-core VM: two chunks of ~47 000 cells took 20-45 % longer than one thread), so only fleets of
#: more columns than MAX_BLOCK_CELLS (one-tick blocks) are split, into chunks of at least this.
MIN_CHUNK_CELLS = MAX_BLOCK_CELLS // 2


class Engine:
    """One simulation run of a facility.

    Parameters
    ----------
    fac : Facility
        The facility as arrays.
    rng : numpy.random.Generator
        The run's random generator (passed to every subsystem that draws).
    progress : callable, optional
        Called as ``progress(t_s, duration_s)`` after each committed block that closed report
        intervals, with the end of the last one closed.
    debug : bool
        Check the energy ledger after every interval.
    threads : int, optional
        Threads that compute a block's columns (:mod:`twin.engine.threads`); default
        ``TWIN_THREADS``, else every core. 1 computes serially; results are the same to the bit.
    """

    def __init__(
        self,
        fac: Facility,
        rng: np.random.Generator,
        progress: Callable[[float, float], None] | None = None,
        debug: bool = False,
        threads: int | None = None,
    ) -> None:
        run = fac.run
        self.fac = fac
        self.rng = rng
        self.progress = progress
        self.debug = debug
        self.env = simpy.Environment()
        self.duration_s = run.duration_s
        self.step_s = run.step_s
        self.report_s = run.report_interval_s
        self.n_reports = math.ceil(self.duration_s / self.report_s - 1e-9)
        #: End of each report interval (the last one at the end of the run). [s]
        self.report_ends = np.append(np.arange(1, self.n_reports, dtype=np.float64) * self.report_s, self.duration_s)
        self.plant = build_plant(fac.cooling)
        self.weather = fac.weather
        self.boundary = self.weather.at(0.0)
        self.const = ServerConstants.build(fac)
        #: Inference column-ticks solved so far: the serving solve goes compiled past
        #: :data:`~twin.engine.serving.COMPILED_FROM_CELLS` (:meth:`_compile_serving`).
        self._served_cells = 0
        self.demand = DemandModel(fac, rng)
        self.pool_stats = PoolStats(fac, self.demand)
        self.plant.see_weather(self.boundary)
        inlet = self.plant.inlet_temp_c(fac.n_servers)
        cap_w = fac.power_cap_w if fac.power_cap_w is not None else fac.accelerator.max_power_w
        self.state = FleetState.initial(fac.n_servers, fac.gpus_per_server, float(inlet[0]), cap_w)
        self.events: list[dict[str, Any]] = []
        self.faults = FaultSystem(self)
        self.supply = self.faults.power
        self.controls = Controls(self)
        cooling_cats = tuple(f"cooling_{c}" for c in self.plant.components)
        self.categories = (*BASE_CATEGORIES, *cooling_cats, *self.supply.categories)
        self.ledger = Ledger(self.n_reports, self.categories)
        self.pool_names = [p.name for p in fac.pools]
        columns = report_columns(self.categories, self.pool_names, self.faults.columns() + self.controls.columns())
        self.recorder = Recorder(self.n_reports, columns + self.pool_stats.columns())
        self.interval_index = 0
        self.acc = IntervalAccumulator(interval_kinds(self.categories, self.pool_names))
        self.cols = Columns.single(fac.n_servers, fac.servers_per_rack)
        self._const_cols = self.const
        self._since_grouped = REGROUP_EVERY
        self._grouped_by: FloatArray | None = None  # the classes the columns were last found to hold
        #: Transient blocks go one tick at a time before this time, for this many ticks after the next short one.
        self._transient = TransientStepper(self.step_s)
        self.threads = resolve_threads(threads)
        #: The current grouping's constants, the chunks' edges, and the chunks with their constants.
        self._parts: tuple[ServerConstants, list[int], list[tuple[slice, ServerConstants]]] | None = None

    # ----------------------------------------------------------------- event loop
    def run(self) -> None:
        """Advance to the end of the scenario, processing events in time order."""
        with native_limits(self.threads):  # BLAS and OpenMP pools held to the same cap
            self._run()

    def _run(self) -> None:
        end = self.duration_s
        self._room_air_check(0.0)  # a plant without chillers can start in weather too hot for its room
        while True:
            t_next = min(self.env.peek(), end)
            if t_next > self.state.t_s + TIME_EPS_S:
                self._advance(self.state.t_s, t_next)
            if self.env.peek() > end:
                break
            self.env.step()
        if self.interval_index < self.n_reports and self.acc.open["duration_s"] > 0:
            self._close_open()

    def log_event(self, kind: str, **detail: Any) -> None:
        """Record a discrete event (thermal shutdown, fault, control action) with its time."""
        self.events.append({"time_s": float(self.env.now), "event": kind, **detail})

    def _shutdown_at(self, delay_s: float, servers: np.ndarray, room_air_c: float | None = None) -> None:
        """Power ``servers`` off after ``delay_s``: a die at its shutdown temperature, or hot room air."""

        def handler(_: simpy.Event) -> None:
            st = self.state
            newly = servers & st.server_up
            st.server_up &= ~servers
            if newly.any():
                why = {"die_temp_c": float(st.die_temp_c[newly].max())}
                if room_air_c is not None:
                    why = {"room_air_c": round(room_air_c, 2)}
                self.log_event("thermal_shutdown", servers=int(newly.sum()), **why)
                self.faults.on_thermal_shutdown(newly)
                if room_air_c is not None and self.plant.floats_on_weather:
                    # no fault to clear: the weather tripped them; restart once the room air cools
                    self.faults.hot_restart_pending = True

        self.env.timeout(max(delay_s, 0.0)).callbacks.append(handler)

    def _restart_at(self, delay_s: float) -> None:
        """Restart the servers hot room air tripped, after ``delay_s`` (the end of the block committed)."""
        self.env.timeout(max(delay_s, 0.0)).callbacks.append(lambda _: self.faults.restart_when_cool())

    # ------------------------------------------------------------------- columns
    def _keys(self, classes: FloatArray) -> tuple[list[FloatArray], list[FloatArray]]:
        """Per-server and per-rack values that must match for servers (racks) to share a column."""
        st, units = self.state, self.supply.units
        server = [
            classes,
            st.die_temp_c,
            st.backlog_prefill_tokens,
            st.backlog_decode_tokens,
            st.gpus_up,
            st.server_up,
            st.power_cap_w,
            self.faults.jobs.paused,
            units.psu,
        ]
        return [np.asarray(x, dtype=np.float64) for x in server], [np.asarray(units.pdu, dtype=np.float64)]

    def _regroup(self, t_from: float, t_to: float, advance: bool) -> None:
        """Group the servers identical over the ticks of ``[t_from, t_to)`` into columns.

        Called before each block (``advance``: the first of an advance, after events). Within an
        advance the servers of a column keep equal state (each is written from its column), so a
        group splits only where the demand's classes do (a job trace's servers joining or leaving
        jobs); after events the state is checked too. Groups are looked for afresh every
        REGROUP_EVERY calls (to merge servers whose state has come together again, a die settled).
        """
        cols, n = self.cols, self.fac.n_servers
        classes = self.demand.server_classes(t_to, t_from)
        self._since_grouped += 1
        if self._since_grouped < REGROUP_EVERY:
            if cols.identity:
                if not advance:
                    return
            elif advance:
                if cols.is_current(*self._keys(classes)):
                    return
            elif classes is self._grouped_by or np.array_equal(classes, cols.expand(cols.take(classes))):
                self._grouped_by = classes
                return
        self._since_grouped = 0
        self._grouped_by = classes
        if Columns.may_group(classes):
            self.cols = Columns.group(*self._keys(classes), self.fac.servers_per_rack)
        else:
            self.cols = Columns.single(n, self.fac.servers_per_rack)
        if self.cols is cols or (self.cols.identity and cols.identity):
            return
        self._const_cols = self.const if self.cols.identity else self.const.columns(self.cols.take)

    # ------------------------------------------------------------- continuous part
    def _boundaries(self, t_from: float, t_to: float) -> FloatArray:
        """Report ends and weather changes strictly between ``t_from`` and ``t_to`` (every tick ends at them)."""
        ends = self.report_ends
        lo, hi = np.searchsorted(ends, [t_from + TIME_EPS_S, t_to - TIME_EPS_S], side="right")
        weather = self.weather.changes_in(t_from + TIME_EPS_S, t_to - TIME_EPS_S)
        out = np.union1d(ends[lo:hi], weather) if weather.size else ends[lo:hi]
        return out[(out > t_from + TIME_EPS_S) & (out < t_to - TIME_EPS_S)]

    def _tick_edges(self, t_from: float, t_to: float, fine: bool) -> FloatArray:
        """Tick edges from ``t_from`` to ``t_to``: the step grid where inputs vary, report ends, weather hours."""
        reports = self._boundaries(t_from, t_to)
        if not (fine or self.demand.varies):
            return np.concatenate(([t_from], reports, [t_to]))
        first = math.floor(t_from / self.step_s + 1e-9) + 1
        last = math.ceil(t_to / self.step_s - 1e-9)
        inner = np.arange(first, last, dtype=np.float64) * self.step_s
        inner = inner[(inner > t_from + TIME_EPS_S) & (inner < t_to - TIME_EPS_S)]
        if reports.size:
            j = np.clip(np.searchsorted(reports, inner), 1, reports.size) - 1
            near = np.abs(inner - reports[j]) <= TIME_EPS_S
            j2 = np.minimum(j + 1, reports.size - 1)
            near |= np.abs(inner - reports[j2]) <= TIME_EPS_S
            inner = np.union1d(inner[~near], reports)
        return np.concatenate(([t_from], inner, [t_to]))

    def _next_boundary(self, t: float) -> float:
        """The first report end or weather change after ``t``."""
        i = int(np.searchsorted(self.report_ends, t + TIME_EPS_S, side="right"))
        report = float(self.report_ends[min(i, self.n_reports - 1)])
        return report if self.weather.constant else min(report, self.weather.next_change_s(t + TIME_EPS_S))

    def _may_span(self) -> bool:
        """Whether a block may run across report boundaries (see the module docstring)."""
        return bool(self.plant.at_rest and self.supply.steady)

    def _k_max(self) -> int:
        """Most ticks in a block of the current columns."""
        by_racks = MAX_BLOCK_RACK_CELLS // max(self.cols.rack_rep.size, 1)
        return max(1, min(MAX_BLOCK_TICKS, MAX_BLOCK_CELLS // max(self.cols.n, 1), by_racks))

    def _advance(self, t_from: float, t_to: float) -> None:
        t = t_from
        # An event scheduled while advancing (a shutdown crossing) ends the advance at its time.
        while t < min(t_to, self.env.peek()) - TIME_EPS_S:
            stop = min(t_to, self.env.peek())
            span = self._may_span()
            if not span:
                stop = min(stop, self._next_boundary(t))
            transient = self.plant.transient
            if transient or self.demand.varies:  # ticks on the step grid: build no more than a block of them
                stop = min(stop, (math.floor(t / self.step_s + 1e-9) + self._k_max() + 1) * self.step_s)
            self._regroup(t, stop, advance=t == t_from)  # the columns of a block within [t, stop)
            edges = self._tick_edges(t, stop, fine=transient)
            n = min(self._k_max(), edges.size - 1)
            if transient:
                ticks = (edges[:n], edges[1 : n + 1])
                block = self._transient.block(self._compute, self._transient_cut, self.plant, *ticks)
            else:
                block = self._compute(edges[:n], edges[1 : n + 1])
            if span:
                block = self._at_rest_part(block)
            cut = self._first_regime_change(block, transient)
            if cut is not None:
                shorter = self._cut(block, cut)
                if shorter is None:  # a shutdown crossing at this very instant: the event handles it
                    break
                block = shorter
            # the battery reaches its cut-off: scheduled, cut there
            t_empty = self.supply.crossing_s(block.extra.chain, float(block.t0[0]), block.dts)
            if t_empty is not None:
                if t_empty <= t + TIME_EPS_S:
                    break
                block = self._truncate(block, t_empty)
            self._commit(block)
            t = float(block.t1[-1])
            self._room_air_check(t)
        self.state.t_s = t

    def _transient_cut(self, b: Block) -> int | None:
        """Ticks of a transient block to keep: where stepping one tick at a time changes course (None: all).

        0 when the first tick is to be computed on its own: a die reaches its shutdown temperature in
        it (the crossing is solved on that tick alone), or the governor holds a serving GPU in it.
        A block also ends after its :attr:`~twin.engine.block.Block.boost_ticks`.
        """
        plant = self.plant
        nodes = b.plant.nodes_k
        assert isinstance(plant, PhysicalPlant)
        assert nodes is not None
        k = b.dts.size
        hot = np.flatnonzero(b.die_max >= self.fac.accelerator.shutdown_temp_c)
        if hot.size:
            k = int(hot[0])
        # The governor's closed loop is solved to its tolerance over all the ticks it is given,
        # and a queue carries its clocks from tick to tick: where it holds a serving GPU's power,
        # a block of ticks matches one tick at a time to that tolerance only, so it is stepped so.
        inference = self._const_cols.inference
        governed = np.any((b.throttled | b.capped)[:, inference], axis=1) | b.extra.site_limited
        if governed.any():
            k = min(k, int(np.argmax(governed)))
        k = min(k, b.boost_ticks)  # later ticks' boost power came from other queues than their own
        assert b.plant.rate_k is not None
        settled = np.flatnonzero(b.plant.rate_k <= FINE_RATE_K_S)
        if settled.size:
            k = min(k, int(settled[0]) + 1)
        air = plant.room_air_at_c(nodes[1])
        trips = np.zeros(air.shape, dtype=bool)
        if self.fac.liquid_cooled and self.state.server_up.any():
            trips |= air > SERVER_AIR_SHUTDOWN_C
        if self.faults.hot_restart_pending:
            trips |= air <= SERVER_AIR_SHUTDOWN_C
        crossed = np.flatnonzero(trips)
        if crossed.size:
            k = min(k, int(crossed[0]) + 1)
        return k if k < b.dts.size else None

    def _room_air_check(self, t: float) -> None:
        """Room air at ``t`` above the trip powers cold-plate servers off; below it, those it tripped restart."""
        air_c = self.plant.room_air_c  # cold-plate servers: their air-cooled parts trip (air-cooled: the die)
        if self.fac.liquid_cooled and air_c > SERVER_AIR_SHUTDOWN_C and self.state.server_up.any():
            self._shutdown_at(t - self.env.now, self.state.server_up.copy(), room_air_c=air_c)
        elif self.faults.hot_restart_pending and air_c <= SERVER_AIR_SHUTDOWN_C:
            self._restart_at(t - self.env.now)

    def _at_rest_part(self, b: Block) -> Block:
        """A block computed across report boundaries, kept only while the plant stays at rest.

        If some tick leaves heat unmet, the block is recomputed up to the last boundary (report end
        or weather change) before that tick (every tick before it is exact at rest), or, if there
        is none, up to the next boundary: from there on blocks are what they would be without
        spanning.
        """
        bad = np.flatnonzero(b.plant.unmet_w > 0)
        if not bad.size:
            return b
        t_bad = float(b.t0[bad[0]])
        t_start = float(b.t0[0])
        before = self._boundaries(t_start, t_bad + 2 * TIME_EPS_S)
        t_end = float(before[-1]) if before.size else self._next_boundary(t_start)
        k = int(np.count_nonzero(b.t1 <= t_end + TIME_EPS_S))
        if k >= b.t1.size:
            return b
        return self._compute(b.t0[:k], b.t1[:k])

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
            return self._compute(b.t0[:k], b.t1[:k], head_excess(b.excess_k, k))
        shut = self.fac.accelerator.shutdown_temp_c
        st, cols = self.state, b.cols
        if b.die_max[0] < shut:  # a node drifts fast from the first tick: step one fine tick
            t1 = min(b.t1[0], b.t0[0] + self.step_s)
            return self._compute(b.t0[:1], np.array([t1]))
        p_gpu = b.site_w["_gpu_w"][0]
        inlet = b.inlet_c if b.inlet_c.ndim == 1 else b.inlet_c[0]
        tss = inlet + self.fac.thermal_resistance_k_w * p_gpu
        live = cols.take(st.server_up)
        die0 = cols.take(st.die_temp_c)
        t_cross = rc_time_to_threshold_s(die0, tss, self.fac.accelerator.die_time_constant_s, shut)
        t_cross = np.where(live, t_cross, np.inf)
        dt_c = float(np.min(t_cross))
        if not np.isfinite(dt_c):  # reached only through the tick's rising inlet: stop at the tick end
            dt_c = float(b.dts[0])
        hit = live & (t_cross <= dt_c + 1e-6)
        if not hit.any():
            hit = live & (b.die_end >= shut)
        self._shutdown_at(float(b.t0[0]) + dt_c - self.env.now, cols.expand(hit) & st.server_up)
        if dt_c <= TIME_EPS_S:
            return None
        return self._compute(b.t0[:1], b.t0[:1] + dt_c)

    def _truncate(self, b: Block, t_end: float) -> Block:
        """Recompute the block up to ``t_end`` (the ticks before it and the part of the tick it falls in)."""
        k = int(np.count_nonzero(b.t1 < t_end - TIME_EPS_S))
        return self._compute(b.t0[: k + 1], np.concatenate((b.t1[:k], [t_end])), head_excess(b.excess_k, k + 1))

    def _chunks(self, n_ticks: int) -> list[tuple[slice, ServerConstants]] | None:
        """The chunks of columns a block of ``n_ticks`` is computed in, one per thread, with their constants.

        None computes it serially: one thread, a chunk below :data:`MIN_CHUNK_CELLS`, or a site
        power limit (its bisection couples every column in each tick). Chunks are contiguous: of
        equal numbers of columns at first, then with edges that follow the time each chunk took
        (:meth:`_rebalance`; a column computes the same in any chunk).
        """
        n = min(self.threads, self.cols.n, n_ticks * self.cols.n // MIN_CHUNK_CELLS)
        if n < 2 or self.controls.limit_w is not None:
            return None
        if self._parts is None or self._parts[0] is not self._const_cols or len(self._parts[2]) != n:
            self._set_parts([p.start for p in chunks(self.cols.n, n)] + [self.cols.n])
        assert self._parts is not None
        return self._parts[2]

    def _set_parts(self, edges: list[int]) -> None:
        """Chunks of the current columns between ``edges``, with their constants."""
        c = self._const_cols
        parts = [slice(a, b) for a, b in itertools.pairwise(edges)]
        self._parts = (c, edges, [(part, c.columns(operator.itemgetter(part))) for part in parts])

    def _rebalance(self, seconds: list[float]) -> None:
        """Move the chunks' edges toward an even share of the time the last block's chunks took."""
        assert self._parts is not None
        edges = rebalanced(self._parts[1], seconds)
        if edges != self._parts[1]:
            self._set_parts(edges)

    def _compile_serving(self, n_ticks: int) -> None:
        """Count a block's inference cells; past :data:`COMPILED_FROM_CELLS` in all, solve them compiled.

        Loading the compiled solve (:mod:`twin.engine.serve_kernel`) costs a process ~0.5 s, about
        what numpy takes for that many cells, so a small run never pays it. The count is of the
        block's grouped inference columns times its ticks, the same on any number of threads, and
        the two solves give the same run (to the bit on linear rooflines, to the last bit of a power
        on smooth ones) where no GPU reaches its power limit, so there where a run switches changes
        its speed only; where the governor binds, the compiled one puts each cell on its limit more
        closely (:mod:`twin.engine.serve_kernel`). The trace request sources then look up compiled
        too (:meth:`twin.engine.demand.DemandModel.compile`, the same columns to the bit).
        """
        if self.const.compiled:
            return
        self._served_cells += n_ticks * int(np.count_nonzero(self._const_cols.inference))
        if self._served_cells >= COMPILED_FROM_CELLS:
            self.const = replace(self.const, compiled=True)
            self._const_cols = replace(self._const_cols, compiled=True)
            self.demand.compile()
            self.pool_stats.compile()

    def _compute(self, t0: FloatArray, t1: FloatArray, excess_k: FloatArray | None = None) -> Block:
        """Compute the ticks ``[t0, t1)`` from the committed state.

        ``excess_k`` ``(2, K)``: the plant's loop and room excess at each tick's start (inlets and
        the controller's pull-back follow them); None holds them at the committed state.
        """
        fac, st, cols, acc = self.fac, self.state, self.cols, self.fac.accelerator
        dts = t1 - t0
        weather = self.weather.at_times(t0)
        dem = self.demand.block(t0, t1, None if cols.identity else cols.rep)
        dem, dropped = self.faults.route_demand(dem)  # arrivals go to the servers that are up
        inlet = self.plant.inlet_temp_c(cols.n, excess_k)
        self._compile_serving(dts.size)
        parts = self._chunks(dts.size)
        if parts is None:
            g = self._governed(self._const_cols, dem, inlet, dts, None)
        else:  # each chunk of columns on its own thread; the fleet's sums are taken after they join
            tasks = [partial(timed, partial(self._governed, c, dem, inlet, dts, part)) for part, c in parts]
            done = run_all(self.threads, tasks)
            g = Governed.join([r for r, _ in done])
            self._rebalance([s for _, s in done])
        res, clock, p_gpu, floor_extra, p_full = g.res, g.clock, g.p_gpu, g.floor_extra, g.p_full
        thermal_w, limit_w, cap_w = g.thermal_w, g.limit_w, cols.take(st.power_cap_w)
        r_th = fac.thermal_resistance_k_w
        live = cols.take(st.server_up)
        site, metered_w, plant, chain = self._chain(p_gpu, res, dts, weather, excess_k)
        site_limited = np.zeros(dts.size, dtype=bool)
        if self.controls.over_limit(metered_w):  # site limit: cap every GPU to a share of its demand
            run_at = g.run_at
            assert run_at is not None  # a run under a site limit computes its columns serially

            def metered_at(share: FloatArray) -> FloatArray:
                r, _, p, _ = run_at(np.minimum(limit_w, share[:, None] * p_full))
                return self._chain(p, r, dts, weather, excess_k)[1]

            frac = self.controls.solve_fraction(metered_at, metered_w)
            site_limited = frac < 1.0
            capped_w, site_w = limit_w, float(self.controls.limit_w or 0.0)
            for round_ in range(SITE_REPAIR_ROUNDS):
                limit_w = np.minimum(capped_w, frac[:, None] * p_full)
                res, clock, p_gpu, floor_extra = run_at(limit_w)
                site, metered_w, plant, chain = self._chain(p_gpu, res, dts, weather, excess_k)
                # The governor's solve at the share found can land on another clock than the
                # bisection's did where the power is not monotonic in the clock (busy time, and the
                # memory side's power with it, grows as the clock falls): lower those ticks' share
                # by their excess, doubled each round, and solve again.
                over = site_limited & (metered_w > site_w * (1.0 + LIMIT_RTOL))
                if not np.any(over):
                    break
                frac = np.where(over, frac * (site_w / metered_w) ** (2.0**round_), frac)
        gpus = cols.take(st.gpus_up) * live.astype(np.float64)
        die_end, die_max = die_steps(cols.take(st.die_temp_c), inlet + r_th * p_gpu, acc.die_time_constant_s, dts, live)
        site["_gpu_w"] = p_gpu
        # Ticks whose boost power (the die's settling point above) started from the queues the
        # block really leaves them: the clock-1 solve runs the queues at clock 1 throughout, so
        # after a tick whose GPUs ran slower its later ticks start from other queues.
        if res is g.res:
            apart = np.flatnonzero(g.apart[:-1])
        else:  # (solved again under the site limit: the clock-1 solve's backlogs are kept for that)
            assert g.backlogs0 is not None, "a block solved again after the governor spent its top solve"
            prefill0, decode0 = g.backlogs0
            apart = np.flatnonzero(
                np.any(prefill0[:-1] != res.backlog_prefill_tokens[:-1], axis=1)
                | np.any(decode0[:-1] != res.backlog_decode_tokens[:-1], axis=1)
            )
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
            throttled=(p_full > thermal_w) & (thermal_w <= cap_w),
            capped=(p_full > limit_w) & (limit_w < thermal_w),
            die_end=die_end,
            die_max=die_max,
            inlet_c=inlet,
            plant=plant,
            cols=cols,
            extra=BlockExtras(chain, dropped, floor_extra, site_limited, weather),
            excess_k=excess_k,
            boost_ticks=int(apart[0]) + 1 if apart.size else dts.size,
        )

    def _governed(
        self, c: ServerConstants, dem: Demand, inlet: FloatArray, dts: FloatArray, part: slice | None
    ) -> Governed:
        """:func:`twin.engine.governed.govern` over the columns ``part`` of a block (None: all)."""
        return govern(self.fac, self.state, self.cols, self.faults, self.controls, c, dem, inlet, dts, part)

    def _chain(
        self,
        p_gpu: FloatArray,
        res: ServeResult,
        dts: FloatArray,
        weather: dict[str, FloatArray],
        excess_k: FloatArray | None = None,
    ) -> tuple[dict[str, FloatArray], FloatArray, PlantStep, ChainFlows]:
        """Power from the GPUs up the chain to the meter, with the units and sources up now, in each tick's weather."""
        fac, st, units, cols = self.fac, self.state, self.supply.units, self.cols
        up = cols.take(st.server_up).astype(np.float64)
        gpus = cols.take(st.gpus_up) * up
        server = fac.server
        gpu_w = p_gpu * gpus
        other_w = (server.other_idle_power_w + (server.other_max_power_w - server.other_idle_power_w) * res.busy) * up
        other_w = other_w + res.kv_transfer_w * up  # a disaggregated pool's KV transfers (engine.serving)
        it_w = gpu_w + other_w
        psu_loss = fac.stages["psu"].loss_w(it_w, cols.take(units.psu)) * up
        pdu_in = fac.rack_sum(it_w + psu_loss) if cols.identity else cols.rack_in(it_w + psu_loss)
        pdu_loss = fac.stages["pdu"].loss_w(pdu_in, cols.take_rack(units.pdu))
        site = {
            "accelerators": cols.total(gpu_w),
            "server_other": cols.total(other_w),
            "psu_loss": cols.total(psu_loss),
            "pdu_loss": cols.rack_total(pdu_loss),
        }
        ups_out = site["accelerators"] + site["server_other"] + site["psu_loss"] + site["pdu_loss"]
        site["ups_loss"] = fac.stages["ups"].loss_w(ups_out, units.ups)
        heat_liquid = self.plant.liquid_fraction * (site["accelerators"] + site["server_other"])
        heat_air = ups_out + site["ups_loss"] - heat_liquid
        plant = self.plant.compute(heat_liquid, heat_air, dts, weather, site["ups_loss"], excess_k)
        cooling_w = np.zeros_like(dts)
        for name, power in plant.powers_w.items():
            site[f"cooling_{name}"] = power
            cooling_w = cooling_w + power
        site["other_facility"] = np.full(dts.size, fac.other_facility_power_w)
        # Sources: UPS and transformer losses, battery, what the meter reads.
        metered_w, chain = self.supply.balance(site, ups_out, cooling_w, pdu_in, it_w, it_w + psu_loss, cols)
        return site, metered_w, plant, chain

    # -------------------------------------------------------------------- commit
    def _segments(self, b: Block) -> Segments:
        """The block's ticks split at the report boundaries it reaches."""
        i = self.interval_index
        j = int(np.searchsorted(self.report_ends, float(b.t1[-1]) + TIME_EPS_S, side="right"))
        ends = self.report_ends[i:j]
        if not ends.size:
            return Segments.whole(b.t1.size, closes=False)
        k = np.searchsorted(b.t1, ends - TIME_EPS_S)
        if np.any(k >= b.t1.size) or np.any(np.abs(b.t1[np.minimum(k, b.t1.size - 1)] - ends) > TIME_EPS_S):
            raise RuntimeError("a report boundary fell inside a tick")  # _tick_edges puts one at each
        starts = np.concatenate(([0], k + 1))
        starts = starts[starts < b.t1.size]
        return Segments(starts.astype(np.intp), b.t1.size, int(ends.size))

    def _commit(self, b: Block) -> None:
        st, cols, dts = self.state, b.cols, b.dts
        seg = self._segments(b)
        self.plant.commit(b.plant)
        if self.plant.floats_on_weather:  # the weather the next block starts in
            self.plant.see_weather(self.weather.at(float(b.t1[-1])))
        st.die_temp_c = np.array(cols.expand(b.die_end), dtype=np.float64)
        st.inlet_temp_c = self.plant.inlet_temp_c(self.fac.n_servers)
        st.clock_fraction = cols.expand(b.clock[-1]) * np.ones(self.fac.n_servers)
        st.backlog_prefill_tokens = np.array(cols.expand(b.serve.backlog_prefill_tokens[-1]), dtype=np.float64)
        st.backlog_decode_tokens = np.array(cols.expand(b.serve.backlog_decode_tokens[-1]), dtype=np.float64)
        inlet_max = max(float(b.inlet_c.max()), float(st.inlet_temp_c.max()))
        weather = b.extra.weather
        self.boundary = {k: float(x[-1]) for k, x in weather.items()}
        gpus = b.gpus
        v: dict[str, FloatArray] = {
            "duration_s": seg.sum(dts),
            "metered_j": seg.sum(b.metered_w * dts),
            "peak_facility_power_w": seg.max(b.metered_w),
            "max_die_temp_c": seg.max(b.die_max),
            "max_inlet_temp_c": np.full(seg.n, inlet_max),
            "throttled_gpu_s": seg.sum(cols.total(gpus * b.throttled) * dts),
            "capped_gpu_s": seg.sum(cols.total(gpus * b.capped) * dts),
            "clock_gpu_s": seg.sum(cols.total(gpus * b.clock) * dts),
            "gpu_s": seg.sum(float(cols.total(gpus)) * dts),
            "water_kg": seg.sum(b.plant.water_kg_s * dts),
            "free_cooling_s": seg.sum(b.plant.free_cooling_fraction * dts),
            "unmet_heat_j": seg.sum(b.plant.unmet_w * dts),
        }
        for name in self.categories:
            v[f"e:{name}"] = seg.sum(b.site_w[name] * dts)
        res = b.serve
        tallies = {  # products taken per pool's columns (a slice of the block when not grouped)
            "prefill": (res.prefill_tokens, None),
            "generated": (res.decode_tokens, None),
            "training": (res.training_tokens, gpus),
            "step_x_tokens": (res.step_time_s, res.decode_tokens),
            "batch_x_tokens": (res.batch, res.decode_tokens),
            "requests": (b.requests, None),
        }
        last = seg.ends[: seg.closed] - 1
        point: dict[str, FloatArray] = {k: weather[k][last] for k in ("dry_bulb_c", "wet_bulb_c")}
        for pool in self.fac.pools:
            mask = cols.pool_columns(pool.servers, self.fac.n_servers)
            for key, (arr, by) in tallies.items():
                v[f"{pool.name}:{key}"] = seg.sum(cols.total(arr, mask, by))
            backlog = res.backlog_prefill_tokens[last] + res.backlog_decode_tokens[last]
            point[f"{pool.name}_backlog_tokens"] = cols.total(backlog, mask)
        self.acc.add(seg, v)
        self.faults.commit(b, seg)
        self.controls.commit(b, seg)
        self.pool_stats.commit(b, seg)
        if seg.closed:
            self._emit(point)

    # -------------------------------------------------------------------- reports
    def _close_open(self) -> None:
        """Close the open interval at the end of the run."""
        self.acc.close_open()
        self.faults.close_open()
        self.controls.close_open()
        self.pool_stats.close_open()
        st = self.state
        point = {k: np.array([self.boundary[k]]) for k in ("dry_bulb_c", "wet_bulb_c")}
        point |= {
            f"{p.name}_backlog_tokens": np.array(
                [float(st.backlog_prefill_tokens[p.servers].sum() + st.backlog_decode_tokens[p.servers].sum())]
            )
            for p in self.fac.pools
        }
        self._emit(point)

    def _emit(self, point: dict[str, FloatArray]) -> None:
        """Write the rows of the intervals closed since the last call."""
        v = self.acc.take()
        n = v["duration_s"].size
        i0 = self.interval_index
        for name in self.categories:
            self.ledger.book_rows(i0, name, v[f"e:{name}"])
        self.ledger.meter_rows(i0, v["metered_j"])
        if self.debug:
            self.ledger.check(upto=i0 + n)
        row = interval_rows(
            v, point, i0, self.report_s, self.categories, self.pool_names, float(self.state.server_up.sum()), self.plant
        )
        row.update(self.pool_stats.rows())
        row.update(self.faults.rows(v["duration_s"]))
        row.update(self.controls.rows(v["duration_s"]))
        self.recorder.record_rows(i0, n, row)
        self.interval_index += n
        if self.progress is not None:
            self.progress(min(float(self.report_ends[self.interval_index - 1]), self.duration_s), self.duration_s)
