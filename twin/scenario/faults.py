"""Scenario sections for faults, backup power and power controls.

``events:`` schedules faults; ``reliability:`` draws them from MTBF/MTTR with the run's generator;
``power.ups.battery`` and ``power.generator`` are the backup sources; ``controls:`` holds the site
power limit, demand-response windows and the training power floor. The engine side is
``twin/engine/fault_schedule.py`` (with ``supply.py`` and ``jobs.py``) and ``twin/engine/controls.py``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from twin.errors import FieldProblem
from twin.physics.power import BATTERY_EFFICIENCY
from twin.scenario.strict import Float, Int, StrictModel

#: Fraction of the UPS rated output the charger draws when ``recharge_power_w`` is not given.
#: [EST] typical UPS chargers.
DEFAULT_RECHARGE_FRACTION = 0.10

#: Fault kinds an event may name, with what ``count`` counts for each.
FAULT_KINDS: dict[str, str] = {
    "utility_loss": "the utility feed (count ignored)",
    "generator_fail": "the generator: trips if running, cannot start while failed (count ignored)",
    "feed_loss": "feed A or B of the 2N distribution: its UPS modules, PDUs and PSU inputs (count ignored)",
    "pdu_loss": "the PDU on side A or B of one rack (or of every rack) (count ignored)",
    "ups_fail": "UPS modules",
    "chiller_trip": "chillers",
    "cdu_pump_fail": "CDUs whose pumps stop (their share of the liquid heat path)",
    "crah_fail": "CRAH units",
    "server_fail": "servers (drawn among the running servers of the target workload)",
    "gpu_fail": "GPUs (each drains its server until repaired)",
}
FaultKind = Literal[
    "utility_loss",
    "generator_fail",
    "feed_loss",
    "pdu_loss",
    "ups_fail",
    "chiller_trip",
    "cdu_pump_fail",
    "crah_fail",
    "server_fail",
    "gpu_fail",
]
#: Kinds whose ``target`` is a feed side.
SIDED_KINDS = ("feed_loss", "pdu_loss")
#: Kinds whose ``target`` is a workload name (optional).
SERVER_KINDS = ("server_fail", "gpu_fail")


class _Strict(StrictModel):
    """Base of the fault sections (:class:`twin.scenario.strict.StrictModel`)."""


class FaultEvent(_Strict):
    """One scheduled fault and, optionally, its repair."""

    time_s: Float = Field(ge=0, description="When the fault happens (simulation time).")
    kind: FaultKind
    target: str | None = Field(
        None, description="feed_loss/pdu_loss: A or B; server_fail/gpu_fail: a workload name (default: any)."
    )
    count: Int = Field(1, gt=0, description="Units that fail (chillers, CDUs, CRAHs, UPS modules, servers, GPUs).")
    rack: Int | None = Field(None, ge=0, description="pdu_loss: the rack (default: every rack).")
    duration_s: Float | None = Field(None, gt=0, description="Repaired after this long (default: not in this run).")

    @model_validator(mode="after")
    def _target_fits_kind(self) -> FaultEvent:
        if self.kind in SIDED_KINDS and self.target not in ("A", "B"):
            raise ValueError(f"{self.kind} needs target A or B, got {self.target!r}")
        if self.kind not in SIDED_KINDS + SERVER_KINDS and self.target is not None:
            raise ValueError(f"{self.kind} takes no target, got {self.target!r}")
        if self.rack is not None and self.kind != "pdu_loss":
            raise ValueError(f"rack applies to pdu_loss only, not {self.kind}")
        return self


class ComponentReliability(_Strict):
    """Exponential time to failure and to repair of each unit of one kind."""

    mtbf_h: Float = Field(gt=0, description="Mean time between failures of one unit.")
    mttr_h: Float = Field(gt=0, description="Mean time to repair.")


class Reliability(_Strict):
    """Random faults drawn with the run's generator (Poisson failures, exponential repairs)."""

    utility: ComponentReliability | None = None
    ups: ComponentReliability | None = None
    pdu: ComponentReliability | None = None
    chiller: ComponentReliability | None = None
    cdu: ComponentReliability | None = None
    crah: ComponentReliability | None = None
    server: ComponentReliability | None = None
    gpu: ComponentReliability | None = None

    def kinds(self) -> dict[str, ComponentReliability]:
        """The component kinds that have rates."""
        return {k: v for k, v in self if v is not None}


