"""Hostile and broken scenario input ends in a named error (exit 2), never a traceback or a hang (issue 15)."""

from __future__ import annotations

import contextlib
import itertools
import re
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from twin.cli import app
from twin.errors import ScenarioError
from twin.facility import build_facility
from twin.scenario import Scenario, load_scenario, preset_path, resources
from twin.sweep import load_sweep


def write(tmp_path: Path, text: str | bytes, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def cli(*args: str) -> tuple[int, str]:
    """Exit code and output (stdout and stderr, wrapping undone) of ``twin ARGS``."""
    res = CliRunner().invoke(app, list(args))
    assert "Traceback" not in res.output
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, " ".join(res.output.split())


def problem(path_or_source: str | Path, overrides: dict | None = None) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path_or_source, overrides)
    return info.value


# === 1. aliases ==============================================================================


def laughs(levels: int = 11) -> str:
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"a: &a [{', '.join(['x'] * 9)}]"]
    for prev, cur in itertools.pairwise(names[: levels + 1]):
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_fast(tmp_path):
    p = write(tmp_path, laughs())
    t = time.perf_counter()
    err = problem(p)
    assert time.perf_counter() - t < 2.0
    assert err.source == str(p)
    assert "expands to more than 100,000 values" in str(err) and err.problems[0].line is not None
    code, out = cli("validate", str(p))
    assert code == 2 and "expands to more than" in out


def test_recursive_alias_is_refused(tmp_path):
    err = problem(write(tmp_path, "base: default\nx: &a [1, *a]\n"))
    assert "alias *a refers to itself" in str(err)


def test_ordinary_aliases_still_load(tmp_path):
    text = (
        "base: default\nname: twins\n"
        "workloads:\n"
        "  - &chat {kind: inference, name: a, model: Llama-3.1-8B, servers: 4, arrivals: {requests_per_s: 5}}\n"
        "  - {<<: *chat, name: b}\n"
    )
    sc = load_scenario(write(tmp_path, text))
    assert [w.name for w in sc.workloads] == ["a", "b"] and sc.workloads[1].servers == 4


# === 2-4. the file itself ====================================================================


def test_binary_file_names_the_byte(tmp_path):
    p = write(tmp_path, b"\xff\xfe\x00\x01name: x\n\x80\x81")
    err = problem(p)
    assert "not UTF-8 text at byte 0 (0xff)" in str(err) and err.source == str(p)
    p2 = write(tmp_path, b"base: default\nname: caf\xe9\n", "latin1.yaml")
    err2 = problem(p2)
    assert "not UTF-8 text at byte 23" in str(err2) and err2.problems[0].line == 2
    code, out = cli("validate", str(p))
    assert code == 2 and "not UTF-8 text at byte 0" in out


def test_utf8_byte_order_mark_is_fine(tmp_path):
    assert load_scenario(write(tmp_path, "\ufeffbase: default\nname: bom\n".encode())).name == "bom"


