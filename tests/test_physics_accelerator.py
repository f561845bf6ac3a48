from dataclasses import MISSING, fields, replace

import numpy as np
import pytest
from hand_board import BOARD
from hypothesis import given
from hypothesis import strategies as st

from twin.catalog import accelerator_names, accelerator_spec
from twin.physics.accelerator import (
    DEFAULT_VOLTAGE_FLOOR,
    AcceleratorPowerParams,
    accelerator_power_w,
    clock_for_power_limit,
    core_power_scale,
    core_voltage_fraction,
    die_steady_temp_c,
    thermal_power_limit_w,
)

H100 = accelerator_spec("H100-SXM")
#: The round-numbered board of the hand calculations (tests/hand_board.py).


def power(busy, mem, sm, clock):
    return accelerator_power_w(busy, mem, sm, clock, params=BOARD)


@pytest.mark.parametrize(
    ("busy", "mem", "sm", "expected_w"),
    [
        (0, 0, 0, 70.0),  # idle: catalog idle power (nvidia-smi dumps 67-75 W)
        (1, 1, 1, 700.0),  # full activity at boost clock: TDP
        # decode-like: 70 + 630 * (0.15 + 0.30*0.7 + 0.55*0.1) = 70 + 630*0.415 = 331.45 W
        (1, 0.7, 0.1, 331.45),
    ],
)
def test_power_hand_values(busy, mem, sm, expected_w):
    assert power(busy, mem, sm, 1.0) == pytest.approx(expected_w)


def test_h100_serving_power_from_the_catalog_in_measured_range():
    # ML.ENERGY v3 (twin/data/mlenergy-v3): one H100 serving Llama-3.1-8B (a held-out model of the
    # fit) draws 486 W at batch 8 and 690 W at batch 256. The twin's own activities at those batches
    # (its serving model, twin.validation.serving) put the catalog's coefficients within 20 %, and
    # the power rises with the batch as the SMs take over from the weight reads.
    from twin.validation.serving import predict
    from twin.validation.serving_data import read_serving_dataset

    d = read_serving_dataset()
    rows = d[
        (d["model_id"] == "meta-llama/Llama-3.1-8B-Instruct")
        & (d["gpu_model"] == "H100")
        & (d["task"] == "lm-arena-chat")
        & (d["num_gpus"] == 1)
        & d["max_num_seqs"].isin([8, 256])
    ].sort_values("max_num_seqs")
    p = predict(rows)
    measured = p["power_w_per_gpu"].to_numpy()
    twin = p["pred_power_w_per_gpu"].to_numpy()
    assert measured == pytest.approx([486, 690], abs=1.0)
    assert np.all(np.abs(twin / measured - 1.0) < 0.2)
    assert twin[1] > twin[0] + 50.0


def test_scalar_equals_vector():
    busy = np.linspace(0, 1, 7)
    vec = power(busy, 0.5 * busy, 0.8 * busy, 0.9)
    for b, v in zip(busy, vec, strict=True):
        assert float(power(b, 0.5 * b, 0.8 * b, 0.9)) == pytest.approx(v)


@given(busy=st.floats(0, 1), mem=st.floats(0, 1), sm=st.floats(0, 1), limit=st.floats(150, 700))
def test_clock_for_limit_respects_limit(busy, mem, sm, limit):
    board = replace(
        BOARD,
        idle_power_w=H100.idle_power_w,
        full_power_w=H100.full_power_w,
        voltage_floor_fraction=H100.voltage_floor_fraction,
        min_clock_fraction=H100.min_clock_fraction,
    )
    f = clock_for_power_limit(limit, busy, mem, sm, params=board)
    p = accelerator_power_w(busy, mem, sm, f, params=board)
    floor = accelerator_power_w(busy, mem, sm, H100.min_clock_fraction, params=board)
    # Either the limit is met, or the governor sits at its lowest clock.
    assert p <= limit + 1e-6 or f == pytest.approx(H100.min_clock_fraction)
    assert p >= floor - 1e-9
    # Highest such clock: a slightly higher clock would break the limit (unless already at boost).
    if f < 1 - 1e-9 and p <= limit + 1e-6:
        assert accelerator_power_w(busy, mem, sm, min(f * 1.01, 1), params=board) >= limit - 1e-6


@given(st.floats(0, 1), st.floats(0, 1))
def test_power_monotone_in_activity_and_clock(a, b):
    lo, hi = sorted((a, b))
    assert power(lo, lo, lo, 1.0) <= power(hi, hi, hi, 1.0) + 1e-9
    assert power(1, 0.5, 1, lo) <= power(1, 0.5, 1, hi) + 1e-9


