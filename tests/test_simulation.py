import numpy as np
import pytest

from twin import load_scenario, simulate
from twin.catalog import accelerator_spec, loss_curve, model_spec
from twin.physics.power import tabulated_loss_w

LOSSLESS = {f"power.{s}.curve": "lossless" for s in ("transformer", "ups", "pdu", "psu")}
IDEAL = {"cooling": {"model": "ideal", "supply_temp_c": 30.0}}
#: An idle H100 on its cold plate (0.04 K/W, 30 C water) settles at 30 + 0.04 x 70 = 32.8 C; the
#: measured 70 W idle came from boards whose die sat at 25 + 40/700 x 70 = 29 C, so it leaks
#: 70 x (2**((32.8 - 65)/25) - 2**((29 - 65)/25)) = 2.87 W more (twin.physics.silicon).
IDLE_GPU_W = 70.0 + 70.0 * (2.0 ** ((32.8 - 65.0) / 25.0) - 2.0 ** ((29.0 - 65.0) / 25.0))


def test_ledger_balances_default(short_default):
    r = simulate(short_default, debug=True)
    led = r.ledger
    booked = led[[c for c in led.columns if c.endswith("_j") and c not in ("metered_j", "residual_j")]].sum(axis=1)
    np.testing.assert_allclose(booked, led["metered_j"], rtol=1e-9)
    assert abs(r.kpis["ledger_residual_j"]) <= 1e-9 * r.kpis["facility_energy_j"]
    assert r.kpis["facility_energy_j"] == pytest.approx(
        sum(v for k, v in r.kpis.items() if k.startswith("energy_") and k.endswith("_j")), rel=1e-9
    )


def test_idle_fleet_hand_calculation():
    # No workload: every GPU at idle (70 W, nvidia-smi dumps, and its leakage on the cold plate)
    # and every host at 1400 W. Lossless chain, no cooling overhead, no other load: facility = IT =
    # 8 * 72.87 + 1400 per server.
    sc = load_scenario(
        "default",
        {
            **LOSSLESS,
            "workloads": [],
            "duration_s": 3600,
            "report_interval_s": 600,
            **IDEAL,
            "site.other_facility_power_w": 0.0,
        },
    )
    r = simulate(sc)
    assert abs(IDLE_GPU_W - 72.87) < 0.01
    per_server = 8 * IDLE_GPU_W + 1400.0
    assert r.kpis["mean_facility_power_w"] == pytest.approx(128 * per_server, rel=1e-12)
    assert r.kpis["pue"] == pytest.approx(1.0, rel=1e-12)
    assert r.kpis["tokens_out"] == 0


def test_psu_loss_hand_calculation():
    # Idle fleet with only PSU losses: each server's 1983 W (8 idle GPUs at 72.87 W and the host's
    # 1400 W) is shared by 6 PSUs of 3300 W (load fraction 0.100) on the 80 PLUS Titanium table; by
    # hand from the table's first two points.
    sc = load_scenario(
        "default",
        {
            **LOSSLESS,
            "power.psu.curve": "80plus-titanium-230v-redundant",
            "workloads": [],
            "duration_s": 600,
            "report_interval_s": 600,
            **IDEAL,
            "site.other_facility_power_w": 0.0,
        },
    )
    r = simulate(sc)
    server_w = 8 * IDLE_GPU_W + 1400.0
    x = server_w / 6 / 3300.0
    # loss fraction at 10 % = 0.1*(1/0.90-1), at 20 % = 0.2*(1/0.94-1); below 10 % the
    # extrapolation is linear through those two points.
    l10, l20 = 0.1 * (1 / 0.90 - 1), 0.2 * (1 / 0.94 - 1)
    loss_frac = l10 + (l20 - l10) / 0.1 * (x - 0.1)
    expected_w = 128 * 6 * loss_frac * 3300.0
    assert r.kpis["energy_psu_loss_j"] / 600 == pytest.approx(expected_w, rel=1e-9)
    c = loss_curve("80plus-titanium-230v-redundant")
    assert expected_w == pytest.approx(
        128 * 6 * float(tabulated_loss_w(server_w / 6, 3300, c.load_fraction, c.efficiency))
    )


def test_tokens_equal_demand_with_ample_capacity(one_server):
    r = simulate(one_server)
    # 20 requests/s x 600 s x 200 output tokens, every one served (closed-form arrivals).
    assert r.kpis["tokens_generated"] == pytest.approx(20 * 600 * 200, rel=1e-12)
    assert r.kpis["tokens_prefill"] == pytest.approx(20 * 600 * 500, rel=1e-12)
    assert r.kpis["chat_backlog_tokens_end"] == pytest.approx(0.0, abs=1e-6)


