"""Expected request arrivals of synthetic profiles, integrated exactly over each tick.

The twin's serving model is a fluid model: in each physics tick it needs the expected number of
requests (and tokens) arriving, not individual draws. For the diurnal profile
``rate(t) = m (1 + a cos(2 pi (h(t) - h_peak) / 24))`` with ``a = peak_to_mean - 1`` and ``h`` the
local hour, the integral over ``[t0, t1)`` is closed-form, so any tick length is exact.
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray
from twin.units import S_PER_DAY, S_PER_HOUR

#: [EST] Local hour of the diurnal request peak, early afternoon (also the scenario's default). [h]
PEAK_HOUR: float = 14.0


def expected_arrivals(
    t0_s: FloatArray,
    t1_s: FloatArray,
    mean_rate_per_s: float,
    peak_to_mean: float = 1.0,
    peak_hour: float = PEAK_HOUR,
    start_hour: float = 0.0,
) -> FloatArray:
    """Expected requests arriving in each interval ``[t0, t1)``.

    Parameters
    ----------
    t0_s, t1_s : numpy.ndarray
        Interval bounds, seconds after the scenario start. [s]
    mean_rate_per_s : float
        Daily mean request rate. [1/s]
    peak_to_mean : float
        Peak rate over mean rate (1 gives a constant rate). [1]
    peak_hour : float
        Local hour of the peak. [h]
    start_hour : float
        Local hour of ``t = 0`` (fractional). [h]

    Returns
    -------
    numpy.ndarray
        Expected arrivals per interval. [1]

    Examples
    --------
    Over a whole day the diurnal profile delivers exactly mean x 86 400 requests:

    >>> float(expected_arrivals(np.array([0.0]), np.array([86400.0]), 2.0, 1.5)[0])
    172800.0
    """
    a = peak_to_mean - 1.0
    omega = 2.0 * np.pi / S_PER_DAY
    phase0 = (start_hour - peak_hour) * S_PER_HOUR
    t0 = np.asarray(t0_s, dtype=np.float64) + phase0
    t1 = np.asarray(t1_s, dtype=np.float64) + phase0
    integral = (t1 - t0) + a * (np.sin(omega * t1) - np.sin(omega * t0)) / omega
    return np.asarray(mean_rate_per_s * integral)
