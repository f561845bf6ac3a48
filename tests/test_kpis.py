"""The KPI registry: every key a run reports is declared (unit and description), and nothing else is.

Shipped scenarios, shortened, cover the KPIs that appear only when something happens: a battery
and a training rollback (utility outage), a thermal shutdown and throttling (chiller trip),
telemetry replay, a job trace queued by a scheduler (per-pool job GPU-hours, waits), the
request-level replay of a small default with an SLO and a disaggregated pool (KV transfer energy).
"""

import doctest
import json
import math
from pathlib import Path

import pytest

from twin import kpis, load_scenario, simulate
from twin.kpis import POOL, POOL_KPIS, REGISTRY, SITE_KPIS, UnregisteredKpiError, describe, readme_block
from twin.results import Result

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

#: Shipped scenarios, each cut to the time its conditional KPIs need.
RUNS = {
    "default": ("default", {"duration_s": 3600}),
    "outage": ("utility-outage-late-generator", {"duration_s": 9000}),
    "chiller-trip": ("scenarios/chiller-trip-hot-day.yaml", {"duration_s": 5400}),
    "replay": ("scenarios/telemetry-replay.yaml", {"duration_s": 600}),
}


def _request_level() -> Result:
    """The replayed latency KPIs of a small default (four servers, 5 min) with an SLO on chat-70b."""
    from twin.scenario.set_rules import load_with_sets

    sc = load_with_sets(
        None,
        {
            "fleet.rows": 1,
            "fleet.racks_per_row": 1,
            "duration_s": 300,
            "request_level": {"ranks": 1, "window_s": 30.0},
            "workloads.0.slo": {"ttft_s": 2.5, "tpot_s": 0.15},
        },
    )
    return simulate(sc)


def _disaggregated() -> Result:
    """A small default (four servers, 5 min) whose chat-70b prefills on one server and decodes on two."""
    from twin.scenario.set_rules import load_with_sets

    sc = load_with_sets(
        None,
        {
            "fleet.rows": 1,
            "fleet.racks_per_row": 1,
            "duration_s": 300,
            "workloads.0.disaggregation": {"prefill_fraction_of_servers": 0.34},
        },
    )
    return simulate(sc)


def _jobs() -> Result:
    sc = load_scenario(
        "default",
        {
            "fleet.rows": 1,
            "fleet.racks_per_row": 1,
            "fleet.servers_per_rack": 2,
            "duration_s": 600,
            "report_interval_s": 60,
            "cooling": {"model": "ideal", "supply_temp_c": 30.0},
            "workloads": [
                {
                    "name": "train",
                    "kind": "training",
                    "model": "Llama-3.1-8B",
                    "servers": 2,
                    "jobs": {"path": "jobs_seconds.csv", "scheduler": "easy"},
                }
            ],
        },
    )
    return simulate(sc.model_copy(update={"source_dir": DATA}))


@pytest.fixture(scope="module")
def results() -> dict[str, Result]:
    out = {name: simulate(load_scenario(path, overrides)) for name, (path, overrides) in RUNS.items()}
    out["jobs"] = _jobs()
    out["request-level"] = _request_level()
    out["disaggregated"] = _disaggregated()
    return out


def test_every_entry_has_a_unit_and_a_description():
    assert len({k.key for k in REGISTRY}) == len(REGISTRY)
    for kpi in REGISTRY:
        assert kpi.unit.strip() and kpi.description.strip(), kpi.key
        assert kpi.description.endswith("."), kpi.key
        assert "|" not in kpi.description + kpi.unit, kpi.key  # a Markdown table cell
        if kpi.per_pool:
            assert kpi.key.startswith(POOL + "_") and kpi.key.count(POOL) == 1, kpi.key
    assert len(SITE_KPIS) + len(POOL_KPIS) == len(REGISTRY)


def test_no_site_key_reads_as_a_pool_key():
    # "<pool>_<column>" never equals a site key, whatever the pool's name
    for key in SITE_KPIS:
        assert not any(key.endswith("_" + column) for column in POOL_KPIS), key
    # nor does "<pool>_<column>" of one pool read as another column of a pool named "<pool>_<word>"
    for column in POOL_KPIS:
        assert not any(column.endswith("_" + other) for other in POOL_KPIS), column


def test_every_key_a_run_reports_is_declared_and_every_declared_key_is_reported(results):
    reported: set[str] = set()
    for name, r in results.items():
        declared = describe(r.kpis, r.pool_names)  # raises on an undeclared key
        assert set(declared) == set(r.kpis), name
        reported.update(kpi.key for kpi in declared.values())
    assert reported == {k.key for k in REGISTRY}, "declared but no run reports it"


def test_undeclared_key_is_refused(results):
    r = results["default"]
    bogus = Result({**r.kpis, "mystery_w": 1.0}, r.timeseries, r.ledger, r.scenario, r.seed)
    with pytest.raises(UnregisteredKpiError, match="mystery_w"):
        bogus.summary()
    assert describe(["chat-70b_ttft_p99_s"], ["chat-70b"])["chat-70b_ttft_p99_s"].unit == "s"
    with pytest.raises(UnregisteredKpiError):
        describe(["chat-70b_ttft_p99_s"], ["chat"])  # not a pool of the run


def test_pool_frame_is_tidy(results):
    r = results["outage"]
    frame = r.pool_frame()
    assert list(frame["pool"]) == r.pool_names == ["chat-70b", "train-70b"]
    assert list(frame["kind"]) == ["inference", "training"]
    assert list(frame.columns) == ["pool", "kind", *POOL_KPIS]
    assert frame.attrs["units"]["ttft_p99_s"] == "s"
    assert frame.attrs["units"]["gpu_power_mean_w"] == "W"
    chat, train = frame.set_index("pool").loc["chat-70b"], frame.set_index("pool").loc["train-70b"]
    assert chat["ttft_p99_s"] == r.kpis["chat-70b_ttft_p99_s"]
    assert train["tokens_training"] == r.kpis["train-70b_tokens_training"] > 0
    assert math.isnan(train["ttft_p99_s"])  # a training pool has no latency
    # the pools' tokens add up to the site's
    assert frame["tokens_training"].sum() == pytest.approx(r.kpis["tokens_training"], rel=1e-12)
    assert frame["tokens_generated"].sum() == pytest.approx(r.kpis["tokens_generated"], rel=1e-12)


def test_summary_json_lists_each_kpi_with_its_unit(results, tmp_path):
    r = results["outage"]
    r.save(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["units"]) == list(summary["kpis"])
    assert set(summary["kpis"]) == set(r.kpis)
    assert summary["units"]["energy_cost"] == "USD"
    assert summary["units"]["tokens_per_kwh"] == "tokens/kWh"
    assert summary["units"]["train-70b_busy_mean"] == "1"
    assert list(summary["kpis"])[:3] == ["duration_s", "n_gpus", "facility_energy_j"]  # registry order
    back = Result.load(tmp_path / "out")
    assert back.kpis.keys() == r.kpis.keys()
    assert back.pool_frame().equals(r.pool_frame())


def test_readme_kpi_table_is_the_registry():
    readme = (ROOT / "README.md").read_text()
    assert readme_block() in readme, (
        "README.md's KPI table differs from twin/kpis.py: run "
        "python -c \"from twin.kpis import update_readme; update_readme('README.md')\""
    )


def test_docstring_examples():
    result = doctest.testmod(kpis)
    assert result.attempted > 0 and result.failed == 0
