"""A GPU's board power and the clock that meets a power limit, compiled cell by cell.

:func:`cell_power_w` is :func:`twin.physics.accelerator.accelerator_power_w` of one cell (the
compiled governor of :mod:`twin.engine.serve_kernel` calls it at every trial clock), and
:func:`clocks_for_limits` is :func:`twin.physics.accelerator.clock_for_power_limit` of every cell
of a block (the training and replay columns' governor in closed form,
:func:`twin.engine.clock_solves._governed_held`): the same operations, equal but for the last bit
of a power (numpy's vectorised power and the C library's differ now and then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numba import njit

from twin._types import FloatArray
from twin.physics.accelerator import CLOCK_SOLVE_STEPS, CLOCK_SOLVE_TOLERANCE

#: The board's figures :func:`cell_power_w` takes, in its order
#: (:class:`~twin.physics.accelerator.AcceleratorPowerParams`).
POWER_FIGURES = (
    "idle_power_w",
    "full_power_w",
    "static_power_fraction",
    "mem_power_fraction",
    "uncore_power_fraction",
    "clock_exponent",
    "voltage_floor_fraction",
)


def power_figures(board: Any) -> FloatArray:
    """A board's :data:`POWER_FIGURES` as the kernels take them (``board``: its ``AcceleratorPowerParams``)."""
    return np.array([float(getattr(board, name)) for name in POWER_FIGURES])


@njit(cache=True, nogil=True, error_model="numpy")
def cell_power_w(busy: float, mem: float, sm: float, clk: float, pw: np.ndarray) -> float:
    """:func:`twin.physics.accelerator.accelerator_power_w` of one cell (``pw``: :data:`POWER_FIGURES`)."""
    f = min(max(clk, 1e-6), 1.0)
    s1 = min(max(sm, 0.0), 1.0)
    s_f = min(1.0, s1 / f)
    k_st, k_m, k_u = pw[2], pw[3], pw[4]
    k_sm = 1.0 - k_st - k_u - k_m
    fc = min(max(f, 0.0), 1.0)
    v = max(pw[6], fc ** ((pw[5] - 1.0) / 2.0))
    g = fc * v**2
    b = min(max(busy, 0.0), 1.0)
    core = (k_st * b + k_sm * s_f) * g
    stretch = max(1.0, s1 / f)
    dyn = core + (k_u * b + k_m * min(max(mem, 0.0), 1.0)) / stretch
    return pw[0] + (pw[1] - pw[0]) * dyn


@njit(cache=True, nogil=True, error_model="numpy")
def _clock_for_limit(lim: float, busy: float, mem: float, sm: float, top: float, pw: np.ndarray, f_min: float) -> float:
    """:func:`twin.physics.accelerator.clock_for_power_limit` of one cell (``pw``: :data:`POWER_FIGURES`).

    The same safeguarded Newton iteration on the same bracket, cell by cell; ``f_min`` is the
    board's ``min_clock_fraction``.
    """
    f_floor = min(max(f_min, 0.0), 1.0)
    hi = min(max(top, f_floor), 1.0)
    idle, span = pw[0], pw[1] - pw[0]
    slack = CLOCK_SOLVE_TOLERANCE * span
    if not cell_power_w(busy, mem, sm, hi, pw) > lim + slack:
        return hi
    if cell_power_w(busy, mem, sm, f_floor, pw) > lim + slack:
        return f_floor
    k_st, k_m, k_u, gamma, v_floor = pw[2], pw[3], pw[4], pw[5], pw[6]
    b_t = min(max(busy, 0.0), 1.0)
    target = (lim - idle) / span
    a = k_st * b_t
    b = 1.0 - k_st - k_u - k_m
    c = k_u * b_t + k_m * min(max(mem, 0.0), 1.0)
    s1 = min(max(sm, 0.0), 1.0)
    # _solve_clock of one cell.
    v2 = v_floor**2
    knee = v_floor ** (2.0 / max(gamma - 1.0, 1e-12)) if gamma > 1.0 else 1.0
    lo = f_floor
    x = hi
    tol = CLOCK_SOLVE_TOLERANCE
    if a == 0.0 and s1 < knee and knee > lo and knee < hi and b * s1 * v2 + c <= target + tol:
        lo = knee
    for _ in range(CLOCK_SOLVE_STEPS):
        if x > knee:
            g, dg = x**gamma, gamma * x ** (gamma - 1.0)
        else:
            g, dg = v2 * x, v2
        if x >= s1:
            val = a * g + b * s1 * g / x + c
            slope = a * dg + b * s1 * (dg / x - g / x**2)
        else:
            val = (a + b) * g + c * x / max(s1, 1e-300)
            slope = (a + b) * dg + c / max(s1, 1e-300)
        fits = val <= target + tol
        if fits:
            lo = x
        else:
            hi = x
        if (fits and val >= target - tol and slope > 0) or hi - lo <= 4e-16:
            break
        newton = x - (val - target) / (slope if slope > 0 else np.inf)
        x = newton if (slope > 0 and lo < newton < hi) else 0.5 * (lo + hi)
    return lo


@njit(cache=True, nogil=True, error_model="numpy")
def _clocks_for_limits(
    lim: np.ndarray, busy: np.ndarray, mem: np.ndarray, sm: np.ndarray, top: np.ndarray, pw: np.ndarray, f_min: float
) -> np.ndarray:
    """:func:`_clock_for_limit` of each cell ``(K, U)``; a cell with its tick before's inputs takes its clock."""
    n_k, n_u = lim.shape
    out = np.empty((n_k, n_u))
    for u in range(n_u):
        for t in range(n_k):
            if t > 0 and (
                lim[t, u] == lim[t - 1, u]
                and busy[t, u] == busy[t - 1, u]
                and mem[t, u] == mem[t - 1, u]
                and sm[t, u] == sm[t - 1, u]
                and top[t, u] == top[t - 1, u]
            ):
                out[t, u] = out[t - 1, u]
            else:
                out[t, u] = _clock_for_limit(lim[t, u], busy[t, u], mem[t, u], sm[t, u], top[t, u], pw, f_min)
    return out


def clocks_for_limits(
    limit_w: FloatArray, busy: FloatArray, mem: FloatArray, sm: FloatArray, top: FloatArray, board: Any
) -> FloatArray:
    """:func:`twin.physics.accelerator.clock_for_power_limit` of every cell, compiled (shapes broadcast).

    Cells along the last axis are columns, along the others ticks: a cell with the inputs of the
    tick before in its column takes its clock (training columns hold one activity for hours).
    ``board``: the :class:`~twin.physics.accelerator.AcceleratorPowerParams` (one value per figure).
    The same iteration as numpy's, cell by cell: equal but for the last bit of a power.
    """
    args = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (limit_w, busy, mem, sm, top)))
    shape = args[0].shape
    cells = [np.ascontiguousarray(a).reshape(-1, shape[-1] if shape else 1) for a in args]
    pw = power_figures(board)
    f_min = float(board.min_clock_fraction)
    got = cast(Callable[..., np.ndarray], _clocks_for_limits)(*cells, pw, f_min)
    return np.asarray(got.reshape(shape))
