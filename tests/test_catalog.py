import pytest

from twin import catalog
from twin.errors import UnknownNameError


@pytest.mark.parametrize(
    ("name", "tdp_w", "bw_tb_s"),
    [
        ("A100-SXM4-80GB", 400, 2.039),
        ("H100-SXM", 700, 3.35),
        ("H200-SXM", 700, 4.8),
        ("B200", 1000, 8.0),
        ("GB200", 1200, 8.0),
        ("MI300X", 750, 5.3),
    ],
)
def test_accelerators_match_reference_table(name, tdp_w, bw_tb_s):
    # parameters.md 1.1
    a = catalog.accelerator_spec(name)
    assert a.max_power_w == tdp_w
    assert a.hbm_bandwidth_b_s == pytest.approx(bw_tb_s * 1e12)
    assert 0 < a.idle_power_w < a.max_power_w
    assert a.power_cap_min_w < a.power_cap_max_w <= a.max_power_w
    assert a.slowdown_temp_c < a.shutdown_temp_c
    assert 0 < a.sm_power_fraction < 1


def test_h100_ridge_point():
    # parameters.md 1.1: BF16 ridge point 295 FLOP/byte for H100.
    a = catalog.accelerator_spec("H100-SXM")
    assert a.bf16_flop_s / a.hbm_bandwidth_b_s == pytest.approx(295, abs=1)


@pytest.mark.parametrize(("model", "kv_kb"), [("Llama-3.1-8B", 131), ("Llama-3-70B", 328)])
def test_kv_bytes_per_token(model, kv_kb):
    # parameters.md 6: 131 kB/token (8B) and 328 kB/token (70B), BF16.
    assert catalog.model_spec(model).kv_bytes_per_token(2.0) / 1e3 == pytest.approx(kv_kb, abs=0.5)


def test_unknown_name_lists_valid():
    with pytest.raises(UnknownNameError, match="H100-SXM"):
        catalog.accelerator_spec("H101")
    with pytest.raises(UnknownNameError, match="Llama-3-70B"):
        catalog.model_spec("gpt-5")


def test_overrides_validated():
    a = catalog.accelerator_spec("H100-SXM").with_overrides(idle_power_w=60.0)
    assert a.idle_power_w == 60.0
    with pytest.raises(UnknownNameError):
        catalog.accelerator_spec("H100-SXM").with_overrides(idel_power_w=60.0)
