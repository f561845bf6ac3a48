"""Faults, redundancy and backup power: what the issue asks, each against a hand calculation or a law."""

import numpy as np
import pytest

from twin import load_scenario, simulate
from twin.catalog import accelerator_spec, loss_curve, model_spec
from twin.errors import ScenarioError
from twin.physics.power import quadratic_loss_w

LOSSLESS = {f"power.{s}.curve": "lossless" for s in ("transformer", "ups", "pdu", "psu")}
IDEAL = {"model": "ideal", "type": "liquid", "supply_temp_c": 30.0}
TRAIN = {"name": "train", "kind": "training", "model": "Llama-3.1-8B", "mfu": 0.45, "checkpoint_interval_s": 600}
CHAT = {
    "name": "chat",
    "kind": "inference",
    "model": "Llama-3.1-8B",
    "max_batch": 128,
    "arrivals": {"kind": "constant", "requests_per_s": 30, "prompt_tokens": 500, "output_tokens": 200},
}


def small(workloads=(TRAIN,), **kw):
    """Two racks of four 8-GPU servers, a power chain sized for them."""
    over = {
        "fleet.rows": 1, "fleet.racks_per_row": 2, "duration_s": 1800, "step_s": 1, "report_interval_s": 300,
        "workloads": list(workloads), "cooling": IDEAL, "weather": {"source": "constant"},
        "power.ups.rated_w": 120e3, "power.transformer.rated_w": 250e3, "site.other_facility_power_w": 500,
    }  # fmt: skip
    over.update(kw)
    return load_scenario("default", over)


def event_times(result, name):
    ev = result.events
    return ev.loc[ev["event"] == name, "time_s"].to_numpy()


# ------------------------------------------------------------------------------------------ 2N
def test_2n_loses_no_load_on_one_feed_loss():
    base = simulate(small(), debug=True)
    fault = simulate(small(events=[{"time_s": 600, "kind": "feed_loss", "target": "A", "duration_s": 600}]), debug=True)
    # No load lost: every server stayed up and produced the same tokens with the same IT energy.
    assert fault.kpis["min_servers_up"] == 8 and fault.kpis["load_shed_j"] == 0
    assert fault.kpis["tokens_out"] == pytest.approx(base.kpis["tokens_out"], rel=1e-12)
    assert fault.kpis["it_energy_j"] == pytest.approx(base.kpis["it_energy_j"], rel=1e-12)
    # Its losses change: the surviving UPS module carries the whole load alone (one unit at
    # P instead of two at P/2), its 3 PSUs per server each carry twice the load.
    a, b, c = (loss_curve("ups-double-conversion").__getattribute__(k) for k in "abc")
    led = fault.ledger
    during = led.iloc[2]  # 600-900 s: feed A down
    p = (during["accelerators_j"] + during["server_other_j"] + during["psu_loss_j"] + during["pdu_loss_j"]) / 300
    assert during["ups_loss_j"] / 300 == pytest.approx(float(quadratic_loss_w(p, 120e3, a, b, c)), rel=1e-9)
    before = led.iloc[0]
    p0 = (before["accelerators_j"] + before["server_other_j"] + before["psu_loss_j"] + before["pdu_loss_j"]) / 300
    assert before["ups_loss_j"] / 300 == pytest.approx(2 * float(quadratic_loss_w(p0 / 2, 120e3, a, b, c)), rel=1e-9)
    assert during["psu_loss_j"] != pytest.approx(before["psu_loss_j"], rel=1e-3)
    assert led.iloc[5]["ups_loss_j"] == pytest.approx(before["ups_loss_j"], rel=1e-9)  # repaired at 1200 s
    # The same feed loss on a single (N) UPS takes the whole load down.
    single = small(
        events=[{"time_s": 600, "kind": "feed_loss", "target": "A", "duration_s": 600}],
        **{"power.ups.count": 1, "power.ups.redundancy": "N"},
    )
    lost = simulate(single, debug=True)
    assert lost.kpis["min_servers_up"] == 0 and lost.kpis["servers_shed_max"] == 8
    assert lost.kpis["tokens_out"] < base.kpis["tokens_out"]


