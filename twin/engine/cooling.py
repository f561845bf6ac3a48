"""Cooling models as the engine sees them: heat in, electric power and inlet temperature out."""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray
from twin.scenario.schema import FixedOverheadCooling


class FixedOverheadPlant:
    """Placeholder plant: cooling power is a fixed fraction of the heat removed.

    Its inlet temperature is constant and it never runs short of capacity.
    """

    components: tuple[str, ...] = ("cooling",)

    def __init__(self, spec: FixedOverheadCooling) -> None:
        self.spec = spec

    @property
    def liquid_fraction(self) -> float:
        """Share of server heat taken by liquid."""
        return self.spec.liquid_fraction

    def inlet_temp_c(self, n_servers: int) -> FloatArray:
        """Device inlet temperature per server. [C]"""
        return np.full(n_servers, self.spec.supply_temp_c)

    def step(
        self, heat_liquid_w: FloatArray, heat_air_w: FloatArray, t0_s: FloatArray, dts: FloatArray
    ) -> dict[str, FloatArray]:
        """Electric power of each component per tick. [W]"""
        del t0_s, dts
        return {"cooling": self.spec.overhead_fraction * (heat_liquid_w + heat_air_w)}


def build_plant(spec: FixedOverheadCooling) -> FixedOverheadPlant:
    """The engine's cooling model for a scenario's cooling section."""
    return FixedOverheadPlant(spec)