def test_memory_bound_work_is_cheap_to_cap():
    # A 400 W cap does not lower the clock of decode (SMs mostly idle) but cuts a compute-bound
    # kernel's clock. GEMM (busy 1, HBM 0.5, s_1 = 1): at a clock f < 1 the SMs stay saturated and
    # the work slows by 1/f, so HBM activity falls to 0.5 f; above the voltage floor g = f^3, so the
    # cap solves (400 - 70)/630 = (0.15 + 0.55) f^3 + 0.30 x 0.5 f: f = 0.829410 (cubic by hand).
    decode = clock_for_power_limit(400, 1, 0.7, 0.1, params=BOARD)
    gemm = float(clock_for_power_limit(400, 1, 0.5, 1.0, params=BOARD))
    assert decode == pytest.approx(1.0)
    assert 0.70 * gemm**3 + 0.15 * gemm == pytest.approx(330 / 630, rel=1e-12)
    assert gemm == pytest.approx(0.829410, abs=1e-6)


def test_power_params_defaults_are_the_catalogs():
    # Callers without a spec (doctests, hand checks) rely on the defaults: they must be every
    # accelerator's shared value, and each spec's power_params must carry its own values.
    defaults = {f.name: f.default for f in fields(AcceleratorPowerParams) if f.default is not MISSING}
    assert set(defaults) == {"clock_exponent", "voltage_floor_fraction", "min_clock_fraction"}
    assert defaults["voltage_floor_fraction"] == DEFAULT_VOLTAGE_FLOOR
    for name in accelerator_names():
        spec = accelerator_spec(name)
        params = spec.power_params
        for f in fields(AcceleratorPowerParams):
            assert getattr(params, f.name) == getattr(spec, f.name)
            if f.name in defaults:
                assert getattr(spec, f.name) == defaults[f.name], (name, f.name)


def test_per_column_params_are_vectorised():
    # One params object with a value per column (two boards) gives each column its own board's answer.
    other = replace(
        BOARD, idle_power_w=100.0, full_power_w=1000.0, static_power_fraction=0.4, voltage_floor_fraction=0.8
    )
    both = AcceleratorPowerParams(
        **{f.name: np.array([getattr(BOARD, f.name), getattr(other, f.name)]) for f in fields(AcceleratorPowerParams)}
    )
    clock = np.array([[1.0, 1.0], [0.6, 0.6]])
    p = accelerator_power_w(1.0, 0.7, 0.4, clock, params=both)
    f = clock_for_power_limit(np.array([[500.0, 500.0], [300.0, 300.0]]), 1.0, 0.7, 0.4, params=both)
    for col, board in enumerate((BOARD, other)):
        assert np.array_equal(p[:, col], accelerator_power_w(1.0, 0.7, 0.4, clock[:, col], params=board))
        assert np.array_equal(f[:, col], clock_for_power_limit(np.array([500.0, 300.0]), 1.0, 0.7, 0.4, params=board))


@pytest.mark.parametrize(
    ("clock", "expected_w"),
    [
        # Decode-like (busy 1, HBM 0.7, s_1 0.1), SM clock locked. At f = 0.8 (above the voltage
        # floor) g = 0.8^3 = 0.512 and s_f = 0.125: 70 + 630 (0.15 x 0.512 + 0.21 + 0.55 x 0.125 x
        # 0.512) = 70 + 630 x 0.322 = 272.86 W. At f = 0.5 (on the floor) g = 0.69^2 x 0.5 = 0.23805,
        # s_f = 0.2: 70 + 630 (0.15 x 0.23805 + 0.21 + 0.55 x 0.2 x 0.23805) = 241.2949 W.
        (0.8, 272.86),
        (0.5, 70 + 630 * (0.15 * 0.23805 + 0.21 + 0.55 * 0.2 * 0.23805)),
    ],
)
def test_power_hand_values_at_locked_clock(clock, expected_w):
    assert power(1.0, 0.7, 0.1, clock) == pytest.approx(expected_w, rel=1e-12)


def test_sm_bound_work_slows_its_memory_traffic():
    # s_1 = 1 at f = 0.5: the work takes 1/0.5 = 2x longer, so HBM activity 0.5 falls to 0.25 while
    # the SMs stay saturated: 70 + 630 ((0.15 + 0.55) x 0.23805 + 0.30 x 0.25) = 222.23 W.
    assert power(1.0, 0.5, 1.0, 0.5) == pytest.approx(70 + 630 * (0.70 * 0.23805 + 0.075), rel=1e-12)


