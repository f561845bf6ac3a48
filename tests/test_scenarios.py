"""Every scenario users copy is valid and runs (seed 42, shortened), with the expected ordering."""

from pathlib import Path

import pytest

from twin import load_scenario, simulate

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs(path):
    sc = load_scenario(path, {"seed": 42, "duration_s": 3600, "step_s": 60, "report_interval_s": 600})
    r = simulate(sc, debug=True)
    assert r.kpis["pue"] >= 1.0
    assert r.kpis["tokens_out"] > 0
    assert abs(r.kpis["ledger_residual_j"]) < 1e-9 * r.kpis["facility_energy_j"]


def kpis(name, **over):
    base = {"duration_s": 86400, "step_s": 300, "report_interval_s": 3600, **over}
    return simulate(load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / f"{name}.yaml", base)).kpis


def test_climate_and_cooling_ordering():
    hot, cold = kpis("hot-climate-liquid"), kpis("cold-climate-liquid")
    air, w45 = kpis("air-cooled"), kpis("warm-water-w45-dry-cooler")
    assert cold["pue"] < hot["pue"] < air["pue"]
    assert cold["tokens_per_kwh"] > hot["tokens_per_kwh"] > air["tokens_per_kwh"]
    assert w45["water_l"] == 0 < hot["water_l"]
    # the tower evaporates a smaller share of the heat in Sand Point's cool July than in Greensboro's
    assert cold["wue_l_per_kwh"] < 0.95 * hot["wue_l_per_kwh"]