def test_deep_nesting_is_refused(tmp_path):
    p = write(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    err = problem(p)
    assert "nested more than 64 mappings or lists deep" in str(err)
    code, out = cli("validate", str(p))
    assert code == 2 and "nested more than 64" in out


def test_base_pointing_at_a_folder(tmp_path):
    (tmp_path / "dir").mkdir()
    err = problem(write(tmp_path, "base: dir\n"))
    assert err.problems[0].field == "base" and "is a folder, not a scenario file" in str(err)
    assert err.problems[0].line == 1
    code, out = cli("validate", str(tmp_path / "dir"))
    assert code == 2 and "is a folder" in out


def test_yaml_values_python_cannot_hold(tmp_path):
    assert "month must be in 1..12" in str(problem(write(tmp_path, "base: default\nstart: 2024-13-45\n")))
    assert "4300 digits" in str(problem(write(tmp_path, "base: default\nseed: " + "9" * 5000 + "\n")))
    assert "(line 2)" in str(problem(write(tmp_path, "base: default\nname: \x01\n")))


# === 5. empty scenarios, no workloads ========================================================


@pytest.mark.parametrize("text", ["", "# just a comment\n", "{}\n"])
def test_empty_scenario_is_refused(tmp_path, text):
    p = write(tmp_path, text)
    assert "empty scenario; start from `base: default`" in str(problem(p))
    code, out = cli("run", "-q", "--out", str(tmp_path / "out"), str(p))
    assert code == 2 and "empty scenario" in out and not (tmp_path / "out").exists()


def test_no_workloads_runs_but_warns(tmp_path):
    p = write(tmp_path, "base: default\nduration_s: 600\nworkloads: []\n")
    code, out = cli("validate", str(p))
    assert code == 0 and "warning no workloads: all 128 servers idle" in out
    code, out = cli("run", "-q", "--out", str(tmp_path / "out"), str(p))
    assert code == 0 and "warning no workloads" in out


# === 6. inf, NaN and ideal-cooling temperatures ==============================================


@pytest.mark.parametrize(
    "key",
    [
        "workloads.0.arrivals.requests_per_s",
        "workloads.0.arrivals.prompt_tokens",
        "power.transformer.rated_w",
        "duration_s",
        "site.electricity_price_per_kwh",
        "fleet.accelerator_overrides.max_power_w",
    ],
)
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_refused(tmp_path, key, value):
    code, out = cli("validate", "default", "--set", f"{key}={value}")
    assert code == 2 and f"--set {key}: input should be a finite number" in out


@pytest.mark.parametrize("temp", [".nan", "-273", "1e6", "101"])
def test_ideal_cooling_supply_temperature_is_physical(temp):
    code, out = cli("validate", "default", "--set", f"cooling={{model: ideal, supply_temp_c: {temp}}}")
    assert code == 2 and "--set cooling: cooling.supply_temp_c" in out


def test_ideal_cooling_hot_inlet_what_if_still_loads():
    sc = load_scenario("default", {"cooling": {"model": "ideal", "supply_temp_c": 75}})
    assert sc.cooling.supply_temp_c == 75


# === 7. sizes the machine cannot hold =========================================================


@pytest.mark.parametrize(("rows", "words"), [("1000000000", "256,000,000,000 GPUs"), ("1.0e+9", "at most 2,000,000")])
def test_fleet_size_is_capped(rows, words):
    code, out = cli("validate", "default", "--set", f"fleet.rows={rows}")
    assert code == 2 and words in out and "(with --set fleet.rows)" in out


def test_endless_runs_are_refused():
    code, out = cli("validate", "default", "--set", "duration_s=1e12")
    assert code == 2 and "1e+12 ticks, more than the 1e+09 a run may have" in out
    code, out = cli("validate", "default", "--set", "duration_s=.inf")
    assert code == 2 and "finite number" in out


def test_memory_estimate_refuses_what_this_machine_cannot_hold(monkeypatch):
    monkeypatch.setattr(resources, "physical_memory_bytes", lambda: 4.0 * 2**30)
    over = {"duration_s": 3.0e8, "step_s": 60, "report_interval_s": 60}  # 5 million rows
    err = problem("default", over)
    assert "the run needs about 8.4 GiB, this machine has 4.0 GiB" in str(err)
    assert "report rows (duration_s 3e+08 / report_interval_s 60)" in str(err)
    assert isinstance(load_scenario("default", {**over, "report_interval_s": 3600}), Scenario)


def test_memory_estimate_is_of_the_measured_size():
    sc = load_scenario("default", {"duration_s": 43_200_000, "step_s": 60, "report_interval_s": 60})
    measured = 0.94e9 + 150e6  # 720,000 rows above the interpreter, and the interpreter (module docstring)
    assert measured < resources.estimate_run_bytes(sc) < 2 * measured


# === 8. hostile --set paths ===================================================================


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("workloads.7.servers=3", "--set workloads.7.servers: workloads has indices 0 to 1, so there is no index 7"),
        ("events.0.kind=x", "--set events.0.kind: events has no entries, so there is no index 0"),
        ("fleet.rows.x=3", "--set fleet.rows.x: fleet.rows is a value (4), not a mapping or list"),
        ("workloads.x.servers=3", "--set workloads.x.servers: workloads is a list: expected an index 0 to 1, got 'x'"),
        ("workloads.-1.servers=3", "--set workloads.-1.servers: workloads is a list: expected an index 0 to 1"),
        ("fleet.rows={", "invalid input --set fleet.rows: not valid YAML"),
        ("fleet.rows=true", "--set fleet.rows: expected a number, got True"),
        ("fleet.rows=-3", "--set fleet.rows: must be > 0, got -3"),
        ("fleet..rows=3", "--set fleet..rows: 'fleet..rows' has an empty key"),
        ("x=[&a [1, 1], [*a, *a]]", "--set x: unknown field"),
    ],
)
def test_hostile_set_paths_name_the_option(item, words):
    code, out = cli("validate", "default", "--set", item)
    assert code == 2 and words in out
    assert "(line " not in out  # the value came from the command line, not from a line of the preset


