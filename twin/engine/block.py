"""The typed interface between the kernel and its subsystems.

The kernel (:mod:`twin.engine.kernel`) computes a :class:`Block` of ticks and hands it to each
subsystem's ``commit``; the fault schedule and the controls read the running engine through
:class:`EngineView`. Both live here, below the kernel, so the subsystems never import the kernel
and the engine's modules import one another without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import simpy

from twin._types import BoolArray, FloatArray
from twin.engine.columns import Columns
from twin.engine.cooling import IdealPlant, PhysicalPlant, PlantStep
from twin.engine.demand import DroppedTokens
from twin.engine.server_constants import ServeResult
from twin.engine.state import FleetState
from twin.engine.supply import ChainFlows
from twin.facility_parts.fleet import Facility


@dataclass(frozen=True)
class BlockExtras:
    """What the subsystems computed for a block besides the fleet's own quantities."""

    chain: ChainFlows
    dropped: DroppedTokens
    floor_extra_w: FloatArray
    site_limited: BoolArray
    weather: dict[str, FloatArray]


@dataclass(frozen=True)
class Block:
    """Everything computed for a block of ticks, before it is committed.

    Per-server quantities are ``(K, G)`` arrays over the columns ``cols`` (one column per server
    unless identical servers are grouped); sum them over servers with ``cols.total``.
    """

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
    cols: Columns
    extra: BlockExtras
    #: The plant's loop and room excess at each tick's start ``(2, K)`` the block was computed
    #: with, or None: held at the committed state (:meth:`~twin.engine.transient.TransientStepper.block`).
    excess_k: FloatArray | None = None
    #: Leading ticks whose boost power was found from their own queues: the first tick, and each
    #: next while the clock-1 solve's queues are still the block's (after a tick served slower
    #: than boost they differ, and a later tick then differs from one computed on its own).
    boost_ticks: int = 1


class EngineView(Protocol):
    """What the fault schedule and the controls read of the running engine (:class:`~twin.engine.kernel.Engine`)."""

    fac: Facility
    env: simpy.Environment
    rng: np.random.Generator
    step_s: float
    cols: Columns
    state: FleetState
    plant: IdealPlant | PhysicalPlant

    def log_event(self, kind: str, **detail: Any) -> None:
        """Record a discrete event with its time."""
        ...


def head_excess(excess_k: FloatArray | None, k: int) -> FloatArray | None:
    """The nodes' states of a block's first ``k`` ticks (None stays None)."""
    return None if excess_k is None else excess_k[:, :k]
