"""FleetState: the continuous state of the fleet as a struct of per-server arrays; :func:`at` schedules a call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from twin._types import BoolArray, FloatArray


@dataclass
class FleetState:
    """Per-server state (all GPUs of a server share it; ``gpus_up`` counts the working ones).

    Attributes
    ----------
    t_s : float
        Time to which the state has been advanced. [s]
    die_temp_c : ndarray
        Die temperature of the server's GPUs. [C]
    inlet_temp_c : ndarray
        Coolant or air inlet temperature at the server. [C]
    clock_fraction : ndarray
        SM clock fraction at the end of the last tick. [1]
    backlog_prefill_tokens, backlog_decode_tokens : ndarray
        Tokens waiting per server. [1]
    gpus_up : ndarray
        Working GPUs per server. [1]
    server_up : ndarray
        Server powered and running.
    power_cap_w : ndarray
        Per-GPU power limit (``inf`` when none). [W]
    """

    t_s: float
    die_temp_c: FloatArray
    inlet_temp_c: FloatArray
    clock_fraction: FloatArray
    backlog_prefill_tokens: FloatArray
    backlog_decode_tokens: FloatArray
    gpus_up: FloatArray
    server_up: BoolArray
    power_cap_w: FloatArray

    @classmethod
    def initial(cls, n_servers: int, gpus_per_server: int, inlet_temp_c: float, cap_w: float | None) -> FleetState:
        """A fleet at rest: all up, dies at the inlet temperature, empty queues."""
        full = np.full(n_servers, inlet_temp_c)
        return cls(
            t_s=0.0,
            die_temp_c=full.copy(),
            inlet_temp_c=full.copy(),
            clock_fraction=np.ones(n_servers),
            backlog_prefill_tokens=np.zeros(n_servers),
            backlog_decode_tokens=np.zeros(n_servers),
            gpus_up=np.full(n_servers, float(gpus_per_server)),
            server_up=np.ones(n_servers, dtype=bool),
            power_cap_w=np.full(n_servers, np.inf if cap_w is None else cap_w),
        )


def at(env: simpy.Environment, time_s: float, callback: Callable[[simpy.Event], None]) -> None:
    """Call ``callback`` at simulation time ``time_s`` (now if it has passed)."""
    env.timeout(max(time_s - env.now, 0.0)).callbacks.append(callback)
