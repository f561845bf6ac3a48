"""The cooling plant, compiled: physics parameters and the thermal capacities of its nodes.

Built by :func:`twin.facility.build_facility` (:func:`twin.facility_inputs.compile_cooling`); the
engine's :mod:`twin.engine.cooling` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.physics.plant_params import PlantParams


@dataclass(frozen=True)
class IdealPlantSpec:
    """Limiting case: no cooling energy, inlets fixed at ``supply_temp_c``.

    Faults see one CDU and one CRAH unit (their loss changes nothing) and no chiller to restart.
    """

    supply_temp_c: float
    liquid_fraction: float
    liquid_cooled: bool
    n_cdus: int = 1
    n_crahs: int = 1
    chiller_restart_s: float = 0.0


@dataclass(frozen=True)
class PlantSpec:
    """A physical plant: :class:`PlantParams` plus the loop, room and storage nodes and unit counts.

    Attributes
    ----------
    params : PlantParams
        What :func:`twin.physics.cooling_plant.plant_power` needs.
    liquid_fraction : float
        Share of server heat taken by liquid. [-]
    liquid_cooled : bool
        GPUs on cold plates (hybrid or liquid).
    loop_capacity_j_k, room_capacity_j_k : float
        Heat capacities of the coolant loop and the room air. [J/K]
    storage_capacity_j : float
        Chilled-water storage when full. [J]
    control_time_constant_s : float
        Time the controls take to pull a warm node back to its setpoint. [s]
    cdu_capacity_w : float
        Liquid heat all CDUs carry at their rated share. [W]
    n_cdus, n_crahs : int
        CDUs and CRAH units installed.
    chiller_restart_s : float
        Power back to chillers running. [s]
    room_mass_capacity_j_k, room_mass_conductance_w_k : float
        Heat capacity of the servers' solid mass (heat sinks, chassis), a room node of its own, and
        its conductance to the room air (0: none). [J/K], [W/K]
    room_rack_capacity_j_k, room_rack_conductance_w_k : float
        The same for the rack enclosures' steel (0: none). [J/K], [W/K]
    """

    params: PlantParams
    liquid_fraction: float
    liquid_cooled: bool
    loop_capacity_j_k: float
    room_capacity_j_k: float
    storage_capacity_j: float
    control_time_constant_s: float
    cdu_capacity_w: float
    n_cdus: int
    n_crahs: int
    chiller_restart_s: float
    room_mass_capacity_j_k: float = 0.0
    room_mass_conductance_w_k: float = 0.0
    room_rack_capacity_j_k: float = 0.0
    room_rack_conductance_w_k: float = 0.0


CoolingSpec = PlantSpec | IdealPlantSpec