# ------------------------------------------------------------------------------------ battery
def outage(battery, generator=None, workloads=()):
    over = {
        **LOSSLESS,
        # The fitted power model alone (no leakage beyond it, no boost bins: twin.physics.silicon),
        # so an idle GPU draws its measured 70 W.
        "fleet.accelerator_overrides": {"leakage_power_fraction": 0.0, "boost_bin_fraction": 0.0},
        "power.ups.curve": "ups-double-conversion",
        "power.ups.battery": battery,
        "events": [{"time_s": 100, "kind": "utility_loss", "duration_s": 1200}],
    }
    if generator is not None:
        over["power.generator"] = generator
    return small(workloads=workloads, **over)


def test_undersized_battery_sheds_load_at_the_computed_time():
    # Idle fleet behind a lossless PSU/PDU chain: the UPS delivers P_it = 8 x (8 x 70 + 1400) W and
    # loses 2 x quadratic(P_it/2) in its two 2N modules; the battery feeds both.
    p_it = 8 * (8 * 70.0 + 1400.0)
    a, b, c = (getattr(loss_curve("ups-double-conversion"), k) for k in "abc")
    p_battery = p_it + 2 * float(quadratic_loss_w(p_it / 2, 120e3, a, b, c))
    energy_j, min_soc, eta = 6.0e6, 0.2, 0.95
    r = simulate(outage({"energy_j": energy_j, "min_soc": min_soc, "discharge_efficiency": eta}), debug=True)
    t_empty = 100 + eta * energy_j * (1 - min_soc) / p_battery  # E_usable / P_load after the outage
    assert event_times(r, "battery_empty") == pytest.approx([t_empty], abs=1e-6)
    assert event_times(r, "load_shed") == pytest.approx([t_empty], abs=1e-6)
    assert r.kpis["battery_min_soc"] == pytest.approx(min_soc, abs=1e-9)
    assert r.kpis["servers_shed_max"] == 8
    # Shed from the empty instant to the utility's return at 1300 s, at the servers' draw.
    assert r.kpis["load_shed_j"] == pytest.approx(p_it * (1300 - t_empty), rel=1e-9)
    # The battery delivered exactly its usable energy.
    assert r.kpis["battery_discharged_j"] == pytest.approx(eta * energy_j * (1 - min_soc), rel=1e-9)
    # A generator that starts before the battery runs out carries the load: nothing is shed.
    early = simulate(
        outage({"energy_j": energy_j, "min_soc": min_soc}, {"rated_w": 100e3, "start_delay_s": 60}), debug=True
    )
    assert early.kpis["servers_shed_max"] == 0 and early.kpis["load_shed_j"] == 0
    assert event_times(early, "generator_online") == pytest.approx([160.0])
    assert early.kpis["battery_min_soc"] == pytest.approx(1 - 60 * p_battery / 0.95 / energy_j, rel=1e-9)
    # A late one lets the battery run out, then brings the servers back after they boot (300 s).
    late = simulate(outage({"energy_j": energy_j, "min_soc": min_soc}, {"rated_w": 100e3, "start_delay_s": 600}))
    assert event_times(late, "load_shed") == pytest.approx([t_empty], abs=1e-6)
    assert event_times(late, "servers_booted") == pytest.approx([700.0 + 300.0])


def test_a_server_repaired_while_unpowered_boots_only_when_power_returns():
    # Server failure 50-400 s inside a utility outage (100-1300 s) with an empty-early battery and
    # no generator: the repair at 400 s must not boot the unpowered server; all 8 boot at 1300 + 300 s.
    sc = outage({"energy_j": 1.0e6, "min_soc": 0.2})
    events = [*sc.model_dump()["events"], {"time_s": 50, "kind": "server_fail", "count": 1, "duration_s": 350}]
    r = simulate(sc.with_updates({"events": events, "duration_s": 1800}), debug=True)
    assert event_times(r, "servers_booted") == pytest.approx([1600.0])
    booted = r.events.loc[r.events["event"] == "servers_booted"]
    assert booted.iloc[0]["detail"] == "servers=8"


