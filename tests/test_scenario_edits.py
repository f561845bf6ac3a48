"""Scenario edits (twin.scenario.edits): one set of what-if rules for --set, sweeps and the dashboard."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_dashboard_levers import CONTEXT, _variants  # the lever table's test values
from typer.testing import CliRunner

import twin
from twin.cli import _load, app
from twin.dashboard import levers as lv
from twin.errors import InvalidInputError, ScenarioError
from twin.scenario import edits as ed
from twin.scenario.set_rules import sets_between
from twin.sweep import load_sweep

# The default pod: 4 rows x 8 racks x 4 servers = 128 servers; chat-70b on 96 at 900 req/s,
# code-8b on 32 at 2 000 req/s (twin/presets/default.yaml).


@pytest.fixture(scope="module")
def base() -> twin.Scenario:
    return twin.load_scenario("default")


def point(tmp_path: Path, values: dict[str, Any]) -> twin.Scenario:
    """The scenario of a one-point sweep of ``values`` on the default preset."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": "default", "points": [values]}))
    return load_sweep(spec).points[0].scenario


def cli(*sets: str) -> twin.Scenario:
    """The scenario ``twin run default --set ...`` runs."""
    sc: twin.Scenario = _load("default", list(sets))
    return sc


def dashboard(base: twin.Scenario, values: dict[str, Any]) -> twin.Scenario:
    """The scenario the dashboard runs for lever ``values`` (what its cache key loads)."""
    return twin.load_scenario("default", lv.what_if_overrides(base, values))


def test_doubling_the_fleet_doubles_pools_and_rates_alike_everywhere(base: twin.Scenario, tmp_path: Path) -> None:
    by_cli = cli("fleet.rows=8")
    by_sweep = point(tmp_path, {"fleet.rows": 8})
    by_lever = dashboard(base, {"rows": 8})
    by_edit = ed.resize_fleet(base, rows=8)
    for sc in (by_cli, by_sweep, by_lever, by_edit):
        assert sc.fleet.n_servers == 256
        assert [w.servers for w in sc.workloads] == [192, 64]  # 96 x 2, 32 x 2
        assert [w.arrivals.requests_per_s for w in sc.workloads] == [1800.0, 4000.0]  # type: ignore[union-attr]
        assert sc.model_dump() == by_cli.model_dump()
    assert lv.cli_command("default", lv.what_if_overrides(base, {"rows": 8})).count("--set") == 5


def test_racks_and_rows_together_scale_once(base: twin.Scenario, tmp_path: Path) -> None:
    # 3 rows x 5 racks x 4 = 60 servers, 60/128 of the fleet: floor(96 x 0.46875) = 45, floor(32 x 0.46875) = 15;
    # each rate follows its pool: 900 x 45/96 = 421.875, 2000 x 15/32 = 937.5.
    sets = {"fleet.rows": 3, "fleet.racks_per_row": 5}
    by_cli = cli("fleet.rows=3", "fleet.racks_per_row=5")
    by_sweep = point(tmp_path, sets)
    by_lever = dashboard(base, {"rows": 3, "racks_per_row": 5})
    for sc in (by_cli, by_sweep, by_lever):
        assert [w.servers for w in sc.workloads] == [45, 15]
        assert [w.arrivals.requests_per_s for w in sc.workloads] == [421.875, 937.5]  # type: ignore[union-attr]


def test_what_the_sets_give_themselves_wins_over_what_follows(base: twin.Scenario) -> None:
    # chat-70b sized by hand keeps its rate; code-8b follows the fleet: 16 servers at 1 000 req/s.
    sc = cli("fleet.rows=2", "workloads.0.servers=40")
    assert [w.servers for w in sc.workloads] == [40, 16]
    assert [w.arrivals.requests_per_s for w in sc.workloads] == [900.0, 1000.0]  # type: ignore[union-attr]
    sc = cli("fleet.rows=2", "workloads.1.arrivals.requests_per_s=1500")
    assert [w.servers for w in sc.workloads] == [48, 16]
    assert [w.arrivals.requests_per_s for w in sc.workloads] == [450.0, 1500.0]  # type: ignore[union-attr]
    # Servers per rack change the fleet too; GPUs per server do not (no rule).
    assert [w.servers for w in cli("fleet.servers_per_rack=2").workloads] == [48, 16]
    assert [w.servers for w in cli("fleet.gpus_per_server=4").workloads] == [96, 32]


def test_pools_that_cannot_follow_the_fleet_name_the_set() -> None:
    res = CliRunner().invoke(app, ["validate", "default", "--set", "fleet.rows=2", "--set", "workloads.0.servers=96"])
    assert res.exit_code == 2
    assert "64 servers cannot hold 2 workloads (112 servers" in res.output
    assert "(with --set fleet.rows)" in res.output
    res = CliRunner().invoke(app, ["validate", "default", "--set", "fleet.rows=2"])  # used to be 128 > 64 servers
    assert res.exit_code == 0 and "512 x H100-SXM in 64 servers" in res.output