class Battery(_Strict):
    """The UPS battery: one bank behind the UPS modules."""

    energy_j: Float | None = Field(None, gt=0, description="Energy stored when full.")
    runtime_s: Float | None = Field(
        None, gt=0, description="Or: time from full to min_soc delivering the UPS rated output (30 s - 5 min typical)."
    )
    min_soc: Float = Field(0.1, ge=0, lt=1, description="[EST] state of charge at which the UPS cuts off.")
    initial_soc: Float = Field(1.0, ge=0, le=1)
    charge_efficiency: Float = Field(
        BATTERY_EFFICIENCY, gt=0, le=1, description="[EST] one-way (twin.physics.power.BATTERY_EFFICIENCY)."
    )
    discharge_efficiency: Float = Field(
        BATTERY_EFFICIENCY, gt=0, le=1, description="[EST] one-way (twin.physics.power.BATTERY_EFFICIENCY)."
    )
    recharge_power_w: Float | None = Field(
        None,
        gt=0,
        description=f"Charger input power (default: {DEFAULT_RECHARGE_FRACTION:.0%} of the UPS rated output [EST]).",
    )

    @model_validator(mode="after")
    def _one_size(self) -> Battery:
        if (self.energy_j is None) == (self.runtime_s is None):
            raise ValueError("give exactly one of energy_j or runtime_s")
        if self.initial_soc < self.min_soc:
            raise ValueError(f"initial_soc ({self.initial_soc}) must be >= min_soc ({self.min_soc})")
        return self


class Generator(_Strict):
    """A standby generator at the low-voltage switchboard (after the MV transformer)."""

    rated_w: Float = Field(gt=0, description="Rated electrical output.")
    start_delay_s: Float = Field(10.0, ge=0, description="Outage to load pick-up (NFPA 110 Type 10: 10 s).")
    fail_to_start_probability: Float = Field(0.0, ge=0, le=1, description="Drawn at each start.")


class DemandResponseWindow(_Strict):
    """A curtailment window: the site draws at most ``limit_w`` from ``start_s`` for ``duration_s``."""

    start_s: Float = Field(ge=0)
    duration_s: Float = Field(gt=0)
    limit_w: Float = Field(gt=0)


class Controls(_Strict):
    """Power controls enforced by GPU power capping."""

    site_power_limit_w: Float | None = Field(
        None, gt=0, description="Metered facility power limit, held by capping GPU power in proportion."
    )
    demand_response: list[DemandResponseWindow] = Field(default_factory=list)
    training_power_floor_fraction: Float | None = Field(
        None, gt=0, le=1, description="Training GPUs draw at least this share of their TDP (power smoothing)."
    )


def check_fault_references(events: list[FaultEvent], workloads: list[str], n_racks: int) -> list[FieldProblem]:
    """Events that name a workload or rack that does not exist."""
    problems = []
    for i, ev in enumerate(events):
        if ev.kind in SERVER_KINDS and ev.target is not None and ev.target not in workloads:
            valid = ", ".join(workloads) or "(none)"
            problems.append(FieldProblem(f"events.{i}.target", f"unknown workload {ev.target!r}; valid: {valid}"))
        if ev.rack is not None and ev.rack >= n_racks:
            problems.append(
                FieldProblem(f"events.{i}.rack", f"must be < {n_racks} (racks in the fleet), got {ev.rack}")
            )
    return problems


def check_chillerless_faults(events: list[FaultEvent], reliability: Reliability) -> list[FieldProblem]:
    """Chiller faults on a plant that has no chillers (``cooling.n_chillers: 0``)."""
    why = "the plant has no chillers (cooling.n_chillers is 0)"
    trips = [i for i, ev in enumerate(events) if ev.kind == "chiller_trip"]
    problems = [FieldProblem(f"events.{i}.kind", f"chiller_trip: {why}") for i in trips]
    if reliability.chiller is not None:
        problems.append(FieldProblem("reliability.chiller", f"no chiller to fail: {why}"))
    return problems


__all__ = [
    "FAULT_KINDS",
    "Battery",
    "ComponentReliability",
    "Controls",
    "DemandResponseWindow",
    "FaultEvent",
    "Generator",
    "Reliability",
    "check_chillerless_faults",
    "check_fault_references",
]
