"""How a GPU die's temperature moves its power and clock below the slowdown point.

Two effects of the die temperature. The engine reads them at the temperature the die settles at
(in seconds, within a tick) under the power it would draw without them: one explicit pass, no
algebraic loop with the thermal RC.

* **Leakage** rises exponentially with die temperature (sub-threshold leakage, Liao et al. [1]_;
  the GPU power models of Hong & Kim [2]_ and GPUWattch [3]_ hold static power at one
  temperature)::

      L(T) = L_ref * 2**((T - T_ref) / T_2)

  ``L_ref`` is the leakage at ``T_ref`` and ``T_2`` the warming that doubles it. The fitted power
  model (:mod:`twin.physics.accelerator`) already contains the leakage of the dies it was measured
  on, an air-cooled board at inlet ``T_fit_in`` with die-to-inlet resistance ``R_fit`` (the
  catalog's ``fit_die_rise_k`` over the power limit: 40 K / 700 W on an H100, 65 C at 700 W
  [EST]), whose die sat at ``T_fit = T_fit_in + R_fit P``. A die at ``T`` draws the difference on
  top::

      dP = L(T) - L(T_fit),   T_fit = T_fit_in + (R_fit / R) (T - T_in)

  with ``(T - T_in) / R`` the power that holds the die ``T - T_in`` above its inlet. At the
  measurements' conditions (``T_in = T_fit_in``, ``R = R_fit``) ``dP = 0`` at every load, idle
  included; a warmer inlet adds power, a cold plate (smaller ``R``) saves some.

* **Boost bins**: below the slowdown temperature NVIDIA's GPU Boost lowers the top clock by one
  bin (a step of the voltage-frequency curve) for every ``dT_bin`` the die is above a starting
  temperature [4]_::

      f_top = max(f_min, 1 - b * floor(max(0, T - T_bin) / dT_bin))

  with ``b`` one bin over the boost clock. The power governor then works below ``f_top``.

Coefficients are in ``twin/catalog/accelerators.csv`` (``leakage_*``, ``fit_inlet_temp_c``,
``boost_bin_*``).

References
----------
.. [1] W. Liao, L. He, K. M. Lepak, "Temperature and supply voltage aware performance and power
   modeling at microarchitecture level", IEEE TCAD 24(7), 2005 (leakage exponential in
   temperature).
.. [2] S. Hong, H. Kim, "An integrated GPU power and performance model", ISCA 2010 (GPU power
   rises with die temperature at fixed work, through leakage).
.. [3] J. Leng et al., "GPUWattch: enabling energy optimizations in GPGPUs", ISCA 2013.
.. [4] NVIDIA GPU Boost: clock and voltage move along a V-f curve of fine-grained points with the
   die temperature (AnandTech, "The NVIDIA GeForce GTX 1080 & 1070 Founders Edition Review",
   2016, "GPU Boost 3.0"); the bin size and spacing are [EST] (catalog).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin._types import FloatArray, Numeric


@dataclass(frozen=True, kw_only=True)
class DieResponseParams:
    """Coefficients of the die's leakage and boost-bin response (module docstring).

    Attributes
    ----------
    leakage_ref_power_w : float
        ``L_ref``: leakage power at ``leakage_ref_temp_c``. [W]
    leakage_ref_temp_c : float
        ``T_ref``. [C]
    leakage_doubling_k : float
        ``T_2``: warming that doubles the leakage. [K]
    fit_inlet_temp_c : float
        ``T_fit_in``: inlet of the boards the power model was measured on. [C]
    fit_thermal_resistance_k_w : float
        ``R_fit``: their die-to-inlet resistance. [K/W]
    boost_bin_fraction : float
        ``b``: one boost bin over the boost clock. [1]
    boost_bin_k : float
        ``dT_bin``: die warming per bin. [K]
    boost_bin_start_temp_c : float
        ``T_bin``: die temperature above which bins drop. [C]
    min_clock_fraction : float
        ``f_min``: lowest clock the governor uses. [1]
    """

    leakage_ref_power_w: float
    leakage_ref_temp_c: float
    leakage_doubling_k: float
    fit_inlet_temp_c: float
    fit_thermal_resistance_k_w: float
    boost_bin_fraction: float
    boost_bin_k: float
    boost_bin_start_temp_c: float
    min_clock_fraction: float


def leakage_power_w(die_temp_c: Numeric, *, params: DieResponseParams) -> FloatArray:
    """Leakage power ``L(T) = L_ref 2**((T - T_ref)/T_2)``.

    Parameters
    ----------
    die_temp_c : numeric
        Die temperature. [C]
    params : DieResponseParams
        ``L_ref``, ``T_ref``, ``T_2`` read here.

    Returns
    -------
    numpy.ndarray
        [W]

    Examples
    --------
    70 W at 65 C doubling every 25 K: 140 W at 90 C, 35 W at 40 C.

    >>> p = DieResponseParams(leakage_ref_power_w=70.0, leakage_ref_temp_c=65.0, leakage_doubling_k=25.0,
    ...     fit_inlet_temp_c=25.0, fit_thermal_resistance_k_w=0.085, boost_bin_fraction=0.0076,
    ...     boost_bin_k=5.0, boost_bin_start_temp_c=60.0, min_clock_fraction=0.25)
    >>> leakage_power_w([90.0, 65.0, 40.0], params=p)
    array([140.,  70.,  35.])
    """
    t = np.asarray(die_temp_c, dtype=np.float64)
    return np.asarray(params.leakage_ref_power_w * np.exp2((t - params.leakage_ref_temp_c) / params.leakage_doubling_k))


def fit_die_temp_c(
    die_temp_c: Numeric, inlet_temp_c: Numeric, thermal_resistance_k_w: Numeric, *, params: DieResponseParams
) -> FloatArray:
    """Die temperature the power model's measurements had at the same power, ``T_fit``.

    Parameters
    ----------
    die_temp_c : numeric
        Die temperature. [C]
    inlet_temp_c : numeric
        Its coolant or air inlet temperature. [C]
    thermal_resistance_k_w : numeric
        Its die-to-inlet resistance ``R``. [K/W]
    params : DieResponseParams
        ``T_fit_in`` and ``R_fit`` read here.

    Returns
    -------
    numpy.ndarray
        ``T_fit_in + (R_fit / R) (T - T_in)``. [C]

    Examples
    --------
    A cold plate (0.04 K/W) holding a die 20 K over its 35 C water dissipates 500 W, which held the
    measured air-cooled die (0.085 K/W, 25 C inlet) at 25 + 42.5 = 67.5 C:

    >>> p = DieResponseParams(leakage_ref_power_w=70.0, leakage_ref_temp_c=65.0, leakage_doubling_k=25.0,
    ...     fit_inlet_temp_c=25.0, fit_thermal_resistance_k_w=0.085, boost_bin_fraction=0.0076,
    ...     boost_bin_k=5.0, boost_bin_start_temp_c=60.0, min_clock_fraction=0.25)
    >>> round(float(fit_die_temp_c(55.0, 35.0, 0.04, params=p)), 6)
    67.5
    """
    rise = np.asarray(die_temp_c, dtype=np.float64) - np.asarray(inlet_temp_c, dtype=np.float64)
    ratio = params.fit_thermal_resistance_k_w / np.asarray(thermal_resistance_k_w, dtype=np.float64)
    return np.asarray(params.fit_inlet_temp_c + ratio * rise)


def leakage_excess_w(
    die_temp_c: Numeric, inlet_temp_c: Numeric, thermal_resistance_k_w: Numeric, *, params: DieResponseParams
) -> FloatArray:
    """Power a die draws beyond the fitted model through its temperature, ``L(T) - L(T_fit)``.

    Parameters
    ----------
    die_temp_c, inlet_temp_c, thermal_resistance_k_w : numeric
        As in :func:`fit_die_temp_c`. [C], [C], [K/W]
    params : DieResponseParams
        The die's coefficients.

    Returns
    -------
    numpy.ndarray
        [W]; 0 at the measurements' conditions, negative for a die cooler than they had it.

    Examples
    --------
    The measured board itself (25 C air, 0.085 K/W) draws the model; 10 K warmer air with the die
    10 K warmer adds ``L(T) (1 - 2**(-10/25))`` = 70 x (1 - 0.7579) = 16.95 W at ``T`` = 65 C:

    >>> p = DieResponseParams(leakage_ref_power_w=70.0, leakage_ref_temp_c=65.0, leakage_doubling_k=25.0,
    ...     fit_inlet_temp_c=25.0, fit_thermal_resistance_k_w=0.085, boost_bin_fraction=0.0076,
    ...     boost_bin_k=5.0, boost_bin_start_temp_c=60.0, min_clock_fraction=0.25)
    >>> leakage_excess_w([55.0, 65.0], [25.0, 35.0], 0.085, params=p).round(2)
    array([ 0.  , 16.95])
    """
    t_fit = fit_die_temp_c(die_temp_c, inlet_temp_c, thermal_resistance_k_w, params=params)
    return np.asarray(leakage_power_w(die_temp_c, params=params) - leakage_power_w(t_fit, params=params))


def boost_clock_fraction(die_temp_c: Numeric, *, params: DieResponseParams) -> FloatArray:
    """Top clock GPU Boost allows at a die temperature, over the boost clock, ``f_top``.

    Parameters
    ----------
    die_temp_c : numeric
        Die temperature. [C]
    params : DieResponseParams
        ``b``, ``dT_bin``, ``T_bin``, ``f_min`` read here.

    Returns
    -------
    numpy.ndarray
        ``max(f_min, 1 - b floor(max(0, T - T_bin) / dT_bin))``. [1]

    Examples
    --------
    15 MHz bins of a 1980 MHz boost clock every 5 K above 60 C: none at 64.9 C, one at 65 C,
    four at 82 C (1920 MHz):

    >>> p = DieResponseParams(leakage_ref_power_w=70.0, leakage_ref_temp_c=65.0, leakage_doubling_k=25.0,
    ...     fit_inlet_temp_c=25.0, fit_thermal_resistance_k_w=0.085, boost_bin_fraction=15 / 1980,
    ...     boost_bin_k=5.0, boost_bin_start_temp_c=60.0, min_clock_fraction=0.25)
    >>> (boost_clock_fraction([50.0, 64.9, 65.0, 82.0], params=p) * 1980).round(6)
    array([1980., 1980., 1965., 1920.])
    """
    over = np.maximum(np.asarray(die_temp_c, dtype=np.float64) - params.boost_bin_start_temp_c, 0.0)
    bins = np.floor(over / params.boost_bin_k)
    return np.asarray(np.clip(1.0 - params.boost_bin_fraction * bins, params.min_clock_fraction, 1.0))