def test_an_outage_with_backup_is_the_same_from_the_dashboard_and_the_cli(base: twin.Scenario) -> None:
    # The dashboard offers a 5 min battery and a 10 s generator with an outage; --set asks for them.
    by_lever = dashboard(base, {"fault": "utility_loss"})
    event = "{time_s: 7200, kind: utility_loss, duration_s: 3600}"  # 2 h in, repaired after 60 min
    by_cli = cli(f"events=[{event}]", "power.ups.battery.runtime_s=300", "power.generator.start_delay_s=10")
    assert by_cli.model_dump() == by_lever.model_dump()
    assert by_cli.power.generator is not None
    assert by_cli.power.generator.rated_w == 2.0e6  # the transformer stage: 1 x 2 MW
    # Not a rule of --set: an outage alone brings no backup (the dashboard's offer is a UI convenience).
    alone = cli(f"events=[{event}]")
    assert alone.power.ups.battery is None and alone.power.generator is None


def test_a_new_generator_is_rated_at_the_transformers_after_the_sets() -> None:
    sc = cli("power.transformer.rated_w=1.5e6", "power.transformer.count=2", "power.generator.start_delay_s=30")
    assert sc.power.generator is not None
    assert (sc.power.generator.rated_w, sc.power.generator.start_delay_s) == (3.0e6, 30.0)
    sc = cli("power.generator.start_delay_s=30", "power.generator.rated_w=5e5")
    assert sc.power.generator is not None and sc.power.generator.rated_w == 5e5


def test_a_battery_sized_by_energy_is_resized_by_runtime_alike(tmp_path: Path) -> None:
    # 420 MJ usable at 1.4 MW (one 2N side) is 300 s; stored = 420 MJ / (0.95 x 0.9).
    stored_j = 300.0 * 1.4e6 / (0.95 * 0.9)
    path = tmp_path / "energy.yaml"
    outage = "events: [{time_s: 60, kind: utility_loss}]\n"  # the battery lever acts with an outage
    path.write_text(f"base: default\npower:\n  ups: {{battery: {{energy_j: {stored_j!r}}}}}\n{outage}")
    sc = twin.load_scenario(path)
    assert ed.battery_runtime_s(sc) == pytest.approx(300.0, rel=1e-12)
    by_edit = ed.set_battery(sc, 60.0)
    by_cli = _load(str(path), ["power.ups.battery.runtime_s=60"])
    by_lever = twin.load_scenario(path, lv.what_if_overrides(sc, {"battery_runtime_s": 60.0}))
    for got in (by_edit, by_cli, by_lever):
        assert got.power.ups.battery is not None
        assert (got.power.ups.battery.runtime_s, got.power.ups.battery.energy_j) == (60.0, None)
    assert by_cli.model_dump() == by_lever.model_dump() == by_edit.model_dump()


def test_another_accelerator_drops_a_calibrated_file(tmp_path: Path) -> None:
    entry = tmp_path / "h100-fit.yaml"
    entry.write_text("name: H100-fit\n")  # read when the facility is built, not here
    path = tmp_path / "calibrated.yaml"
    path.write_text("base: default\nfleet: {accelerator_file: h100-fit.yaml}\n")
    sc = twin.load_scenario(path)
    by_cli = _load(str(path), ["fleet.accelerator=B200"])
    by_lever = twin.load_scenario(path, lv.what_if_overrides(sc, {"accelerator": "B200"}))
    for got in (by_cli, by_lever, ed.change_accelerator(sc, "B200")):
        assert (got.fleet.accelerator, got.fleet.accelerator_file) == ("B200", None)
    assert _load(str(path), ["fleet.power_cap_w=500"]).fleet.accelerator_file == Path("h100-fit.yaml")


def test_model_edit_resets_precision_but_a_set_keeps_it(base: twin.Scenario) -> None:
    fp8 = ed.set_field(base, "workloads.1.precision", "fp8")
    assert ed.serve_model(fp8, 1, "openai/gpt-oss-20b").workloads[1].precision is None  # type: ignore[union-attr]
    kept = cli("workloads.1.precision=fp8", "workloads.1.model=Llama-3-70B")
    assert kept.workloads[1].precision == "fp8"  # type: ignore[union-attr]


