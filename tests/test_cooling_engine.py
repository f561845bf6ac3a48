"""Cooling in the engine: the behaviours issue 3 names, each a physical trend or a hand value."""

import numpy as np
import pytest

from twin import load_scenario, simulate

TRAIN = [{"name": "train", "kind": "training", "model": "Llama-3.1-8B", "mfu": 0.45}]
CHAT = [
    {
        "name": "chat",
        "kind": "inference",
        "model": "Llama-3.1-8B",
        "max_batch": 128,
        "arrivals": {"kind": "constant", "requests_per_s": 60, "prompt_tokens": 500, "output_tokens": 200},
    }
]


def small(weather=None, cooling=None, workloads=CHAT, **kw):
    """Two racks of four servers (64 GPUs)."""
    over = {
        "fleet.rows": 1, "fleet.racks_per_row": 2, "duration_s": 3600, "step_s": 10, "report_interval_s": 600,
        "workloads": workloads, "weather": weather or {"source": "constant", "dry_bulb_c": 25, "wet_bulb_c": 18},
        # A power chain sized for 64 GPUs (the default's 2 x 1.4 MW UPS would idle at 1.5 % of rating).
        "power.ups.rated_w": 120e3, "power.transformer.rated_w": 250e3, "site.other_facility_power_w": 500,
    }  # fmt: skip
    if cooling is not None:
        over["cooling"] = cooling
    over.update(kw)
    return load_scenario("default", over)


def test_pue_rises_on_a_hotter_day():
    cool = simulate(small({"source": "constant", "dry_bulb_c": 10, "wet_bulb_c": 7}), debug=True)
    hot = simulate(small({"source": "constant", "dry_bulb_c": 35, "wet_bulb_c": 28}), debug=True)
    assert hot.kpis["pue"] > cool.kpis["pue"] + 0.01
    assert hot.kpis["energy_cooling_chiller_j"] > cool.kpis["energy_cooling_chiller_j"]
    assert cool.kpis["pue"] >= 1.0


def test_raising_facility_water_setpoint_lowers_chiller_energy():
    weather = {"source": "constant", "dry_bulb_c": 30, "wet_bulb_c": 24}
    chiller, gpu = {}, {}
    for cls in ("W17", "W27", "W32", "W45"):
        r = simulate(small(weather, {"model": "plant", "type": "liquid", "liquid_class": cls}), debug=True)
        chiller[cls] = r.kpis["energy_cooling_chiller_j"]
        gpu[cls] = r.kpis["energy_accelerators_j"]
    # Tower water 24 + 4 = 28 C: W17 and W27 loops need chillers, W32 (and warmer) need none for
    # the liquid side; the chillers then carry the air side alone. Warmer water leaks more power
    # through the dies (twin.physics.silicon), and the air side carries its share of that (PSU and
    # PDU losses): the chillers' work grows by less than the GPUs' energy does.
    assert chiller["W17"] > chiller["W27"] > chiller["W32"]
    assert gpu["W45"] > gpu["W32"]
    assert chiller["W45"] / chiller["W32"] - 1.0 < gpu["W45"] / gpu["W32"] - 1.0


def test_free_cooling_follows_wet_bulb():
    # W27 with a tower: the economiser carries the liquid loop alone while wet-bulb + 4 K + 2 K <= 27 C.
    weather = {"source": "diurnal", "dry_bulb_c": 24, "dew_point_c": 18, "amplitude_k": 8, "peak_hour": 15}
    sc = small(weather, {"model": "plant", "type": "liquid", "liquid_class": "W27"},
               duration_s=86400, step_s=60, report_interval_s=3600)  # fmt: skip
    r = simulate(sc, debug=True)
    ts = r.timeseries
    order = np.argsort(ts["wet_bulb_c"].to_numpy())
    fc = ts["free_cooling_fraction"].to_numpy()[order]
    assert np.all(np.diff(fc) <= 1e-9)  # never more free cooling on a more humid hour
    assert fc[0] > fc[-1] + 0.05
    # A cold climate gets more free-cooling hours than a hot one in the same July week.
    hot = simulate(small({"source": "greensboro-nc"}, duration_s=7 * 86400, step_s=600, report_interval_s=3600))
    cold = simulate(small({"source": "sand-point-ak"}, duration_s=7 * 86400, step_s=600, report_interval_s=3600))
    assert cold.kpis["free_cooling_h"] > hot.kpis["free_cooling_h"]
    assert cold.kpis["energy_cooling_chiller_j"] < hot.kpis["energy_cooling_chiller_j"]