def test_a_job_that_lost_every_server_restarts_after_they_boot():
    # Utility lost 100-1300 s, battery empty within a minute, no generator: the training job rolls
    # back, and its 600 s restart can only begin once its servers have booted (1300 + 300 s), so it
    # trains again from 2200 s: the 2100-2400 s interval holds 200 s of full-rate tokens.
    sc = outage({"energy_j": 1.0e6, "min_soc": 0.2}, workloads=(TRAIN,))
    r = simulate(sc.with_updates({"duration_s": 3000}), debug=True)
    assert event_times(r, "servers_booted") == pytest.approx([1600.0])
    tok = r.timeseries.set_index("time_s")["tokens_training"]
    assert tok.loc[300:1800].sum() == 0.0  # 300-2100 s: dark, booting, then restarting
    assert tok.loc[2100] == pytest.approx(tok.loc[2400] * 200 / 300, rel=1e-9)


def test_generator_that_fails_to_start_leaves_the_battery_alone():
    battery = {"energy_j": 6.0e6, "min_soc": 0.2}
    fails = simulate(outage(battery, {"rated_w": 100e3, "start_delay_s": 60, "fail_to_start_probability": 1.0}))
    assert len(event_times(fails, "generator_failed_to_start")) == 1
    assert len(event_times(fails, "generator_online")) == 0
    assert fails.kpis["servers_shed_max"] == 8
    # A generator that trips while carrying the load hands it back to the battery.
    trip = outage(battery, {"rated_w": 100e3, "start_delay_s": 10})
    trip = trip.with_updates({"events": [*trip.model_dump()["events"], {"time_s": 400, "kind": "generator_fail"}]})
    tripped = simulate(trip, debug=True)
    assert event_times(tripped, "generator_tripped") == pytest.approx([400.0])
    sources = tripped.events.loc[tripped.events["event"] == "power_source", "detail"].tolist()
    assert sources[:3] == ["source=battery", "source=generator", "source=battery"]


def test_runtime_sizes_the_battery_at_rated_output():
    # runtime_s is the autonomy at the UPS rating (one 2N side, 120 kW): E = P t / (eta (1 - SoC_min)).
    r = simulate(outage({"runtime_s": 60, "min_soc": 0.1, "discharge_efficiency": 0.9}))
    assert r.kpis["battery_capacity_j"] == pytest.approx(120e3 * 60 / (0.9 * 0.9), rel=1e-12)


# ----------------------------------------------------------------------------------- cooling
def hot_plant(events, **kw):
    # Rack metal (~1 t per rack, 5e5 J/K) holds the room air: the die, not the 45 C air trip, binds.
    cooling = {"model": "plant", "type": "liquid", "liquid_class": "W17", "economiser": False,
               "room_extra_heat_capacity_j_k_per_rack": 5e5}  # fmt: skip
    weather = {"source": "constant", "dry_bulb_c": 35, "wet_bulb_c": 28}
    return small(cooling=cooling, weather=weather, events=events, duration_s=1500, report_interval_s=60, **kw)


def test_chiller_trip_throttles_before_shutdown():
    # N+1: the plant has two chillers for this load; losing one changes nothing.
    one = simulate(hot_plant([{"time_s": 300, "kind": "chiller_trip", "count": 1}]), debug=True)
    assert one.kpis["time_throttled_s"] == 0 and one.kpis["min_servers_up"] == 8
    # Losing both: the loop warms (W17, no economiser), the GPUs throttle at 89 C, then shut down at 92 C.
    both = simulate(hot_plant([{"time_s": 300, "kind": "chiller_trip", "count": 2}]), debug=True)
    k = both.kpis
    h100 = accelerator_spec("H100-SXM")
    assert 300 < k["first_thermal_throttle_s"] < k["first_thermal_shutdown_s"]
    assert k["time_to_thermal_shutdown_s"] == pytest.approx(k["first_thermal_shutdown_s"] - 300)
    assert k["max_die_temp_c"] == pytest.approx(h100.shutdown_temp_c, abs=1e-6)
    assert k["min_servers_up"] == 0
    # The training job lost its work since the checkpoint at 600 s.
    assert k["tokens_lost_training"] > 0 and k["training_rollbacks"] == 1
    ts = both.timeseries
    throttled_first = ts.loc[ts["throttled_gpu_s"] > 0, "time_s"].min()
    assert throttled_first < ts.loc[ts["servers_up"] < 8, "time_s"].min()