def test_voltage_curve_limits():
    f = np.linspace(0.05, 1.0, 20)
    # No floor: the voltage follows the clock and core power is f^3 (the CMOS V ~ f limit).
    assert core_power_scale(f, 3.0, 0.0) == pytest.approx(f**3, rel=1e-12)
    # Floor at 1: fixed voltage, core power linear in f.
    assert core_power_scale(f, 3.0, 1.0) == pytest.approx(f, rel=1e-12)
    # The catalog curve: flat voltage up to the knee f = v_floor, continuous there, 1 at boost.
    v = core_voltage_fraction(f, 3.0, 0.69)
    assert np.all(v[f <= 0.69] == 0.69) and v[-1] == 1.0
    assert core_power_scale(0.69, 3.0, 0.69) == pytest.approx(0.69**3)
    assert np.all(np.diff(core_power_scale(f)) > 0)
    # With no floor, the model is the SM-only f^3 model plus a k_static share that scales too.
    old = 70 + 630 * (0.15 * 0.6**3 + 0.21 + 0.55 * (0.1 / 0.6) * 0.6**3)
    assert accelerator_power_w(1, 0.7, 0.1, 0.6, params=replace(BOARD, voltage_floor_fraction=0.0)) == pytest.approx(
        old
    )


@given(
    busy=st.floats(0, 1),
    mem=st.floats(0, 1),
    sm=st.floats(0, 1),
    clock=st.floats(H100.min_clock_fraction, 1),
    floor=st.floats(0, 1),
)
def test_clock_for_limit_round_trip(busy, mem, sm, clock, floor):
    # Cap at the power drawn at some clock: the governor finds a clock that draws exactly that
    # power, no lower than the one we started from (higher only where power is flat in the clock).
    board = replace(H100.power_params, full_power_w=H100.max_power_w, voltage_floor_fraction=floor)
    limit = accelerator_power_w(busy, mem, sm, clock, params=board)
    f = clock_for_power_limit(limit, busy, mem, sm, params=board)
    assert f >= clock - 1e-9
    assert accelerator_power_w(busy, mem, sm, f, params=board) == pytest.approx(limit, rel=1e-9, abs=1e-9)


def test_clock_for_limit_is_vectorised():
    limits = np.array([[700.0, 400.0], [250.0, 50.0]])
    f = clock_for_power_limit(limits, 1, 0.5, 1.0, params=BOARD)
    assert f.shape == (2, 2)
    for i in np.ndindex(2, 2):
        assert f[i] == pytest.approx(float(clock_for_power_limit(limits[i], 1, 0.5, 1.0, params=BOARD)))
    assert f[0, 0] == 1.0 and f[1, 1] == 0.25  # boost fits; below the floor's power: the floor


def test_thermal_limit_and_die_temperature_are_inverse():
    p_lim = thermal_power_limit_w(40.0, H100.slowdown_temp_c, H100.thermal_resistance_liquid_k_w)
    assert die_steady_temp_c(40.0, p_lim, H100.thermal_resistance_liquid_k_w) == pytest.approx(89.0)
    # Cold-plate example (parameters.md 3.4): 0.04 K/W gives 4 K per 100 W.
    assert die_steady_temp_c(25.0, 100.0, 0.04) == pytest.approx(29.0)
    assert thermal_power_limit_w(95.0, 89.0, 0.04) == 0.0


def test_engine_uses_the_accelerators_voltage_floor():
    # Under a binding cap the governor's clock comes from the accelerator's own V-f curve: a higher
    # voltage floor makes each clock step save less power, so the capped GPUs run slower
    # (fewer training tokens, compute-bound) for the same power. Without a binding cap the floor does nothing.
    import twin

    train = {"name": "train", "kind": "training", "model": "Llama-3.1-8B", "mfu": 0.45}
    over = {
        "duration_s": 1800, "fleet.rows": 1, "fleet.racks_per_row": 1, "workloads": [train],
        "fleet.power_cap_w": 350.0,
    }  # fmt: skip
    base = twin.simulate(twin.load_scenario("default", over))
    high = twin.simulate(
        twin.load_scenario("default", {**over, "fleet.accelerator_overrides": {"voltage_floor_fraction": 0.9}})
    )
    assert high.kpis["tokens_out"] < base.kpis["tokens_out"]
    for r in (base, high):  # the cap binds: 4 servers x 8 GPUs x 350 W x 1800 s
        assert r.kpis["energy_accelerators_j"] == pytest.approx(32 * 350.0 * 1800, rel=1e-9)
    uncapped = {k: v for k, v in over.items() if k != "fleet.power_cap_w"}
    a = twin.simulate(twin.load_scenario("default", uncapped))
    b = twin.simulate(
        twin.load_scenario("default", {**uncapped, "fleet.accelerator_overrides": {"voltage_floor_fraction": 0.9}})
    )
    assert b.kpis["tokens_out"] == a.kpis["tokens_out"]
    assert b.kpis["facility_energy_j"] == a.kpis["facility_energy_j"]
