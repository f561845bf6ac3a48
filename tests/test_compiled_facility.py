"""The compiled facility (twin.facility_parts): what build_facility refuses, validate refuses; typed plant overrides."""

from __future__ import annotations

from dataclasses import fields

import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.facility import build_facility
from twin.physics.cooling_plant import PlantParams
from twin.scenario import load_scenario
from twin.scenario.plant_overrides import OWN_KEYS, PlantOverrides


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