@pytest.mark.parametrize(
    ("kind", "cooling_type"), [("cdu_pump_fail", "liquid"), ("crah_fail", "air")], ids=["cdu", "crah"]
)
def test_losing_a_heat_path_warms_the_gpus(kind, cooling_type):
    cooling = {"model": "plant", "type": cooling_type}
    weather = {"source": "constant", "dry_bulb_c": 25, "wet_bulb_c": 18}
    spare = small(cooling=cooling, weather=weather, duration_s=900, report_interval_s=60,
                  events=[{"time_s": 300, "kind": kind, "count": 1}])  # fmt: skip
    allgone = spare.with_updates({"events": [{"time_s": 300, "kind": kind, "count": 5}]})
    r1, r5 = simulate(spare, debug=True), simulate(allgone, debug=True)
    assert r1.kpis["time_throttled_s"] == 0  # N+1: one unit out is covered
    assert r5.kpis["max_inlet_temp_c"] > r1.kpis["max_inlet_temp_c"] + 5
    assert r5.kpis["time_throttled_s"] > 0
    assert r5.kpis["tokens_out"] < r1.kpis["tokens_out"]


# ------------------------------------------------------------------------------ consequences
def test_training_rolls_back_to_its_last_checkpoint():
    # Checkpoints every 600 s; a server fails at 700 s: 100 s of the job's work is lost.
    r = simulate(small(events=[{"time_s": 700, "kind": "server_fail", "target": "train"}]), debug=True)
    h100 = accelerator_spec("H100-SXM")
    clock = float(r.timeseries["clock_fraction_mean"].iloc[0])  # at the power limit (MFU 0.45)
    # 6N FLOPs per token at MFU 0.45, at that clock
    rate_per_gpu = 0.45 * h100.bf16_flop_s / (6 * model_spec("Llama-3.1-8B").active_params) * clock
    assert r.kpis["tokens_lost_training"] == pytest.approx(rate_per_gpu * 64 * 100, rel=1e-9)
    led = r.ledger.iloc[0]
    it_w = (led["accelerators_j"] + led["server_other_j"]) / 300
    assert r.kpis["lost_energy_j"] == pytest.approx(it_w * 100, rel=1e-9)
    # It restarts 600 s later (restart_s) on the 7 servers left: 700-1300 s produce nothing.
    ts = r.timeseries.set_index("time_s")
    assert ts.loc[900, "tokens_training"] == 0
    assert ts.loc[1500, "tokens_training"] == pytest.approx(rate_per_gpu * 56 * 300, rel=1e-9)
    assert r.kpis["tokens_out_net"] == pytest.approx(r.kpis["tokens_out"] - r.kpis["tokens_lost_training"])


def test_inference_backs_up_on_survivors_or_is_dropped():
    chat = {**CHAT, "servers": 8}
    # Two of eight servers fail: their arrivals go to the six left, which have capacity to spare.
    two = simulate(small(workloads=(chat,), events=[{"time_s": 300, "kind": "server_fail", "count": 2}]), debug=True)
    assert two.kpis["tokens_generated"] == pytest.approx(30 * 1800 * 200, rel=1e-9)
    assert two.kpis["tokens_dropped"] == 0
    # All eight fail for 600 s (then boot for 300 s): arrivals meanwhile are dropped.
    events = [{"time_s": 300, "kind": "server_fail", "count": 8, "duration_s": 600}]
    gone = simulate(small(workloads=(chat,), events=events), debug=True)
    assert gone.kpis["tokens_dropped"] == pytest.approx(30 * 200 * 900, rel=1e-9)
    assert gone.kpis["tokens_generated"] == pytest.approx(30 * 200 * (1800 - 900), rel=1e-9)


