"""The compiled facility (twin.facility_parts): what build_facility refuses, validate refuses; typed overrides."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.catalog import AcceleratorSpec, accelerator_units
from twin.cli import app
from twin.errors import ScenarioError
from twin.facility import build_facility
from twin.physics.plant_params import PlantParams
from twin.scenario import TrainingWorkload, load_scenario
from twin.scenario.accelerator_overrides import AcceleratorOverrides
from twin.scenario.plant_overrides import OWN_KEYS, PlantOverrides
from twin.scenario.workload_schema import JobColumns
from twin.workload.jobs import VARIABLE_MAP


def test_every_plant_override_is_a_plant_parameter_with_a_unit() -> None:
    plant = {f.name for f in fields(PlantParams)}
    for name, info in PlantOverrides.model_fields.items():
        assert name in plant and name not in OWN_KEYS, name
        assert info.description and info.description.rstrip().endswith("]"), name  # "... [unit]"


def test_plant_overrides_keep_their_yaml_form() -> None:
    sc = load_scenario("default", {"cooling.plant_overrides": {"tower_approach_k": "4.5"}})
    assert sc.cooling.plant_overrides.given() == {"tower_approach_k": 4.5}
    assert sc.model_dump(mode="json")["cooling"]["plant_overrides"] == {"tower_approach_k": 4.5}
    assert build_facility(sc).cooling.params.tower_approach_k == 4.5  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("weather.source=/nonexistent/weather.epw", "weather.source"),  # read while building
        ("workloads.0.arrivals={kind: trace, path: /nonexistent/trace.csv}", "workloads.0.arrivals.path"),
    ],
)
def test_validate_refuses_what_the_build_refuses(setting: str, message: str) -> None:
    res = CliRunner().invoke(app, ["validate", "default", "--set", setting])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())


def test_fault_targets_are_compiled_to_pools() -> None:
    sc = load_scenario(
        "default",
        {"events": [{"time_s": 60, "kind": "server_fail", "target": "chat-70b", "count": 1},
                    {"time_s": 60, "kind": "feed_loss", "target": "B"}]},
    )  # fmt: skip
    ev = build_facility(sc).faults.events
    assert (ev[0].pool, ev[0].side) == (0, None)
    assert (ev[1].pool, ev[1].side) == (None, "B")


# ------------------------------------------------------------------ accelerator overrides (typed)
def test_every_accelerator_parameter_is_an_override_with_its_catalog_unit() -> None:
    params = {f.name for f in fields(AcceleratorSpec)} - {"name"}
    assert set(AcceleratorOverrides.model_fields) == params  # generated: a new catalog parameter is picked up
    units = accelerator_units()
    for name, info in AcceleratorOverrides.model_fields.items():
        assert info.json_schema_extra == {"unit": units[name]}, name
        assert info.description and info.description.rstrip().endswith("]"), name


def test_accelerator_overrides_keep_their_yaml_form(tmp_path: Path) -> None:
    path = tmp_path / "sc.yaml"
    path.write_text("base: default\nfleet:\n  accelerator_overrides: {idle_power_w: 60, voltage_floor_fraction: 0.9}\n")
    sc = load_scenario(path)
    written = {"idle_power_w": 60.0, "voltage_floor_fraction": 0.9}
    assert sc.fleet.accelerator_overrides.given() == written
    assert sc.model_dump(mode="json")["fleet"]["accelerator_overrides"] == written  # only what was set
    acc = build_facility(sc).accelerator
    assert (acc.idle_power_w, acc.voltage_floor_fraction) == (60.0, 0.9)
    again = load_scenario("default", {"fleet": sc.model_dump(mode="json")["fleet"]})
    assert again.fleet == sc.fleet


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_unknown_accelerator_override_is_refused_naming_the_field(command: str) -> None:
    args = [command, "default", "--set", "fleet.accelerator_overrides={idle_powr_w: 60}"]
    if command == "run":
        args += ["-q", "--out", "/nonexistent-parent/never-written"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "fleet.accelerator_overrides.idle_powr_w unknown field; valid fields here:" in out
    assert "idle_power_w" in out


# ----------------------------------------------------------------------- job-trace columns (typed)
def test_job_columns_are_the_readers_standard_names() -> None:
    assert set(JobColumns.model_fields) == set(VARIABLE_MAP["jobs"].values())


def _training(tmp_path: Path, columns: dict[str, str]) -> dict[str, object]:
    (tmp_path / "jobs.csv").write_text("name,n,t0,t1\na,2,0,100\nb,4,50,200\n")
    jobs = {"path": str(tmp_path / "jobs.csv"), "columns": columns}
    return {"workloads": [{"name": "train", "kind": "training", "model": "Llama-3.1-8B", "jobs": jobs}]}


def test_job_columns_keep_their_yaml_form(tmp_path: Path) -> None:
    columns = {"job_id": "name", "gpus": "n", "start_s": "t0", "end_s": "t1"}
    sc = load_scenario("default", _training(tmp_path, columns))
    w = sc.workloads[0]
    assert isinstance(w, TrainingWorkload) and w.jobs is not None
    assert w.jobs.columns.given() == columns
    assert sc.model_dump(mode="json")["workloads"][0]["jobs"]["columns"] == columns
    jobs = build_facility(sc).pools[0].jobs
    assert jobs is not None and jobs.demanded.period_s == 200.0  # the mapped columns were read


def test_an_unknown_job_column_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"workloads\.0\.jobs\.columns\.gpu: unknown field; valid fields here"):
        load_scenario("default", _training(tmp_path, {"gpu": "n"}))