def test_load_step_gives_the_die_time_constant():
    # From rest at the inlet temperature, constant load from t = 0: the die follows
    # T_ss + (T_in - T_ss) exp(-t/tau) with tau = 2 s (catalog die_time_constant_s).
    sc = small(cooling={"model": "ideal", "type": "liquid", "supply_temp_c": 30.0}, workloads=TRAIN,
               duration_s=40, step_s=0.25, report_interval_s=1)  # fmt: skip
    r = simulate(sc)
    die = r.timeseries["die_temp_max_c"].to_numpy()
    t = np.arange(1, die.size + 1, dtype=float)
    p = r.timeseries["gpu_power_mean_w"].iloc[-1]
    t_ss = 30.0 + 0.04 * p
    assert die[-1] == pytest.approx(t_ss, abs=1e-3)
    tau_fit = -1.0 / np.polyfit(t[:8], np.log((t_ss - die[:8]) / (t_ss - 30.0)), 1)[0]
    assert tau_fit == pytest.approx(2.0, rel=1e-6)
    assert (die[1] - 30) / (t_ss - 30) == pytest.approx(1 - np.exp(-1), rel=1e-9)  # t = tau: 63.2 %


def undersized(chiller_kw):
    return small(
        {"source": "constant", "dry_bulb_c": 35, "wet_bulb_c": 28},
        {"model": "plant", "type": "liquid", "liquid_class": "W17", "economiser": False, "n_chillers": 1,
         "plant_overrides": {"chiller_q_ref_w": chiller_kw * 1e3},
         # ~1 t of rack and server metal per rack at 0.5 kJ/(kg K) holds the room air: the liquid
         # loop, not the room's 45 C server trip, is what binds here
         "room_extra_heat_capacity_j_k_per_rack": 5e5},
        workloads=TRAIN, duration_s=1800, step_s=1, report_interval_s=60,
    )  # fmt: skip


def test_undersized_cooling_throttles_and_costs_tokens():
    # Liquid heat is ~54 kW at full clock and ~35 kW at the lowest clock: a 45 kW chiller makes
    # the GPUs throttle to a balance; a 20 kW one cannot be met even at the floor (see below).
    ample = simulate(undersized(2000), debug=True)
    short = simulate(undersized(45), debug=True)
    assert ample.kpis["throttled_gpu_h"] == 0 and ample.kpis["unmet_heat_j"] == 0
    assert short.kpis["unmet_heat_j"] > 0
    assert short.kpis["throttled_gpu_h"] > 0
    assert short.kpis["tokens_out"] < ample.kpis["tokens_out"]
    ts = short.timeseries
    # Once the loop has warmed to the balance, the throttled fleet makes clearly fewer tokens.
    assert ts["tokens_out"].iloc[-1] < 0.85 * ample.timeseries["tokens_out"].iloc[-1]
    # The loop warms, then holds where throttled GPUs shed the heat the chiller cannot take.
    assert ts["loop_excess_k"].iloc[-1] > 10
    assert ts["clock_fraction_mean"].iloc[-1] < 1.0
    assert short.kpis["max_die_temp_c"] <= 89.0 + 0.5  # held at the slowdown temperature
    # The ledger balanced every interval (debug=True) and in total.
    assert abs(short.kpis["ledger_residual_j"]) < 1e-9 * short.kpis["facility_energy_j"]


def test_cooling_far_too_small_ends_in_thermal_shutdown():
    r = simulate(undersized(20), debug=True)
    ts = r.timeseries
    assert r.kpis["min_servers_up"] == 0
    assert r.kpis["max_die_temp_c"] >= 92.0 - 1e-6  # H100 shutdown temperature (nvidia-smi -q)
    assert ts["servers_up"].iloc[0] == 8 and ts["servers_up"].iloc[-1] == 0
    # Throttling came first: the clock fell before the servers went down.
    first_down = int(np.argmax(ts["servers_up"].to_numpy() < 8))
    assert ts["throttled_gpu_s"].iloc[: first_down + 1].sum() > 0


def test_air_cooling_costs_more_than_liquid():
    weather = {"source": "constant", "dry_bulb_c": 30, "wet_bulb_c": 22}
    air = simulate(small(weather, {"model": "plant", "type": "air"}), debug=True)
    liquid = simulate(small(weather, {"model": "plant", "type": "liquid"}), debug=True)
    assert air.kpis["pue"] > liquid.kpis["pue"]
    assert air.kpis["energy_cooling_crah_fans_j"] > liquid.kpis["energy_cooling_crah_fans_j"]
    assert air.kpis["max_die_temp_c"] > liquid.kpis["max_die_temp_c"] - 5  # heat sinks run warm too


def test_water_per_heat_hand_calculation():
    # Tower water: evaporation f Q/h_fg (f the weather's evaporated share, tests/test_tower_water.py)
    # plus blowdown (cycles 5: evaporation/(5-1)) plus drift. With W45 + dry cooler no water at all.
    w45_dry = {"model": "plant", "type": "liquid", "liquid_class": "W45", "heat_rejection": "dry_cooler"}
    dry = simulate(small(cooling=w45_dry))
    assert dry.kpis["water_l"] == 0.0
    wet = simulate(small())
    assert 1.5 < wet.kpis["wue_l_per_kwh"] < 3.0  # industry 1.8-1.9 L/kWh (parameters.md 3.5)