def test_backlog_grows_when_overloaded(one_server):
    over = one_server.with_updates({"workloads.0.arrivals.requests_per_s": 2000})
    r = simulate(over)
    demanded = 2000 * 600 * 200
    assert r.kpis["tokens_generated"] < 0.5 * demanded
    backlog = r.timeseries["chat_backlog_tokens"].to_numpy()
    assert np.all(np.diff(backlog) > 0)
    # Token conservation: served + waiting = arrived (prefill + decode).
    arrived = 2000 * 600 * (200 + 500)
    served = r.kpis["tokens_generated"] + r.kpis["tokens_prefill"]
    assert served + backlog[-1] == pytest.approx(arrived, rel=1e-9)
    # A saturated replica runs at max batch.
    assert r.timeseries["chat_batch_mean"].iloc[-1] == pytest.approx(256)


def training_scenario(**updates):
    base = {
        "fleet.rows": 1,
        "fleet.racks_per_row": 1,
        "fleet.servers_per_rack": 2,
        "duration_s": 600,
        "report_interval_s": 60,
        "step_s": 60,
        "workloads": [{"name": "train", "kind": "training", "model": "Llama-3.1-8B", "mfu": 0.45}],
    }
    base.update(updates)
    return load_scenario("default", base)


def test_training_throughput_six_n():
    # MFU 0.45 puts an H100 at its 700 W limit: the governor settles the clock where the power
    # meets it, and the compute-bound job makes 6N-rule tokens at that clock.
    r = simulate(training_scenario())
    h100 = accelerator_spec("H100-SXM")
    clock = float(r.timeseries["clock_fraction_mean"].iloc[0])
    assert 0.5 < clock <= 1.0
    assert r.timeseries["clock_fraction_mean"].to_numpy() == pytest.approx(clock, rel=1e-9)
    expected = 16 * 0.45 * h100.bf16_flop_s / (6 * model_spec("Llama-3.1-8B").active_params) * 600 * clock
    assert r.kpis["tokens_training"] == pytest.approx(expected, rel=1e-9)
    if clock < 1.0:
        assert r.timeseries["gpu_power_mean_w"].to_numpy() == pytest.approx(h100.max_power_w, rel=1e-6)


def test_power_cap_lowers_energy_and_tokens():
    results = [simulate(training_scenario(**{"fleet.power_cap_w": cap})) for cap in (700, 500, 350)]
    energy = [r.kpis["energy_accelerators_j"] for r in results]
    tokens = [r.kpis["tokens_out"] for r in results]
    assert energy[0] > energy[1] > energy[2]
    assert tokens[0] > tokens[1] > tokens[2]
    gpu_w = [r.timeseries["gpu_power_mean_w"].max() for r in results]
    assert gpu_w[1] <= 500 + 1e-6 and gpu_w[2] <= 350 + 1e-6
    assert results[2].kpis["capped_gpu_h"] == pytest.approx(16 * 600 / 3600)


def test_hot_inlet_throttles_and_holds_slowdown_temperature():
    # Inlet 70 C with a 0.04 K/W cold plate: the die may draw (89-70)/0.04 = 475 W before slowdown.
    cool = simulate(training_scenario())
    hot = simulate(training_scenario(cooling={"model": "ideal", "supply_temp_c": 70.0}))
    assert cool.kpis["throttled_gpu_h"] == 0
    assert hot.kpis["throttled_gpu_h"] == pytest.approx(16 * 600 / 3600)
    assert hot.timeseries["gpu_power_mean_w"].max() == pytest.approx(475.0, rel=1e-6)
    assert hot.kpis["max_die_temp_c"] == pytest.approx(89.0, abs=1e-6)
    assert hot.kpis["tokens_out"] < cool.kpis["tokens_out"]


def test_diurnal_peak_at_peak_hour(short_default):
    sc = short_default.with_updates({"duration_s": 86400, "step_s": 60, "report_interval_s": 3600})
    r = simulate(sc)
    peak_hour = r.timeseries["facility_power_w"].idxmax()
    assert peak_hour in (13, 14)  # the interval 13:00-14:00 or 14:00-15:00 straddles the 14:00 peak


def test_seed_and_determinism(short_default):
    a, b = simulate(short_default), simulate(short_default)
    assert a.kpis == b.kpis
    assert a.seed == 42 and a.rng_state["bit_generator"] == "PCG64"
