"""The AI-factory twin: a digital twin of an AI data center, energy in and tokens out.

>>> import twin
>>> result = twin.simulate(twin.load_scenario("default", {"duration_s": 3600}))  # doctest: +SKIP
>>> result.kpis["tokens_per_kwh"]  # doctest: +SKIP
"""

from twin._version import __version__
from twin.results import Result
from twin.scenario import Scenario, load_scenario
from twin.simulation import simulate

__all__ = ["Result", "Scenario", "__version__", "load_scenario", "simulate"]
