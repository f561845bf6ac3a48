"""Chiller staging: how many of the plant's chillers run, and their power, for a load.

An ideal sequencing controller: among the feasible numbers of equally loaded chillers (each
within its capacity, no more than are available), the count that draws the least total power,
ties going to fewer units. One unit is priced by
:meth:`~twin.physics.plant_params.PlantParams.unit_power_w` (the EnergyPlus EIR model,
:func:`~twin.physics.cooling.chiller_power_w`; sources there). Step 5 of
:func:`~twin.physics.cooling_plant.plant_power`. The two constants are numerical, not physical:
a memory bound and a tie tolerance.
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray
from twin.physics.plant_params import PlantParams

#: Most (chiller count x time step) candidates evaluated in one broadcast call (bounds memory).
STAGING_CELLS = 250_000


def _staged_chiller_power_w(
    load_w: FloatArray,
    n_available: FloatArray,
    t_cond_c: FloatArray,
    unit_capacity_w: FloatArray,
    params: PlantParams,
) -> tuple[FloatArray, FloatArray]:
    """Least total power over the feasible numbers of equally loaded chillers.

    The candidate counts ``k = 1 .. n_max`` are evaluated together, broadcast along a leading
    axis (a large plant has hundreds of chillers), and chosen as a scan in order would: a count
    replaces the one held where it draws less by more than a relative 1e-9, so ties (all units
    cycling below PLR_min draw the same) go to the fewer chillers (:func:`_scan_least`).
    """
    best_w = np.where(load_w > 0.0, np.inf, 0.0)
    running = np.zeros_like(load_w)
    n_max = int(np.max(n_available, initial=0.0))
    size = max(int(np.size(best_w)), 1)
    per_call = max(1, STAGING_CELLS // size)
    for first in range(1, n_max + 1, per_call):
        ks = np.arange(first, min(first + per_call, n_max + 1), dtype=np.float64)
        k = ks.reshape((-1,) + (1,) * np.ndim(best_w))
        feasible = (load_w > 0.0) & (k <= n_available) & (load_w <= k * unit_capacity_w * (1.0 + 1e-12))
        power_w = k * params.unit_power_w(load_w / k, t_cond_c)
        best_w, running = _scan_least(np.where(feasible, power_w, np.nan), ks, best_w, running)
    return np.where(np.isfinite(best_w), best_w, 0.0), running


#: A candidate replaces the one held only where it draws less by more than this (relative).
_STAGING_RTOL = 1e-9


def _scan_least(
    power_w: FloatArray, ks: FloatArray, best_w: FloatArray, running: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The scan of candidates ``ks`` in order (NaN: infeasible) from the held ``best_w``, ``running``.

    Candidate ``i`` replaces the one held where ``P_i < best (1 - rtol)``. Only a strict running
    minimum can (the one held is never below the least seen so far), so where no new minimum lies
    within ``rtol`` of the one before it the scan keeps every new minimum and ends on the first
    candidate with the least power: an ``argmin``, no loop. Where such a near tie lies the
    candidates are scanned one at a time, as the rule says.
    """
    p = np.where(np.isnan(power_w), np.inf, power_w)
    before = np.minimum.accumulate(np.concatenate((best_w[None], p[:-1])), axis=0)  # least seen before i
    new = p < before
    near = new & (p >= before * (1.0 - _STAGING_RTOL))
    if np.any(near):
        for i, kk in enumerate(ks):
            better = p[i] < best_w * (1.0 - _STAGING_RTOL)
            best_w = np.where(better, p[i], best_w)
            running = np.where(better, kk, running)
        return best_w, running
    first = np.argmin(p, axis=0)
    least = np.take_along_axis(p, first[None], axis=0)[0]
    better = least < best_w
    return np.where(better, least, best_w), np.where(better, ks[first], running)