def test_set_value_billion_laughs_is_refused():
    code, out = cli("validate", "default", "--set", "name=" + laughs().replace("\n", ", ").join("{}"))
    assert code == 2 and "invalid input --set name: the document expands" in out


def test_integers_are_strict_about_booleans_not_about_whole_floats(tmp_path):
    assert load_scenario("default", {"fleet.rows": 8.0}).fleet.rows == 8
    assert load_scenario(write(tmp_path, "base: default\nfleet: {rows: 8}\n")).fleet.rows == 8
    assert "fractional part" in str(problem("default", {"fleet.rows": 8.5}))
    assert "a boolean is not a number" in str(problem("default", {"duration_s": True}))
    assert "a boolean is not a number" in str(problem(write(tmp_path, "base: default\nseed: yes\n")))
    assert load_scenario("default", {"duration_s": "1e3"}).duration_s == 1000.0  # YAML's 1e3 is a string


def test_with_updates_refuses_negative_indices():
    with pytest.raises(ValueError, match="expected an index 0 to 1, got '-1'"):
        load_scenario().with_updates({"workloads.-1.servers": 3})


# === 9. facility errors name the scenario file ================================================


def test_facility_errors_name_the_scenario_file(tmp_path):
    p = write(tmp_path, "base: default\nevents:\n  - {time_s: 10, kind: server_fail, target: nope}\n")
    with pytest.raises(ScenarioError) as info:
        build_facility(load_scenario(p))
    assert info.value.source == str(p)
    with pytest.raises(ScenarioError) as info:
        build_facility(load_scenario("default", {"workloads.0.tensor_parallel": 3}))
    assert info.value.source == str(preset_path("default"))
    assert "workloads.0.tensor_parallel" in str(info.value)
    with pytest.raises(ScenarioError) as info:
        build_facility(load_scenario(p).with_updates({"duration_s": 60}))
    assert info.value.source == str(p)
    code, out = cli("validate", str(p))
    assert code == 2 and f"invalid scenario {p}" in out and "invalid scenario scenario" not in out


def test_a_scenario_built_in_code_is_named_by_its_name():
    sc = Scenario.model_validate({"name": "mine", "events": [{"time_s": 1, "kind": "gpu_fail", "target": "x"}]})
    with pytest.raises(ScenarioError) as info:
        build_facility(sc)
    assert info.value.source == "scenario 'mine'"


# === 10. sweep names ==========================================================================


@pytest.mark.parametrize("name", ["../../../escape", "/tmp/abs", ".hidden", "a/b", "..", "x" * 101, "a b"])
def test_sweep_name_must_be_one_safe_folder_name(tmp_path, name):
    spec = write(tmp_path, yaml.safe_dump({"name": name, "base": "default", "grid": {"seed": [1]}}), "spec.yaml")
    with pytest.raises(ScenarioError) as info:
        load_sweep(spec)
    assert info.value.problems[0].field == "name" and "must be one folder name" in str(info.value)


def test_sweep_name_from_an_unsafe_file_stem(tmp_path):
    spec = write(tmp_path, "base: default\ngrid: {seed: [1]}\n", ".sneaky.yaml")
    with pytest.raises(ScenarioError, match="the file name gives none"):
        load_sweep(spec)
    good = write(tmp_path, "name: Seeds_1.2-a\nbase: default\noverrides: {duration_s: 60}\ngrid: {seed: [1]}\n")
    assert load_sweep(good).name == "Seeds_1.2-a"


def test_sweep_point_count_is_capped(tmp_path):
    grid = {"site.other_facility_power_w": list(range(101)), "seed": list(range(100))}
    spec = write(tmp_path, yaml.safe_dump({"base": "default", "grid": grid}), "big.yaml")
    with pytest.raises(ScenarioError, match="10,100 points; a sweep has at most 10,000"):
        load_sweep(spec)


# === 11. fuzzing =============================================================================


def _leaf_paths() -> dict[str, object]:
    out: dict[str, object] = {}

    def walk(node: object, prefix: str) -> None:
        if prefix:
            out[prefix] = node
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{prefix}.{i}")

    walk(load_scenario().model_dump(mode="json"), "")
    return out


PATHS = _leaf_paths()
EXTRA_PATHS = ["workloads.2", "workloads.-1", "events.0.kind", "cooling.supply_temp_c", "fleet.rows.x", "a..b", "x"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # inf, -inf and nan included
    st.text(max_size=12),
    st.sampled_from(["ideal", "plant", "trace", "inference", "training", "1e9", ".inf", "2024-13-45", "-1", "A"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(["kind", "model", "name", "servers"])), inner),
    ),
    max_leaves=8,
)