def test_a_pool_of_the_rest_follows_too_and_the_dashboard_pins_its_rate(tmp_path: Path) -> None:
    # code-8b takes the rest of the fleet: 32 of 128 servers, then 64 - 48 = 16 of 64 at half the rate;
    # the rate lever at 2 gives the baseline's 2 000 req/s back, which --set would halve: it is pinned.
    default = yaml.safe_load(twin.scenario.preset_path("default").read_text())
    default["workloads"][1]["servers"] = None
    path = tmp_path / "rest.yaml"
    path.write_text(yaml.safe_dump({"base": "default", "workloads": default["workloads"]}))
    sc = twin.load_scenario(path)
    assert ed.pool_servers(sc) == [96, 32]
    half = _load(str(path), ["fleet.rows=2"])
    assert ed.pool_servers(half) == [48, 16]
    assert half.workloads[1].arrivals.requests_per_s == 1000.0  # type: ignore[union-attr]
    ov = lv.what_if_overrides(sc, {"rows": 2, "rate_scale": 2.0})
    assert ov["workloads.1.arrivals.requests_per_s"] == 2000.0
    assert _load(str(path), _sets(str(path), ov)).model_dump() == twin.load_scenario(path, ov).model_dump()
    assert twin.load_scenario(path, ov).workloads[1].arrivals.requests_per_s == 2000.0  # type: ignore[union-attr]


def _sets(source: str, overrides: dict[str, Any]) -> list[str]:
    """The ``--set`` items of the dashboard's ``twin run`` line, as a shell splits them."""
    argv = shlex.split(lv.cli_command(source, overrides))
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]


@pytest.mark.parametrize("lever", [x for x in lv.LEVERS if x.key != "model"], ids=lambda lever: lever.key)
def test_the_dashboards_twin_run_line_gives_its_what_if(lever: lv.Lever, base: twin.Scenario) -> None:
    """Every lever's overrides read back through --set (its rules) to the scenario the dashboard runs."""
    context = CONTEXT.get(lever.key, {})
    for value in _variants(lever, base):
        values = {**context, lever.key: value}
        ov = lv.what_if_overrides(base, values)
        expected = lv.what_if(base, values).model_dump()
        assert twin.load_scenario("default", ov).model_dump() == expected, (lever.key, value)
        assert cli(*_sets("default", ov)).model_dump() == expected, (lever.key, value)


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (lambda sc: ed.resize_fleet(sc, rows=0), "fleet.rows", "must be > 0"),
        (lambda sc: ed.resize_fleet(sc, rows=1, racks_per_row=1, servers_per_rack=1), "fleet", "cannot hold 2"),
        (lambda sc: ed.scale_request_rate(sc, 0.0), "workloads", "positive finite"),
        (lambda sc: ed.add_fault(sc, "meteor", 60.0), "events.0.kind", "meteor"),
        (lambda sc: ed.add_fault(sc, "feed_loss", 60.0), "events.0", "needs target A or B"),
        (lambda sc: ed.set_battery(sc, -5.0), "power.ups.battery.runtime_s", "must be > 0"),
        (lambda sc: ed.set_generator(sc, -1.0), "power.generator.start_delay_s", "must be >= 0"),
        (lambda sc: ed.serve_model(sc, 5, "Llama-3-70B"), "workloads.5", "no workload"),
        (lambda sc: ed.change_accelerator(sc, "Z80"), "fleet.accelerator", "Z80"),
        (lambda sc: ed.set_field(sc, "fleet.rows.x", 3), "fleet.rows.x", "no such field path"),
    ],
)
def test_edits_refuse_what_they_cannot_honour_naming_the_field(
    base: twin.Scenario, edit: Any, field: str, words: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        edit(base)
    assert isinstance(info.value, InvalidInputError)
    assert info.value.source == base.source_name
    assert any(p.field == field and words in p.message for p in info.value.problems), str(info.value)


def test_edits_are_pure_and_keep_what_they_do_not_touch(base: twin.Scenario) -> None:
    before = base.model_dump()
    sc = ed.add_fault(base, "chiller_trip", 3600.0, duration_s=600.0, count=2)
    sc = ed.set_generator(ed.set_battery(sc))
    sc = ed.replace_arrivals(ed.scale_request_rate(sc, 0.5), "poisson", [1])
    assert base.model_dump() == before
    assert [(e.kind, e.count, e.duration_s) for e in sc.events] == [("chiller_trip", 2, 600.0)]
    assert sc.power.ups.battery is not None and sc.power.ups.battery.runtime_s == ed.DEFAULT_BATTERY_RUNTIME_S
    assert sc.power.generator is not None and sc.power.generator.start_delay_s == 10.0
    chat, code = sc.workloads
    assert chat.arrivals.kind == "diurnal" and chat.arrivals.requests_per_s == 450.0  # type: ignore[union-attr]
    assert code.arrivals.kind == "poisson" and code.arrivals.requests_per_s == 1000.0  # type: ignore[union-attr]
    assert sets_between(base, base) == {}
    assert ed.clear_faults(ed.clear_faults(sc)).events == []
