"""Fidelity: published anchors reproduced from their stated conditions, and the power model
against telemetry (issue 10).

The anchors run once for the module (about 10 s, most of it the annual PUE run). Cases that pass
are a regression guard: each must stay within +-25 % of its published value. Cases the twin misses
are documented misses: the table must keep reporting them as misses, with the reason.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from twin.catalog import accelerator_spec
from twin.cli import app
from twin.validation import (
    ANCHORS,
    MAGNITUDE_FACTOR,
    NOT_EXPRESSIBLE,
    TOLERANCE,
    AnchorResult,
    relative_error,
    run_anchors,
)
from twin.validation.table import NO_TELEMETRY_NOTE, markdown
from twin.validation.telemetry import compare_power_file, modelled_power_w

H100 = accelerator_spec("H100-SXM")

DATA = Path(__file__).parent / "data"

EXPECTED_PASS = {
    "ml-energy-llama8b-h100",
    "latif-dgx-h100-training",
    "smc-immersion-h100-lora",
    "ma-h200-clock-lock-saving",
    "mlperf-h200-llama2-70b",
    "samsi-power-cap-energy",
    "samsi-power-cap-latency",
    "hyperscale-pue",
    "opengate-5kw-shutdown",
    "opengate-10kw-shutdown",
}
#: Misses since the serving fit to ML.ENERGY v3 (issue 14): decode power measured by Ma et al. sits
#: below what 838 vLLM runs show for the same class of work. (The cap's latency cost missed too,
#: at -47 %, while the batch was the one saving the most energy; both Samsi cases now share the
#: batch nearest the published pair: one unknown fitted to two figures, stated in the notes.)
#: The Opengate pair passes since the racks' steel became a room node behind the air (Khankari
#: 2011): a slow 5 kW rise lets it take more heat than a fast 10 kW one, so twice the rack power
#: gives more than half the time off (air alone: 120 s, -36 %, and 61 s).
EXPECTED_MISS: set[str] = {"ma-h200-decode-power"}
#: Vendor claims whose workload is unknowable: checked to an order of magnitude, counted apart.
EXPECTED_MAGNITUDE = {"nvidia-hopper-tokens-per-mw"}


@pytest.fixture(scope="module")
def results() -> dict[str, AnchorResult]:
    return {r.key: r for r in run_anchors()}


def test_every_anchor_is_either_a_guarded_pass_or_a_documented_miss():
    assert set(ANCHORS) == EXPECTED_PASS | EXPECTED_MISS | EXPECTED_MAGNITUDE
    assert not EXPECTED_PASS & EXPECTED_MISS
    assert not (EXPECTED_PASS | EXPECTED_MISS) & EXPECTED_MAGNITUDE


@pytest.mark.parametrize("key", sorted(EXPECTED_PASS))
def test_anchor_within_tolerance(results, key):
    r = results[key]
    assert math.isfinite(r.predicted)
    assert abs(r.rel_error) <= TOLERANCE, f"{key}: {r.predicted_text} vs {r.published_text} ({r.rel_error:+.1%})"
    assert r.status == "pass"
    assert r.source and r.conditions


def test_a_miss_is_reported_as_a_miss_with_its_reason(results):
    # No anchor misses today; the rule is checked on a hand-built case, then on any real miss.
    made_up = AnchorResult("k", "q", 130.0, 100.0, "u", "s", "c", miss_reason="why it misses.")
    assert made_up.status == "miss" and not made_up.passed
    assert made_up.note_text.startswith("MISS: why it misses.")
    assert "| +30.0 % | miss |" in markdown([made_up])
    for key in EXPECTED_MISS:
        r = results[key]
        assert r.status == "miss"
        assert abs(r.rel_error) > TOLERANCE
        assert r.miss_reason
        assert r.note_text.startswith("MISS: " + r.miss_reason)


@pytest.mark.parametrize("key", sorted(EXPECTED_MAGNITUDE))
def test_order_of_magnitude_check_is_shown_not_hidden(results, key):
    r = results[key]
    assert r.magnitude_only and not any(x.magnitude_only for k, x in results.items() if k != key)
    # Within half a decade of the vendor range, and the table says so beside the full error.
    assert 1 / MAGNITUDE_FACTOR <= r.factor <= MAGNITUDE_FACTOR
    assert r.status == "order of magnitude"
    assert r.factor == pytest.approx(r.predicted / max(r.published), rel=1e-12)  # above the range
    text = markdown(list(results.values()))
    assert f"{100 * r.rel_error:+.1f} % (×{r.factor:.2f}) | order of magnitude |" in text
    assert "ORDER-OF-MAGNITUDE CHECK" in r.notes


def test_order_of_magnitude_rule_by_hand():
    def check(predicted, published):
        return AnchorResult("k", "q", predicted, published, "u", "s", "c", magnitude_only=True)

    assert check(3.1e5, (95e3, 1e5)).passed  # x3.1 above the top
    assert not check(3.2e5, (95e3, 1e5)).passed  # x3.2 > sqrt(10) = 3.162
    assert check(31.7, 100.0).passed and not check(31.6, 100.0).passed  # below: 1/sqrt(10) = 0.3162
    assert check(120.0, (95.0, 180.0)).status == "order of magnitude"
    # The same prediction as a +-25 % case misses: the two rules are counted apart.
    assert not AnchorResult("k", "q", 3.1e5, (95e3, 1e5), "u", "s", "c").passed


def hand_power_w(busy, mem, sm, g=1.0, cap=True):
    """The catalog H100's power model written out, at most TDP (``cap``):
    P_idle + span (k_st busy g + k_uncore busy + k_mem m + k_sm s g)."""
    k_st, k_m, k_u = H100.static_power_fraction, H100.mem_power_fraction, H100.uncore_power_fraction
    span = H100.full_power_w - H100.idle_power_w
    dyn = k_st * busy * g + k_u * busy + k_m * mem + (1 - k_st - k_u - k_m) * sm * g
    power = H100.idle_power_w + span * dyn
    return min(power, H100.max_power_w) if cap else power


def test_immersion_node_power_by_hand(results):
    # Training on H100: busy 1, HBM 0.5, SM activity MFU / achieved FLOP fraction = 0.40 / eta_f,
    # plus the leakage its die (coolant 30 C, liquid R_th: cooler than the fit's air-cooled boards)
    # does not draw; node DC = 8 P_gpu + host 2800 W. The engine takes the die temperature in one
    # explicit pass from the power before that leakage, at most the limit (engine.governed.govern:
    # T = 30 + min(P_model, TDP) R_th), so no algebraic loop and the same answer on any tick.
    from twin.physics.silicon import leakage_excess_w

    model = hand_power_w(1.0, 0.5, min(0.40 / H100.achieved_flop_fraction, 1.0), cap=False)
    r_th = H100.thermal_resistance_liquid_k_w
    die_c = 30.0 + min(model, H100.max_power_w) * r_th
    p_gpu = min(model + float(leakage_excess_w(die_c, 30.0, r_th, params=H100.die_params)), H100.max_power_w)
    assert die_c < H100.boost_bin_start_temp_c  # no boost bins dropped
    assert results["smc-immersion-h100-lora"].predicted == pytest.approx((8 * p_gpu + 2800) / 1e3, rel=1e-9)
    # The explicit pass against the steady fixed point T = 30 + P R_th with the leakage in P: the
    # leakage's own heat moves the die by a tenth of a kelvin here, and the power by < 0.1 W.
    p_fixed = p_gpu
    for _ in range(200):
        t_fixed = 30.0 + p_fixed * r_th
        p_fixed = min(model + float(leakage_excess_w(t_fixed, 30.0, r_th, params=H100.die_params)), H100.max_power_w)
    assert abs(t_fixed - die_c) < 0.2
    assert p_fixed == pytest.approx(p_gpu, rel=2e-4)
    # The AC node power adds the PSU loss: positive and a few per cent (80 PLUS Titanium >= 94 %).
    ac, dc = results["latif-dgx-h100-training"].predicted, results["smc-immersion-h100-lora"].predicted
    assert 1.0 < ac / dc < 1.0 / 0.94


def test_samsi_cap_lowers_power_and_slows_the_work():
    # Under the 175 W cap the governor lowers the clock until the power fits, or to its floor clock
    # where HBM traffic alone keeps the board above the cap; either way below the 250 W case, and
    # the same work takes longer.
    from twin.validation.serving_anchors import _samsi_cap_effects

    d_energy, d_latency, _, gpu_w = _samsi_cap_effects()
    assert gpu_w < 250.0
    assert d_energy < 0.0 < d_latency


def test_denser_room_shuts_down_sooner(results):
    t5 = results["opengate-5kw-shutdown"].predicted
    t10 = results["opengate-10kw-shutdown"].predicted
    assert math.isfinite(t5) and math.isfinite(t10)
    assert t10 < t5
    # Twice the power, more than half the time off: the racks' steel takes more of a slow rise.
    assert t5 / t10 > 2.0
    # No faster than its air alone: 12 m3 x 1.2 kg/m3 x 1005 J/kgK per rack warming at >= 5 kW
    # reaches a 92 C die (at least 92 - 24 - R_th x P above the supply air) no sooner than this.
    c_room = 12 * 1.2 * 1005
    assert t5 > (92 - 24 - 0.085 * 700) * c_room / 6.0e3


def test_relative_error_rules():
    assert relative_error(110.0, 100.0) == pytest.approx(0.10)
    assert relative_error(-6.6, -23.0) == pytest.approx(16.4 / 23.0)  # against a negative value
    assert relative_error(1.09, (1.08, 1.10)) == 0.0  # inside a range
    assert relative_error(1.21, (1.08, 1.10)) == pytest.approx(0.11 / 1.10)  # above: to the top
    assert relative_error(0.972, (1.08, 1.10)) == pytest.approx(-0.108 / 1.08)  # below: to the bottom
    assert relative_error(30.0, (0.0, 60.0)) == 0.0  # a one-sided bound "< 60"
    assert relative_error(75.0, (0.0, 60.0)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="lo <= hi"):
        relative_error(1.0, (2.0, 1.0))


def test_not_expressible_cases_say_why():
    keys = [s.key for s in NOT_EXPRESSIBLE]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & set(ANCHORS)
    assert all(len(s.reason) > 20 and s.source for s in NOT_EXPRESSIBLE)


def test_markdown_table_lists_everything(results):
    text = markdown(list(results.values()), NOT_EXPRESSIBLE)
    for key in [*ANCHORS, *(s.key for s in NOT_EXPRESSIBLE)]:
        assert f"| {key} |" in text
    assert NO_TELEMETRY_NOTE in text
    strict = [r for r in results.values() if not r.magnitude_only]
    n_pass = sum(r.passed for r in strict)
    assert f"{n_pass} of {len(strict)} cases within ±25 %" in text
    assert f"1 of 1 order-of-magnitude check within ×{MAGNITUDE_FACTOR:.2f}" in text
    assert n_pass == len(EXPECTED_PASS)


# ------------------------------------------------------------------------ power vs telemetry
SMI_HEADER = "timestamp, index, power.draw [W], utilization.gpu [%], utilization.memory [%], clocks.current.sm [MHz]\n"
SMI_ROWS = (
    "2024/05/01 12:00:00.000, 0, 650.00 W, 100 %, 50 %, 1980 MHz\n"
    "2024/05/01 12:00:01.000, 0, 70.00 W, 0 %, 0 %, 345 MHz\n"
    "2024/05/01 12:00:02.000, 0, 250.00 W, 50 %, 40 %, 990 MHz\n"
    "2024/05/01 12:00:03.000, 0, [N/A], 50 %, 40 %, 990 MHz\n"
)
# By hand with the H100 catalog's power model (hand_power_w), boost clock = the file's highest SM
# clock, 1980 MHz; core power g(f) = f^3 above the voltage floor 0.69, 0.69^2 f below it:
#   row 1: f = 1,   busy 1, HBM 0.5, SM 1                                vs 650 W
#   row 2: idle,    70 W                                                 vs 70 W
#   row 3: f = 0.5, g = 0.69^2 x 0.5 = 0.23805, busy 0.5, HBM 0.4, SM activity 0.5 at that clock
#          (0.25 at boost, 0.5 of the clock's capacity)                  vs 250 W
#   row 4: no power reading: left out.
G_HALF = 0.69**2 * 0.5
HAND_MODEL_W = np.array([hand_power_w(1.0, 0.5, 1.0), 70.0, hand_power_w(0.5, 0.4, 0.5, G_HALF)])
HAND_MEASURED_W = np.array([650.0, 70.0, 250.0])
HAND_MAPE = 100 * np.mean(np.abs(HAND_MODEL_W - HAND_MEASURED_W) / HAND_MEASURED_W)  # 9.2034 %
HAND_BIAS = 100 * np.mean((HAND_MODEL_W - HAND_MEASURED_W) / HAND_MEASURED_W)


@pytest.fixture
def smi_file(tmp_path):
    path = tmp_path / "smi.csv"
    path.write_text(SMI_HEADER + SMI_ROWS)
    return path


def test_power_mape_on_nvidia_smi_by_hand(smi_file):
    c = compare_power_file(smi_file, "H100-SXM")
    assert c.n_samples == 3
    assert c.samples["model_power_w"].to_numpy() == pytest.approx(HAND_MODEL_W, rel=1e-12)
    assert c.mape_pct == pytest.approx(HAND_MAPE, rel=1e-12)
    assert c.bias_pct == pytest.approx(HAND_BIAS, rel=1e-12)
    assert c.measured
    # An explicit boost clock equal to the file's highest gives the same answer.
    assert compare_power_file(smi_file, "H100-SXM", boost_clock_hz=1980e6).mape_pct == pytest.approx(HAND_MAPE)


def test_power_model_on_dcgm_by_hand():
    # First row of tests/data/dcgm_wide.csv, GPU 0: GPU_UTIL 98 %, DRAM_ACTIVE 0.625, SM clock 1830 MHz,
    # the file's highest (f = 1): busy 0.98, HBM 0.625, SM 0.98.
    c = compare_power_file(DATA / "dcgm_wide.csv", "H100-SXM")
    first = c.samples.iloc[0]
    assert (first["gpu_index"], first["power_w"]) == (0, 612.5)
    assert first["model_power_w"] == pytest.approx(hand_power_w(0.98, 0.625, 0.98), rel=1e-12)
    assert c.n_samples == 5  # GPU 1 at t = 1 s has no DRAM_ACTIVE: left out


def test_model_power_limits_and_scalar_equals_vector():
    from twin.catalog import accelerator_spec

    h100 = accelerator_spec("H100-SXM")
    assert float(modelled_power_w(h100, 1.0, 1.0, 1.0)) == pytest.approx(700.0)  # held at the power limit
    assert float(modelled_power_w(h100, 0.0, 0.0, 0.3)) == pytest.approx(70.0)
    u = np.array([0.2, 0.6, 0.9])
    vec = modelled_power_w(h100, u, u / 2, np.full(3, 0.8))
    assert vec == pytest.approx([float(modelled_power_w(h100, x, x / 2, 0.8)) for x in u])
    assert np.all(np.diff(vec) > 0)  # more activity, more power


def _harness_file(tmp_path, energy_source):
    from twin.harness.io import HARNESS_COLUMNS

    rows = [
        # first sample of the run: its power covers no interval and is left out
        (0.0, 900.0, 1.0, 1.0, 1980e6),
        (1.0, 650.0, 1.0, 0.5, 1980e6),
        (2.0, 70.0, 0.0, 0.0, 345e6),
        (3.0, 250.0, 0.5, 0.4, 990e6),
    ]
    lines = [",".join(HARNESS_COLUMNS)]
    for t, p, u, m, clk in rows:
        values = {
            "time_s": t, "gpu_index": 0, "power_w": p, "energy_j": "", "utilization": u, "memory_utilization": m,
            "temperature_c": 50.0, "sm_clock_hz": clk, "mem_clock_hz": 2619e6, "power_limit_w": 700.0,
            "tokens": 10.0, "phase": "decode",
        }  # fmt: skip
        lines.append(",".join(str(values[c]) for c in HARNESS_COLUMNS))
    path = tmp_path / "run.csv"
    path.write_text("\n".join(lines) + "\n")
    summary = {"energy_source": energy_source, "device_name": "NVIDIA H100 80GB HBM3"}
    (tmp_path / "run.summary.json").write_text(json.dumps(summary))
    return path


def test_power_mape_on_harness_output(tmp_path):
    c = compare_power_file(_harness_file(tmp_path, "nvml"))  # accelerator from the device name
    assert c.accelerator == "H100-SXM"
    assert c.n_samples == 3
    assert c.mape_pct == pytest.approx(HAND_MAPE, rel=1e-12)
    assert c.measured


def test_estimated_harness_power_is_flagged(tmp_path):
    c = compare_power_file(_harness_file(tmp_path, "estimated"), "H100-SXM")
    assert not c.measured
    assert any("ESTIMATE" in n for n in c.notes)


def test_missing_memory_and_clock_are_stated(tmp_path):
    path = tmp_path / "bare.csv"
    header = "timestamp, index, power.draw [W], utilization.gpu [%]\n"
    path.write_text(header + "2024/05/01 12:00:00.000, 0, 385.00 W, 100 %\n")
    c = compare_power_file(path, "H100-SXM")
    # busy 1, memory 0, SM 1 at boost, against 385 W measured.
    assert c.mape_pct == pytest.approx(100 * (hand_power_w(1.0, 0.0, 1.0) - 385.0) / 385.0)
    assert any("memory" in n for n in c.notes) and any("clock" in n for n in c.notes)


# ----------------------------------------------------------------------------------- CLI
def test_cli_writes_markdown_csv_and_json(tmp_path):
    md, csv_path, js = tmp_path / "a.md", tmp_path / "a.csv", tmp_path / "a.json"
    args = ["validate-anchors", "--only", "smc-immersion-h100-lora"]
    res = CliRunner().invoke(app, [*args, "--out", str(md), "--out", str(csv_path), "--out", str(js)])
    assert res.exit_code == 0, res.output
    assert "smc-immersion-h100-lora" in res.output
    data = json.loads(js.read_text())
    assert [a["key"] for a in data["anchors"]] == ["smc-immersion-h100-lora"]
    assert data["anchors"][0]["status"] == "pass"
    assert data["telemetry_note"] == NO_TELEMETRY_NOTE
    assert "| smc-immersion-h100-lora |" in md.read_text()
    assert csv_path.read_text().splitlines()[0].startswith("kind,key,quantity,predicted")


def test_cli_telemetry_only(tmp_path, smi_file):
    js = tmp_path / "t.json"
    cmd = ["validate-anchors", "--no-anchors", "--telemetry", str(smi_file), "--accelerator", "H100-SXM"]
    res = CliRunner().invoke(app, [*cmd, "--out", str(js)])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(js.read_text())["telemetry"]
    assert row["mape_pct"] == pytest.approx(HAND_MAPE)
    assert row["n_samples"] == 3


@pytest.mark.parametrize(
    "extra",
    [
        ["--only", "no-such-anchor"],
        ["--only", "smc-immersion-h100-lora", "--out", "table.txt"],
        ["--no-anchors", "--telemetry", str(DATA / "burstgpt_sample.csv"), "--accelerator", "H100-SXM"],
        ["--no-anchors", "--telemetry", str(DATA / "nvidia_smi_units.csv"), "--accelerator", "missing.yaml"],
        ["--no-anchors", "--telemetry", str(DATA / "nvidia_smi_units.csv")],  # no accelerator named
        ["--no-anchors", "--telemetry", str(DATA), "--accelerator", "H100-SXM"],  # a folder (was a traceback)
    ],
)
def test_cli_rejects_bad_input(extra):
    res = CliRunner().invoke(app, ["validate-anchors", *extra])
    assert res.exit_code == 2, res.output


@pytest.mark.parametrize("module_name", ["compare", "telemetry", "serving_anchors"])
def test_docstring_examples(module_name):
    import doctest
    import importlib

    module = importlib.import_module(f"twin.validation.{module_name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