def _near(value: object) -> st.SearchStrategy:
    """Values of the same kind as ``value`` (so that many examples validate), and anything."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return VALUES
    edges = [0, -1, 1e-300, 2**63, 1e308, float("inf"), float("nan"), True]
    return st.one_of(st.integers(-10, 10**6), st.floats(-1e7, 1e7), st.sampled_from(edges), VALUES)


PAIRS = st.sampled_from([*PATHS, *EXTRA_PATHS]).flatmap(lambda p: st.tuples(st.just(p), _near(PATHS.get(p))))


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(PAIRS, min_size=1, max_size=3))
def test_fuzz_overrides_load_or_raise_scenario_error(items):
    with contextlib.suppress(ScenarioError):
        assert isinstance(load_scenario("default", dict(items)), Scenario)


DEFAULT_TEXT = preset_path("default").read_bytes()


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.builds(lambda i, b: DEFAULT_TEXT[:i] + b + DEFAULT_TEXT[i:], st.integers(0, len(DEFAULT_TEXT)), st.binary()),
        st.builds(lambda d: yaml.safe_dump(d).encode(), st.dictionaries(st.sampled_from(list(PATHS)), VALUES)),
    )
)
def test_fuzz_file_bytes_load_or_raise_scenario_error(tmp_path, data):
    p = write(tmp_path, data)
    with contextlib.suppress(ScenarioError):
        assert isinstance(load_scenario(p), Scenario)


# --------------------------------------------------------------------- accelerator parameters
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"max_power_w": -5.0}, "max_power_w = -5 is negative"),
        ({"idle_power_w": 5000.0}, "idle_power_w (5000) exceeds max_power_w (700)"),
        ({"static_power_fraction": 1.5}, "is a fraction, at most 1"),
        ({"slowdown_temp_c": 95.0}, "slowdown_temp_c (95) must be below shutdown_temp_c"),
    ],
)
def test_accelerator_overrides_no_device_has_are_refused(override: dict[str, float], message: str) -> None:
    sc = load_scenario("default", {"fleet.accelerator_overrides": override})
    with pytest.raises(ScenarioError, match=re.escape(message)):
        build_facility(sc)


def test_a_binary_accelerator_file_is_a_named_error(tmp_path: Path) -> None:
    acc = tmp_path / "acc.yaml"
    acc.write_bytes(b"\xff\xfe\x00binary")
    sc = load_scenario("default", {"fleet.accelerator_file": str(acc)})
    with pytest.raises(ScenarioError, match="not UTF-8"):
        build_facility(sc)


def test_a_folder_given_for_an_accelerator_file_or_a_trace_says_so(tmp_path: Path) -> None:
    # Both were refused before, but as a scenario file that is a folder and as a trace that does
    # not exist: the message named the wrong problem.
    sc = load_scenario("default", {"fleet.accelerator_file": str(tmp_path)})
    with pytest.raises(ScenarioError, match=re.escape("fleet.accelerator_file: a folder; expected a YAML file")):
        build_facility(sc)
    trace = {"kind": "trace", "path": str(tmp_path)}
    sc = load_scenario("default", {"workloads.0.arrivals": trace})
    with pytest.raises(ScenarioError, match="is a folder; expected a trace file or a built-in trace name"):
        build_facility(sc)


# ------------------------------------------------------------------------ cooling plant overrides
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("{chiler_q_ref_w: 1e6}", "unknown plant parameter(s) 'chiler_q_ref_w'"),  # validate said valid
        ("{chiller_q_ref_w: -1e6}", "PlantParams.chiller_q_ref_w must be > 0"),  # a TypeError traceback
        ("{heat_rejection: 5}", "set cooling.heat_rejection itself"),
        ("{tower_approach_k: .inf}", "cooling.plant_overrides.tower_approach_k"),  # inf refused by the model
    ],
)
def test_validate_refuses_plant_overrides_the_run_cannot_build(overrides: str, message: str) -> None:
    for command in ("validate", "run"):
        args = [command, "default", "--set", f"cooling.plant_overrides={overrides}"]
        if command == "run":
            args += ["-q", "--out", "/nonexistent-parent/never-written"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, (command, res.output)
        assert message in " ".join(res.output.split()), (command, res.output)


def test_a_known_plant_override_still_applies() -> None:
    sc = load_scenario("default", {"cooling.plant_overrides": {"chiller_q_ref_w": "2e6"}})  # YAML's 2e6 is text
    assert sc.cooling.plant_overrides.given() == {"chiller_q_ref_w": 2e6}
