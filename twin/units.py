"""SI constants and conversions used across the twin, each with its source.

Every quantity in the twin is SI (W, J, s, kg, m, Pa) except temperatures, which are in
degrees Celsius (``_c``); differences of temperature are kelvin (``_k``).
"""

from __future__ import annotations

#: Joules per kilowatt-hour (definition: 1 kWh = 1000 W x 3600 s).
J_PER_KWH: float = 3.6e6
#: Joules per megawatt-hour.
J_PER_MWH: float = 3.6e9
#: Seconds per hour / day / (365-day) year, by definition.
S_PER_HOUR: float = 3600.0
S_PER_DAY: float = 86400.0
S_PER_YEAR: float = 365.0 * 86400.0
#: Offset between degrees Celsius and kelvin (SI brochure, 9th ed., 2019).
ZERO_C_IN_K: float = 273.15

#: Specific heat of liquid water near 25 C [J/(kg K)] (CRC Handbook of Chemistry and
#: Physics, 97th ed., "Properties of water": 4.1813 J/g/K at 25 C).
WATER_CP_J_KG_K: float = 4181.3
#: Density of liquid water near 25 C [kg/m3] (same source: 0.99705 g/cm3).
WATER_DENSITY_KG_M3: float = 997.05
#: Latent heat of vaporisation of water near 25 C [J/kg] (same source: 2442 J/g at 25 C).
WATER_LATENT_HEAT_J_KG: float = 2.442e6
#: Density of dry air at 20 C, 101.325 kPa [kg/m3] (ASHRAE Handbook Fundamentals 2017, ch. 1).
AIR_DENSITY_KG_M3: float = 1.204
#: Specific heat of air at constant pressure near 20 C [J/(kg K)] (same source: 1.006 kJ/kg/K).
AIR_CP_J_KG_K: float = 1006.0
#: Standard atmospheric pressure [Pa] (ISO 2533).
STANDARD_PRESSURE_PA: float = 101_325.0
#: Litres per cubic metre, by definition.
L_PER_M3: float = 1000.0


def c_to_k(temp_c: float) -> float:
    """Convert degrees Celsius to kelvin.

    Examples
    --------
    >>> c_to_k(25.0)
    298.15
    """
    return temp_c + ZERO_C_IN_K


def j_to_kwh(energy_j: float) -> float:
    """Convert joules to kilowatt-hours.

    Examples
    --------
    >>> j_to_kwh(3.6e6)
    1.0
    """
    return energy_j / J_PER_KWH
