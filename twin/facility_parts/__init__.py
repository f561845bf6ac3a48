"""The compiled facility: typed, immutable parts that :func:`twin.facility.build_facility` makes from a scenario.

The engine reads these and never the scenario (import-linter contract "Engine never reads the
scenario"): what a scenario can get wrong is refused while building, so ``twin validate`` refuses
it too.

* :mod:`~twin.facility_parts.fleet`: topology, power-chain stages, pools, the :class:`Facility`.
* :mod:`~twin.facility_parts.plant`: the cooling plant's parameters and thermal capacities.
* :mod:`~twin.facility_parts.weather`: the outdoor conditions over the run.
* :mod:`~twin.facility_parts.power`: backup sources, controls and the fault schedule.
* :mod:`~twin.facility_parts.sources`: what drives each pool (request streams, replay, job traces).
"""
