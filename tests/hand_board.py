"""A round-numbered accelerator board for hand calculations (not the catalog's fitted coefficients)."""

from __future__ import annotations

from twin.physics.accelerator import AcceleratorPowerParams

#: A 70-700 W board with k_static 0.15, k_mem 0.30, no uncore share, core power ~ f**3 above a
#: 0.69 voltage floor and a clock floor of 0.25: round values, so that each result can be checked
#: by hand in the tests that use it.
BOARD = AcceleratorPowerParams(
    idle_power_w=70.0,
    full_power_w=700.0,
    static_power_fraction=0.15,
    mem_power_fraction=0.30,
    uncore_power_fraction=0.0,
    clock_exponent=3.0,
    voltage_floor_fraction=0.69,
    min_clock_fraction=0.25,
)
