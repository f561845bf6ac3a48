"""What faults cost: run totals, per-interval tallies and the fault KPIs of one engine run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin._types import FloatArray
from twin.engine.block import Block
from twin.engine.segments import IntervalAccumulator, Segments
from twin.engine.supply import Battery

#: Per-interval tallies of the time series.
INTERVAL_TALLIES = ("generator_j", "tokens_lost", "tokens_dropped")
#: Time-series columns of the fault subsystem.
COLUMNS = ("battery_soc", "generator_power_w", "tokens_lost", "tokens_dropped", "servers_fed")


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

    def commit(self, b: Block, seg: Segments, shed_w: float, on_generator: bool) -> None:
        """Add a committed block: dropped tokens, load shed (``shed_w`` all along), generator output, overload."""
        dts = b.dts
        drop = b.extra.dropped
        self.tokens_dropped += float(drop.decode.sum())
        self.prefill_tokens_dropped += float(drop.prefill.sum())
        interval = {"tokens_dropped": seg.sum(drop.decode), "generator_j": np.zeros(seg.n)}
        self.load_shed_j += shed_w * float(dts.sum())
        if on_generator:
            self.generator_j += float(b.metered_w @ dts)
            interval["generator_j"] = seg.sum(b.metered_w * dts)
        self.interval.add(seg, interval)
        self.time_overloaded_s += float(b.extra.chain.overloaded @ dts)
        self.ups_load_fraction_max = max(self.ups_load_fraction_max, float(np.max(b.extra.chain.ups_load_fraction)))

    def rows(self, duration_s: FloatArray, soc: float, servers_fed: float) -> dict[str, FloatArray | float]:
        """Values of the intervals closed since the last call (``duration_s`` of each)."""
        i = self.interval.take()
        return {
            "battery_soc": soc,
            "generator_power_w": np.divide(
                i["generator_j"], duration_s, out=np.zeros_like(duration_s), where=duration_s > 0
            ),
            "tokens_lost": i["tokens_lost"],
            "tokens_dropped": i["tokens_dropped"],
            "servers_fed": servers_fed,
        }

    def kpis(self, bat: Battery | None, rollbacks: int) -> dict[str, float]:
        """Run totals of what faults cost."""
        out = {
            "tokens_lost": self.tokens_lost + self.tokens_dropped,
            "tokens_lost_training": self.tokens_lost,
            "tokens_dropped": self.tokens_dropped,
            "prefill_tokens_dropped": self.prefill_tokens_dropped,
            "lost_energy_j": self.lost_energy_j,
            "training_rollbacks": float(rollbacks),
            "load_shed_j": self.load_shed_j,
            "servers_shed_max": self.servers_shed_max,
            "battery_discharged_j": bat.discharged_j if bat is not None else 0.0,
            "battery_charged_j": bat.charged_j if bat is not None else 0.0,
            "generator_output_j": self.generator_j,
            "time_overloaded_s": self.time_overloaded_s,
            "ups_load_fraction_max": self.ups_load_fraction_max,
        }
        # Present only when they happened (a NaN would compare unequal in a deterministic rerun).
        if bat is not None:
            out["battery_min_soc"] = bat.min_soc_seen
            out["battery_end_soc"] = bat.stored_j / bat.capacity_j
            out["battery_capacity_j"] = bat.capacity_j
        if not np.isnan(self.first_shutdown_s):
            out["first_thermal_shutdown_s"] = self.first_shutdown_s
        if not np.isnan(self.time_to_thermal_shutdown_s):
            out["time_to_thermal_shutdown_s"] = self.time_to_thermal_shutdown_s
        return out
