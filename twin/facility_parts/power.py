"""Backup power, power controls and the fault schedule, compiled (see :mod:`twin.facility_parts`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatterySpec:
    """The UPS battery bank, sized. [J], [W], [-]"""

    capacity_j: float
    floor_j: float
    initial_j: float
    initial_soc: float
    charge_efficiency: float
    discharge_efficiency: float
    charge_w: float


@dataclass(frozen=True)
class GeneratorSpec:
    """A standby generator at the low-voltage switchboard."""

    rated_w: float
    start_delay_s: float
    fail_to_start_probability: float


@dataclass(frozen=True)
class SupplySpec:
    """Where power comes from: the UPS battery, the generator, and what the UPS feeds."""

    cooling_on_ups: bool
    battery: BatterySpec | None
    generator: GeneratorSpec | None


@dataclass(frozen=True)
class DemandWindow:
    """A curtailment window: at most ``limit_w`` from ``start_s`` for ``duration_s``."""

    start_s: float
    duration_s: float
    limit_w: float


@dataclass(frozen=True)
class ControlSpec:
    """Site power limit, demand-response windows and the training power floor."""

    site_power_limit_w: float | None
    demand_response: tuple[DemandWindow, ...]
    training_power_floor_fraction: float | None


@dataclass(frozen=True)
class ScheduledFault:
    """One scheduled fault (``target``: a feed side or a pool index) and its repair delay."""

    time_s: float
    kind: str
    count: int
    side: str | None
    pool: int | None
    rack: int | None
    duration_s: float | None


@dataclass(frozen=True)
class RandomFaults:
    """Exponential failures and repairs of the units of one component kind."""

    kind: str
    mtbf_s: float
    mttr_s: float


@dataclass(frozen=True)
class FaultSchedule:
    """Every fault the run will see: scheduled ones and the kinds drawn at random."""

    events: tuple[ScheduledFault, ...]
    random: tuple[RandomFaults, ...]