def test_random_faults_follow_mtbf_and_the_seed():
    # 8 servers, MTBF 2 h, MTTR 0.5 h over 48 h: about 8 x 48 / 2.5 = 154 failures.
    rel = {"reliability": {"server": {"mtbf_h": 2.0, "mttr_h": 0.5}}}
    sc = small(workloads=(), duration_s=48 * 3600, step_s=60, report_interval_s=3600, **rel)
    a, b = simulate(sc), simulate(sc)
    n = len(event_times(a, "server_fail"))
    assert abs(n - 8 * 48 / 2.5) < 4 * np.sqrt(8 * 48 / 2.5)
    assert a.events.equals(b.events)  # the run's generator, nothing global
    other = simulate(sc.with_updates({"seed": 7}))
    assert not other.events.equals(a.events)
    # Mean repair time from the log: each failure is repaired after an exponential MTTR.
    repaired = len(event_times(a, "server_fail_repaired"))
    assert n - 8 <= repaired <= n


# ------------------------------------------------------------------------------------ controls
def test_site_cap_lowers_energy_and_tokens():
    # Uncapped the fleet draws ~70 kW; at the lowest clock ~49 kW.
    runs = [simulate(small(**{"controls.site_power_limit_w": lim}), debug=True) for lim in (None, 60e3, 52e3)]
    energy = [r.kpis["facility_energy_j"] for r in runs]
    tokens = [r.kpis["tokens_out"] for r in runs]
    assert energy[0] > energy[1] > energy[2]
    assert tokens[0] > tokens[1] > tokens[2]
    assert runs[0].kpis["peak_facility_power_w"] > 60e3  # the caps bind
    for r, lim in zip(runs[1:], (60e3, 52e3), strict=True):
        assert r.kpis["peak_facility_power_w"] <= lim * (1 + 1e-6)
        assert r.kpis["time_above_site_limit_s"] == 0
        assert r.kpis["capped_gpu_h"] > 0
    # A demand-response window lowers the limit for its duration only.
    window = {"controls.demand_response": [{"start_s": 600, "duration_s": 600, "limit_w": 52e3}]}
    dr = simulate(small(**window), debug=True)
    ts = dr.timeseries.set_index("time_s")
    assert ts.loc[600:900, "facility_peak_power_w"].max() <= 52e3 * (1 + 1e-6)
    assert ts.loc[1200, "facility_peak_power_w"] > 60e3  # lifted at the end of the window
    assert ts.loc[0, "facility_power_w"] == pytest.approx(runs[0].timeseries["facility_power_w"].iloc[0])
    assert event_times(dr, "demand_response") == pytest.approx([600.0])


def test_power_floor_smooths_the_grid_ramp_of_checkpoint_stalls():
    stalls = {**TRAIN, "checkpoint_stall_s": 30}
    free = simulate(small(workloads=(stalls,)))
    floored = simulate(small(workloads=(stalls,), **{"controls.training_power_floor_fraction": 0.9}))
    assert floored.kpis["grid_ramp_max_w_per_s"] < 0.5 * free.kpis["grid_ramp_max_w_per_s"]
    assert floored.kpis["tokens_out"] == pytest.approx(free.kpis["tokens_out"], rel=1e-12)
    assert floored.kpis["smoothing_energy_j"] > 0
    extra = floored.kpis["facility_energy_j"] - free.kpis["facility_energy_j"]
    assert extra > floored.kpis["smoothing_energy_j"]  # plus its conversion losses


# -------------------------------------------------------------------------------------- ledger
KINDS = [
    {"kind": "utility_loss"},
    {"kind": "generator_fail"},
    {"kind": "feed_loss", "target": "B"},
    {"kind": "pdu_loss", "target": "A", "rack": 1},
    {"kind": "ups_fail", "count": 2},
    {"kind": "chiller_trip", "count": 3},
    {"kind": "cdu_pump_fail", "count": 4},
    {"kind": "crah_fail", "count": 5},
    {"kind": "server_fail", "count": 3, "target": "train"},
    {"kind": "gpu_fail", "count": 3, "target": "chat"},
]


