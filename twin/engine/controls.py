"""Power controls: a site power limit held by GPU capping, demand response and a training power floor.

* **Site power limit** (``controls.site_power_limit_w``): when a tick's metered facility power
  would exceed the limit, every GPU's power is limited to the same fraction ``a`` of what it
  would draw uncapped (proportional capping); ``a`` is found per tick by bisection on the whole
  chain (serving at the lowered clock, conversion losses, cooling) so the meter reads at most the
  limit. The GPU governor cannot go below its lowest clock: if even that is too much, the site
  stays above the limit and the time is reported.
* **Demand response** (``controls.demand_response``): windows during which the limit is lowered;
  their edges are simpy events.
* **Oversubscription** is a scenario, not a switch: more servers than the power chain's nameplate
  allows (``check_power_chain_capacity`` warns), kept safe by the site limit; the KPI
  ``oversubscription`` is nameplate IT power over the UPS capacity, minus one.
* **Training power floor** (``controls.training_power_floor_fraction``): GPUs of training pools draw
  at least that share of their TDP (never above their cap), burning power while the job stalls
  (checkpoints, restarts) so the grid sees a smaller step; the extra energy is reported as
  ``smoothing_energy_j``. This is the GPU-side "power floor" of NVIDIA's GB300 power smoothing.
* **Grid ramp rate**: the largest change of metered power between consecutive ticks, divided by
  the physics tick ``step_s`` (a step at an event counts as happening within one tick).

References
----------
.. [1] NVIDIA Technical Blog, "How New GB300 NVL72 Features Provide Steady Power for AI" (2025):
   power floor, energy storage in the PSUs, ramp-rate limits.
.. [2] Choukse et al., "Power Stabilization for AI Training Datacenters", arXiv 2508.14318 (2025).
.. [3] Patel et al., "POLCA: Power Oversubscription in LLM Cloud Providers", ASPLOS 2024: +30 %
   servers under the same power budget (parameters.md 5.1, 7.11).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from twin._types import FloatArray
from twin.engine.block import Block, EngineView
from twin.engine.segments import IntervalAccumulator, Segments

#: Bisection steps for the capping fraction (2**-30 ~ 1e-9 of the uncapped power).
BISECTION_STEPS = 30
#: Metered power within this share above the limit counts as at the limit.
LIMIT_RTOL = 1e-6


class Controls:
    """The control layer of one engine run."""

    def __init__(self, eng: EngineView) -> None:
        self.eng = eng
        fac = eng.fac
        spec = fac.controls
        self.base_limit_w = spec.site_power_limit_w
        self.limit_w = self.base_limit_w
        self._active: dict[int, float] = {}
        for i, window in enumerate(spec.demand_response):
            self._schedule_window(i, window.start_s, window.limit_w)
            self._schedule_window(i, window.start_s + window.duration_s, None)
        self.floor_w = np.zeros(fac.n_servers)
        if spec.training_power_floor_fraction is not None:
            for pool in fac.pools:
                if pool.kind == "training":
                    self.floor_w[pool.servers] = spec.training_power_floor_fraction * fac.accelerator.max_power_w
        self.has_floor = bool(np.any(self.floor_w > 0))
        self._prev_w: float | None = None
        self.time_above_limit_s = 0.0
        self.time_limited_s = 0.0
        self.time_throttled_s = 0.0
        self.smoothing_j = 0.0
        self.ramp_max = 0.0
        self._interval = IntervalAccumulator({"ramp": "max", "smoothing_j": "sum", "limit": "min"})
        self.first_throttle_s: float | None = None

    def _schedule_window(self, index: int, at_s: float, limit_w: float | None) -> None:
        def edge(_: simpy.Event) -> None:
            self._window(index, limit_w)

        self.eng.env.timeout(at_s).callbacks.append(edge)

    def _window(self, index: int, limit_w: float | None) -> None:
        if limit_w is None:
            self._active.pop(index, None)
        else:
            self._active[index] = limit_w
        limits = [v for v in (self.base_limit_w, *self._active.values()) if v is not None]
        self.limit_w = min(limits) if limits else None
        self.eng.log_event("demand_response" if limit_w is not None else "demand_response_end", limit_w=self.limit_w)

    # ------------------------------------------------------------- kernel hooks
    def apply_floor(
        self, p_gpu_w: FloatArray, limit_w: FloatArray, part: slice | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Raise training GPUs to their floor (never above their limit); return power and the extra.

        ``p_gpu_w`` and ``limit_w`` hold the columns ``part`` (None: all).
        """
        if not self.has_floor:
            return p_gpu_w, np.zeros_like(p_gpu_w)
        floor_w = self.eng.cols.take(self.floor_w)
        floor = np.minimum(floor_w if part is None else floor_w[part], limit_w)
        raised = np.maximum(p_gpu_w, floor)
        return raised, raised - p_gpu_w

    def over_limit(self, metered_w: FloatArray) -> bool:
        """True when some tick would draw more than the site limit."""
        return self.limit_w is not None and bool(np.any(metered_w > self.limit_w * (1.0 + LIMIT_RTOL)))

    def solve_fraction(self, metered_of: Callable[[FloatArray], FloatArray], uncapped_w: FloatArray) -> FloatArray:
        """Largest per-tick fraction ``a`` of uncapped GPU power whose metered power meets the limit.

        ``uncapped_w`` is each tick's metered power uncapped: a tick already within the limit keeps
        ``a = 1`` (it is not limited; the bisection alone would stop a hair below 1).
        """
        assert self.limit_w is not None
        limit = self.limit_w * (1.0 + LIMIT_RTOL)
        lo = np.zeros(uncapped_w.size)
        hi = np.ones(uncapped_w.size)
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            # Solved to the limit itself: the tolerance is headroom for the governor's re-solve at ``lo``.
            ok = metered_of(mid) <= self.limit_w
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        return np.where(uncapped_w <= limit, 1.0, lo)

    def commit(self, b: Block, seg: Segments) -> None:
        """Ramp rate, time above the limit, thermal throttling and smoothing energy of a committed block."""
        dts = b.dts
        w = b.metered_w
        prev = w[0] if self._prev_w is None else self._prev_w
        ramp = np.abs(np.diff(np.concatenate(([prev], w)))) / self.eng.step_s
        self.ramp_max = max(self.ramp_max, float(ramp.max()))
        self._prev_w = float(w[-1])
        limit = np.inf
        if self.limit_w is not None:
            self.time_above_limit_s += float((w > self.limit_w * (1.0 + LIMIT_RTOL)) @ dts)
            limit = self.limit_w
        self.time_limited_s += float(b.extra.site_limited @ dts)
        live = b.gpus > 0
        hot = np.any(b.throttled & live, axis=1)
        self.time_throttled_s += float(hot @ dts)
        if self.first_throttle_s is None and hot.any():
            self.first_throttle_s = float(b.t0[int(np.argmax(hot))])
        extra_j = b.cols.total(b.extra.floor_extra_w * b.gpus) * dts
        self.smoothing_j += float(extra_j.sum())
        per_segment = {"ramp": seg.max(ramp), "smoothing_j": seg.sum(extra_j), "limit": np.full(seg.n, limit)}
        self._interval.add(seg, per_segment)

    # ---------------------------------------------------------------- reporting
    def columns(self) -> list[str]:
        """Time-series columns this layer fills."""
        return ["site_limit_w", "grid_ramp_max_w_per_s", "smoothing_power_w"]

    def close_open(self) -> None:
        """Close the open interval (the run's end)."""
        self._interval.close_open()

    def rows(self, duration_s: FloatArray) -> dict[str, FloatArray]:
        """Values of the intervals closed since the last call (``duration_s`` of each)."""
        i = self._interval.take()
        limit = i["limit"]
        return {
            "site_limit_w": np.where(np.isfinite(limit), limit, np.nan),
            "grid_ramp_max_w_per_s": np.maximum(i["ramp"], 0.0),
            "smoothing_power_w": np.divide(
                i["smoothing_j"], duration_s, out=np.zeros_like(duration_s), where=duration_s > 0
            ),
        }

    def kpis(self) -> dict[str, Any]:
        """Run totals of the controls."""
        fac = self.eng.fac
        ups = fac.stages["ups"]
        capacity_w = ups.units_needed * ups.rated_w
        out = {
            "grid_ramp_max_w_per_s": self.ramp_max,
            "time_above_site_limit_s": self.time_above_limit_s,
            "time_site_limited_s": self.time_limited_s,
            "time_throttled_s": self.time_throttled_s,
            "smoothing_energy_j": self.smoothing_j,
            "oversubscription": fac.nameplate_it_power_w / capacity_w - 1.0,
        }
        if self.first_throttle_s is not None:  # present only when it happened
            out["first_thermal_throttle_s"] = self.first_throttle_s
        return out
