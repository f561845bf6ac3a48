"""GPU telemetry readers: nvidia-smi (units, nounits, noheader) and DCGM (wide, long)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.errors import TraceFormatError
from twin.workload import TELEMETRY_COLUMNS, read_dcgm, read_nvidia_smi

DATA = Path(__file__).parent / "data"


def _check_schema(df: pd.DataFrame) -> None:
    assert tuple(df.columns) == TELEMETRY_COLUMNS
    assert df["gpu_index"].dtype == np.int64
    for col in TELEMETRY_COLUMNS:
        if col != "gpu_index":
            assert df[col].dtype == np.float64, col
    order = np.lexsort((df["gpu_index"].to_numpy(), df["time_s"].to_numpy()))
    assert (order == np.arange(len(df))).all()


def _row(df: pd.DataFrame, t: float, gpu: int) -> pd.Series:
    hit = df[(np.isclose(df["time_s"], t)) & (df["gpu_index"] == gpu)]
    assert len(hit) == 1
    return hit.iloc[0]


# --------------------------------------------------------------------------- nvidia-smi


def test_nvidia_smi_with_units_hand_values() -> None:
    df, meta = read_nvidia_smi(DATA / "nvidia_smi_units.csv")
    _check_schema(df)
    assert len(df) == 6
    # 12:00:00.123 is t = 0; GPU 1's samples are 2-4 ms later.
    np.testing.assert_allclose(df["time_s"], [0.0, 0.002, 1.001, 1.004, 2.000, 2.003], atol=1e-9)
    assert meta.start == datetime(2024, 5, 1, 12, 0, 0, 123000)
    first = _row(df, 0.0, 0)
    # "312.45 W, 87 %, 45 %, 65, 1980 MHz, 2619 MHz, 700.00 W"
    assert first["power_w"] == pytest.approx(312.45)
    assert first["utilization"] == pytest.approx(0.87)
    assert first["memory_utilization"] == pytest.approx(0.45)
    assert first["temperature_c"] == 65.0
    assert first["sm_clock_hz"] == pytest.approx(1.98e9)
    assert first["mem_clock_hz"] == pytest.approx(2.619e9)
    assert first["power_limit_w"] == 700.0
    assert np.isnan(first["energy_j"])
    # "[N/A]" power and "[Not Supported]" memory utilisation become NaN.
    gap = _row(df, 1.004, 1)
    assert np.isnan(gap["power_w"])
    assert np.isnan(gap["memory_utilization"])
    assert gap["utilization"] == pytest.approx(0.03)
    assert meta.extra["gpus"] == [0, 1]
    assert meta.extra["columns"]["sm_clock_hz"] == "clocks.current.sm [MHz]"


def test_nvidia_smi_nounits_reads_the_same_numbers() -> None:
    with_units, _ = read_nvidia_smi(DATA / "nvidia_smi_units.csv")
    nounits, meta = read_nvidia_smi(DATA / "nvidia_smi_nounits.csv")
    _check_schema(nounits)
    pd.testing.assert_frame_equal(with_units, nounits)
    assert meta.extra["columns"]["sm_clock_hz"] == "clocks.sm [MHz]"


def test_nvidia_smi_noheader_with_field_list(tmp_path: Path) -> None:
    lines = (DATA / "nvidia_smi_units.csv").read_text().splitlines()[1:]
    path = tmp_path / "smi.csv"
    path.write_text("\n".join(lines) + "\n")
    fields = "timestamp,index,power.draw,utilization.gpu,utilization.memory,temperature.gpu"
    fields += ",clocks.sm,clocks.mem,power.limit"
    df, _ = read_nvidia_smi(path, fields=fields.split(","))
    expected, _ = read_nvidia_smi(DATA / "nvidia_smi_units.csv")
    pd.testing.assert_frame_equal(df, expected)


def test_nvidia_smi_subset_and_order_of_fields(tmp_path: Path) -> None:
    path = tmp_path / "smi.csv"
    path.write_text(
        "power.draw [W], timestamp, temperature.gpu\n"
        "250.00 W, 2024/05/01 12:00:01.000, 60\n"
        "200.00 W, 2024/05/01 12:00:00.000, 59\n"
    )
    df, _ = read_nvidia_smi(path)
    _check_schema(df)
    assert df["power_w"].tolist() == [200.0, 250.0]
    assert df["temperature_c"].tolist() == [59.0, 60.0]
    assert df["gpu_index"].tolist() == [0, 0]
    assert df["utilization"].isna().all()


@pytest.mark.parametrize(
    ("cell", "field", "fragment"),
    [
        ("312.45 V", "power.draw [W]", "got '312.45 V'"),
        ("lots W", "power.draw [W]", "got 'lots W'"),
    ],
)
def test_nvidia_smi_bad_value_is_located(tmp_path: Path, cell: str, field: str, fragment: str) -> None:
    lines = (DATA / "nvidia_smi_units.csv").read_text().splitlines()
    parts = lines[4].split(", ")
    parts[2] = cell
    lines[4] = ", ".join(parts)
    path = tmp_path / "smi.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError) as info:
        read_nvidia_smi(path)
    assert (info.value.line, info.value.field) == (5, field)
    assert "expected a number (units: W, mW, kW)" in str(info.value)
    assert fragment in str(info.value)


def test_nvidia_smi_bad_timestamp_and_missing_timestamp(tmp_path: Path) -> None:
    lines = (DATA / "nvidia_smi_units.csv").read_text().splitlines()
    lines[3] = lines[3].replace("2024/05/01 12:00:01.124", "yesterday")
    path = tmp_path / "smi.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError) as info:
        read_nvidia_smi(path)
    assert (info.value.line, info.value.field) == (4, "timestamp")
    path.write_text("index, power.draw [W]\n0, 100 W\n")
    with pytest.raises(TraceFormatError) as info:
        read_nvidia_smi(path)
    assert (info.value.line, info.value.field) == (1, "timestamp")


def test_nvidia_smi_unknown_header_unit(tmp_path: Path) -> None:
    path = tmp_path / "smi.csv"
    path.write_text("timestamp, power.draw [V]\n2024/05/01 12:00:00.000, 100\n")
    with pytest.raises(TraceFormatError, match=r"line 1, field 'power.draw \[V\]'"):
        read_nvidia_smi(path)


# --------------------------------------------------------------------------- DCGM


def test_dcgm_wide_unit_conversions_by_hand() -> None:
    df, meta = read_dcgm(DATA / "dcgm_wide.csv")
    _check_schema(df)
    assert len(df) == 6
    assert meta.start == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    row = _row(df, 1.0, 0)
    assert row["power_w"] == 640.0  # DCGM_FI_DEV_POWER_USAGE 640.0 W
    # (86 400 626 250 - 86 400 000 000) mJ = 626 250 mJ = 626.25 J
    assert row["energy_j"] == pytest.approx(626.25, abs=1e-6)
    assert row["utilization"] == pytest.approx(1.0)  # 100 %
    assert row["memory_utilization"] == pytest.approx(0.7)  # ratio, unchanged
    assert row["temperature_c"] == 69.0
    assert row["sm_clock_hz"] == pytest.approx(1.785e9)  # 1785 MHz
    assert row["mem_clock_hz"] == pytest.approx(2.619e9)
    assert row["power_limit_w"] == 700.0
    # Energy is rebased per GPU: both GPUs start at 0 J.
    assert _row(df, 0.0, 0)["energy_j"] == 0.0
    assert _row(df, 0.0, 1)["energy_j"] == 0.0
    assert _row(df, 2.0, 0)["energy_j"] == pytest.approx(1273.75, abs=1e-6)
    assert _row(df, 2.0, 1)["energy_j"] == pytest.approx(199.375, abs=1e-6)
    assert _row(df, 2.0, 1)["utilization"] == pytest.approx(0.02)  # 2 %
    assert np.isnan(_row(df, 1.0, 1)["memory_utilization"])  # N/A
    assert meta.extra["energy_field"] == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"


def test_dcgm_long_layout() -> None:
    df, meta = read_dcgm(DATA / "dcgm_long.csv")
    _check_schema(df)
    assert meta.extra["layout"] == "long"
    assert meta.extra["source_t0_s"] == 1714564800.0
    assert df[["time_s", "gpu_index"]].to_numpy().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    row = _row(df, 1.0, 0)
    assert (row["power_w"], row["utilization"]) == (640.0, 1.0)
    assert row["energy_j"] == pytest.approx(626.25, abs=1e-6)
    assert _row(df, 1.0, 1)["energy_j"] == pytest.approx(99.0, abs=1e-6)
    assert np.isnan(_row(df, 1.0, 1)["utilization"])  # GPU 1 has no utilisation field
    assert df["temperature_c"].isna().all()  # not in the dump


def test_dcgm_long_bad_value_is_located(tmp_path: Path) -> None:
    lines = (DATA / "dcgm_long.csv").read_text().splitlines()
    lines[6] = lines[6].rsplit(",", 1)[0] + ",12x"
    path = tmp_path / "dcgm.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError) as info:
        read_dcgm(path)
    assert (info.value.line, info.value.field) == (7, "value")


def test_dcgm_energy_counter_reset_is_an_error(tmp_path: Path) -> None:
    lines = (DATA / "dcgm_wide.csv").read_text().splitlines()
    lines[5] = lines[5].replace("86401273750", "1000")
    path = tmp_path / "dcgm.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError) as info:
        read_dcgm(path)
    assert (info.value.line, info.value.field) == (6, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
    assert "non-decreasing" in str(info.value)


def test_dcgm_numeric_ms_times_and_rebase_after_missing_first_energy(tmp_path: Path) -> None:
    path = tmp_path / "dcgm.csv"
    path.write_text(
        "ts,entity,DCGM_FI_DEV_POWER_USAGE,DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION\n"
        "1000,gpu3,100,\n"
        "1500,gpu3,100,5000\n"
        "2000,gpu3,100,55000\n"
    )
    df, _ = read_dcgm(path, time_unit_s=1e-3)
    _check_schema(df)
    assert df["time_s"].tolist() == [0.0, 0.5, 1.0]
    assert df["gpu_index"].tolist() == [3, 3, 3]
    assert np.isnan(df["energy_j"].iloc[0])
    assert df["energy_j"].iloc[1:].tolist() == [0.0, 50.0]  # (55000 - 5000) mJ


def test_dcgm_bad_gpu_label(tmp_path: Path) -> None:
    path = tmp_path / "dcgm.csv"
    path.write_text("timestamp,gpu,DCGM_FI_DEV_POWER_USAGE\n0,GPU 0,1\n1,switch 2,1\n")
    with pytest.raises(TraceFormatError, match=r"line 3, field 'gpu': expected a GPU index"):
        read_dcgm(path)