@pytest.mark.parametrize("event", KINDS, ids=[k["kind"] for k in KINDS])
def test_ledger_balances_through_every_fault(event):
    events = [{"time_s": 300, "duration_s": 600, **event}]
    if event["kind"] == "generator_fail":
        events.append({"time_s": 400, "kind": "utility_loss", "duration_s": 300})
    sc = small(
        workloads=({**TRAIN, "servers": 4}, {**CHAT, "servers": 4}),
        cooling={"model": "plant", "type": "liquid", "liquid_class": "W17", "economiser": False},
        weather={"source": "constant", "dry_bulb_c": 30, "wet_bulb_c": 24},
        events=events,
        duration_s=1500,
        **{"power.ups.battery": {"runtime_s": 30}, "power.generator": {"rated_w": 150e3, "start_delay_s": 120}},
    )
    r = simulate(sc, debug=True)  # debug: the ledger is checked after every interval
    led = r.ledger
    booked = led[[c for c in led.columns if c.endswith("_j") and c not in ("metered_j", "residual_j")]]
    gross = booked.abs().sum(axis=1)
    assert np.all(np.abs(booked.sum(axis=1) - led["metered_j"]) <= 1e-9 * gross)
    k = r.kpis
    assert len(event_times(r, event["kind"])) == 1
    # The battery books what it exchanged: +charged, -discharged; its store follows eta_c and eta_d.
    assert k["energy_battery_net_j"] == pytest.approx(k["battery_charged_j"] - k["battery_discharged_j"], abs=1e-3)
    stored = (k["battery_end_soc"] - 1.0) * k["battery_capacity_j"]
    assert stored == pytest.approx(0.95 * k["battery_charged_j"] - k["battery_discharged_j"] / 0.95, abs=1e-3)


# -------------------------------------------------------------------------------------- schema
def test_fault_errors_name_the_field(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("base: default\nevents:\n  - {time_s: 10, kind: feed_loss}\n  - {time_s: 5, kind: meteor}\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    text = str(exc.value)
    assert "events.0 (line 3): feed_loss needs target A or B, got None" in text
    assert "events.1.kind (line 4)" in text and "utility_loss" in text
    with pytest.raises(ScenarioError, match=r"events\.0\.target: unknown workload 'nope'; valid: chat-70b"):
        simulate(load_scenario("default", {"events": [{"time_s": 1, "kind": "server_fail", "target": "nope"}]}))
    with pytest.raises(ScenarioError, match="give exactly one of energy_j or runtime_s"):
        load_scenario("default", {"power.ups.battery": {"min_soc": 0.1}})


# ----------------------------------------------------------------------------------- scenarios
def scenario(name, **over):
    from pathlib import Path

    return load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / f"{name}.yaml", over)


def test_shipped_fault_scenarios_do_what_they_say():
    # Outage at 7 200 s: the battery empties and sheds the load before the late generator (8 100 s).
    sc = load_scenario("utility-outage-late-generator", {"duration_s": 9000, "step_s": 60})  # a preset
    out = simulate(sc, debug=True)
    empty, online = event_times(out, "battery_empty"), event_times(out, "generator_online")
    assert 7200 < empty[0] < online[0] == 8100
    assert event_times(out, "load_shed") == pytest.approx(empty)
    assert out.kpis["tokens_lost_training"] > 0 and out.kpis["tokens_dropped"] > 0
    # Chillers trip at 3 600 s: throttling, then shutdown.
    hot = simulate(scenario("chiller-trip-hot-day", duration_s=6000, step_s=5), debug=True)
    assert 3600 < hot.kpis["first_thermal_throttle_s"] < hot.kpis["first_thermal_shutdown_s"]
    # The 2 MW cap holds; the oversubscribed pod's UPS stays within one 2N side.
    cap = simulate(scenario("site-cap-2mw", duration_s=7200, step_s=600, report_interval_s=1800), debug=True)
    assert 2.0e6 * 0.999 < cap.kpis["peak_facility_power_w"] <= 2.0e6 * (1 + 1e-6)
    over = simulate(scenario("oversubscription-30pct", step_s=600, report_interval_s=3600), debug=True)
    assert over.kpis["oversubscription"] == pytest.approx(0.30, abs=0.01)
    assert over.kpis["ups_load_fraction_max"] <= 1.0 and over.kpis["time_site_limited_s"] > 0
    assert over.kpis["time_above_site_limit_s"] == 0  # held at the limit, never a hair above it
