"""Every run that serves states the serving model's measured error on its accelerator, or warns that none applies."""

from __future__ import annotations

import doctest
import json

from typer.testing import CliRunner

import twin.catalog.serving_accuracy as serving_accuracy_module
from twin import load_scenario, simulate
from twin.catalog.serving_accuracy import serving_accuracy
from twin.checks import check_serving_validated, run_checks, serving_error
from twin.cli import app
from twin.facility import build_facility

SHORT = {"duration_s": 600, "report_interval_s": 300}


def test_a_validated_accelerator_states_its_error_and_warns_of_nothing():
    fac = build_facility(load_scenario("default", SHORT))
    err = serving_error(fac)
    assert err == serving_accuracy("H100-SXM") and err is not None
    assert check_serving_validated(fac) == []
    line = err.describe()
    assert line.startswith("serving model error on H100-SXM (MAPE over ")
    assert f"J/token {err.j_per_token_pct:.1f} %" in line


def test_an_accelerator_without_measured_runs_warns_naming_it_and_the_workloads():
    fac = build_facility(load_scenario("default", {**SHORT, "fleet.accelerator": "H200-SXM"}))
    assert serving_error(fac) is None
    (issue,) = check_serving_validated(fac)
    assert issue.startswith("workloads chat-70b, code-8b: the project has no measured serving runs on H200-SXM")
    assert "B200, H100-SXM" in issue and "no stated error" in issue
    assert issue in run_checks(fac)  # `twin validate` and `twin run` say it


def test_a_changed_accelerator_does_not_carry_the_catalog_entrys_error():
    fac = build_facility(load_scenario("default", {**SHORT, "fleet.accelerator_overrides.max_power_w": 600.0}))
    assert serving_error(fac) is None
    (issue,) = check_serving_validated(fac)
    assert "measured on the catalog's H100-SXM, and this one is changed" in issue


def test_a_run_that_serves_nothing_states_nothing():
    training = [{"name": "train", "kind": "training", "model": "Llama-3-70B"}]
    sc = load_scenario("default", {**SHORT, "workloads": training, "fleet.accelerator": "MI300X"})
    fac = build_facility(sc)
    assert serving_error(fac) is None and check_serving_validated(fac) == []
    assert simulate(sc).meta["serving_error"] is None


def test_run_prints_the_error_and_writes_it_into_the_summary(tmp_path):
    out = tmp_path / "run"
    short = ["--set", "duration_s=600", "--set", "report_interval_s=300"]
    res = CliRunner().invoke(app, ["run", *short, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "serving model error on H100-SXM" in res.output
    meta = json.loads((out / "summary.json").read_text())["meta"]
    assert meta["serving_error"]["accelerator"] == "H100-SXM"
    assert meta["serving_error"]["power_pct"] == serving_accuracy("H100-SXM").power_pct  # type: ignore[union-attr]
    res = CliRunner().invoke(app, ["validate", "default", "--set", "fleet.accelerator=MI300X"])
    assert res.exit_code == 0 and "no measured serving runs on MI300X" in " ".join(res.output.split())


def test_docstring_examples():
    result = doctest.testmod(serving_accuracy_module)
    assert result.failed == 0 and result.attempted > 0
