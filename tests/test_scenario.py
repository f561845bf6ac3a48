from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin.scenario import load_scenario, preset_names


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_default_is_a_one_megawatt_h100_pod():
    sc = load_scenario()
    assert sc.fleet.n_gpus == 1024 and sc.fleet.accelerator == "H100-SXM"
    assert sc.duration_s == 86400
    assert "default" in preset_names()


def test_error_names_file_field_line_and_expectation(tmp_path):
    p = write(tmp_path, "base: default\nfleet:\n  racks_per_row: -3\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    msg = str(exc.value)
    assert str(p) in msg
    assert "fleet.racks_per_row (line 3): must be > 0, got -3" in msg


def test_all_problems_reported_at_once(tmp_path):
    p = write(tmp_path, "base: default\nseed: -1\nfleet:\n  acclerator: H100\nduration_s: 0\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    fields = [pr.field for pr in exc.value.problems]
    assert fields == ["seed", "duration_s", "fleet.acclerator"] or sorted(fields) == sorted(
        ["seed", "duration_s", "fleet.acclerator"]
    )
    typo = next(pr for pr in exc.value.problems if pr.field == "fleet.acclerator")
    assert "accelerator" in typo.message and typo.line == 4


def test_unknown_catalog_names(tmp_path):
    p = write(tmp_path, "base: default\nfleet: {accelerator: H999}\npower:\n  ups: {rated_w: 1e6, curve: magic}\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    text = str(exc.value)
    assert "unknown accelerator 'H999'" in text and "H100-SXM" in text
    assert "power.ups.curve" in text and "lossless" in text


def test_workload_errors_have_paths(tmp_path):
    p = write(
        tmp_path,
        "base: default\nworkloads:\n  - name: a\n    kind: inference\n    model: Llama-3.1-8B\n"
        "    arrivals: {requests_per_s: 5, prompt_tokens: -1}\n",
    )
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    assert "workloads.0.arrivals.prompt_tokens (line 6): must be >= 0" in str(exc.value)


def test_too_many_servers(tmp_path):
    p = write(tmp_path, "base: default\nfleet: {rows: 1}\n")
    with pytest.raises(ScenarioError, match="workloads ask for 128 servers but the fleet has 32"):
        load_scenario(p)


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"line 2"):
        load_scenario(write(tmp_path, "a: 1\n b: [\n"))
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "nope.yaml")


def test_base_merges_and_with_updates(tmp_path):
    p = write(tmp_path, "base: default\nname: small\nfleet: {rows: 8}\n")
    sc = load_scenario(p)
    assert sc.name == "small" and sc.fleet.rows == 8 and sc.fleet.racks_per_row == 8
    sc2 = sc.with_updates({"fleet.power_cap_w": 500, "workloads.0.max_batch": 64})
    assert sc2.fleet.power_cap_w == 500 and sc2.workloads[0].max_batch == 64
    with pytest.raises(Exception, match="greater than 0"):
        sc.with_updates({"fleet.rows": 0})
