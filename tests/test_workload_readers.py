"""Job reader, generic reader, the READERS registry and format sniffing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.errors import TraceFormatError, UnknownNameError
from twin.workload import (
    AZURE_LLM_2023,
    JOB_COLUMNS,
    READERS,
    read_azure_llm,
    read_generic,
    read_jobs,
    read_trace,
    sniff_format,
)

DATA = Path(__file__).parent / "data"


# --------------------------------------------------------------------------- jobs


def test_jobs_helios_style() -> None:
    df, meta = read_jobs(DATA / "jobs_helios_style.csv")
    assert tuple(df.columns) == JOB_COLUMNS
    assert df["gpus"].dtype == np.int64
    assert df["start_s"].dtype == np.float64
    # The CPU-only job j0002 is dropped; the earliest start (j0006, 00:00:00) is t = 0.
    assert df["job_id"].tolist() == ["j0006", "j0001", "j0004", "j0005", "j0003"]
    assert meta.extra["cpu_jobs_dropped"] == 1
    assert meta.start == datetime(2020, 4, 1, 0, 0, 0)
    j3 = df[df["job_id"] == "j0003"].iloc[0]
    # start 00:05:00, end 06:05:00, 16 GPUs
    assert (j3["start_s"], j3["end_s"], j3["gpus"]) == (300.0, 21900.0, 16)
    assert (df["end_s"] - df["start_s"]).tolist() == [1800.0, 7200.0, 60.0, 3600.0, 21600.0]


def test_jobs_numeric_times_and_duration_mapping(tmp_path: Path) -> None:
    df, meta = read_jobs(DATA / "jobs_seconds.csv")
    assert df["job_id"].tolist() == ["b", "c", "a"]
    assert df["start_s"].tolist() == [0.0, 30.5, 60.0]
    assert df["end_s"].tolist() == [3600.0, 50.5, 120.0]
    assert meta.extra["source_t0_s"] == 40.0
    path = tmp_path / "jobs.csv"
    path.write_text("name,submit,begin_min,len_min,cards\nx,0,10,5,4\ny,0,0,1,2\n")
    df, _ = read_jobs(
        path,
        columns={
            "job_id": "name",
            "start_s": "begin_min",
            "duration_s": "len_min",
            "gpus": "cards",
        },
        time_unit_s=60.0,
    )
    assert df.to_dict("list") == {
        "job_id": ["y", "x"],
        "start_s": [0.0, 600.0],
        "end_s": [60.0, 900.0],
        "gpus": [2, 4],
    }


def test_jobs_priority_and_walltime(tmp_path: Path) -> None:
    # Times in minutes: b is submitted 5 min after a, asks for 30 min and holds 4 GPUs.
    path = tmp_path / "jobs.csv"
    path.write_text("job_id,gpus,start,duration,priority,time_limit\nb,4,5,10,2,30\na,1,0,10,-1,20\n")
    df, _ = read_jobs(path, time_unit_s=60)
    assert tuple(df.columns) == (*JOB_COLUMNS, "priority", "walltime_s")
    assert df["job_id"].tolist() == ["a", "b"]  # sorted by start, with their own priority and walltime
    assert df["priority"].tolist() == [-1.0, 2.0]
    assert df["walltime_s"].tolist() == [1200.0, 1800.0]
    # mapped by name through the generic reader too
    generic, _ = read_generic(
        path, "jobs", {"start_s": "start", "duration_s": "duration", "gpus": "gpus", "priority": "priority"}
    )
    assert generic["priority"].tolist() == [-1.0, 2.0]
    # a pool that queues jobs refuses one it could never start, by line
    with pytest.raises(TraceFormatError, match="a job on 4 GPUs can never start on a pool of 2 GPUs") as info:
        read_jobs(path, max_gpus=2)
    assert (info.value.line, info.value.field) == (2, "gpus")
    for cells, field in (("b,4,5,10,high,30", "priority"), ("b,4,5,10,2,0", "time_limit")):
        path.write_text(f"job_id,gpus,start,duration,priority,time_limit\n{cells}\n")
        with pytest.raises(TraceFormatError) as info:
            read_jobs(path)
        assert (info.value.line, info.value.field) == (2, field)


def test_jobs_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("job_id,gpu_num,start_time,end_time\na,1,10,20\nb,2,30,30\n")
    with pytest.raises(TraceFormatError) as info:
        read_jobs(path)
    assert (info.value.line, info.value.field) == (3, "end_time")
    path.write_text("job_id,gpu_num,start_time,end_time\na,1,10,20\nb,two,30,40\n")
    with pytest.raises(TraceFormatError) as info:
        read_jobs(path)
    assert (info.value.line, info.value.field) == (3, "gpu_num")
    path.write_text("job_id,gpu_num,start_time,end_time\na,1,10,20\nb,2,,40\n")
    with pytest.raises(TraceFormatError) as info:
        read_jobs(path)
    assert (info.value.line, info.value.field) == (3, "start_time")
    df, meta = read_jobs(path, drop_incomplete=True)
    assert df["job_id"].tolist() == ["a"]
    assert meta.extra["incomplete_dropped"] == 1
    path.write_text("job_id,start_time,end_time\na,10,20\n")
    with pytest.raises(TraceFormatError) as info:
        read_jobs(path)
    assert (info.value.line, info.value.field) == (1, "gpus")
    assert "columns=" in str(info.value)


def test_jobs_zero_gpus_is_an_error_when_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("job_id,gpu_num,start_time,end_time\na,1,10,20\nb,0,30,40\n")
    with pytest.raises(TraceFormatError, match=r"line 3, field 'gpu_num': expected at least 1"):
        read_jobs(path, drop_cpu_jobs=False)


# --------------------------------------------------------------------------- generic


def test_generic_requests_with_scales(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("t_ms;in_k;out\n2500;1.5;7\n500;0.25;3\n")
    df, meta = read_generic(
        path,
        kind="requests",
        columns={"arrival_s": "t_ms", "prompt_tokens": "in_k", "output_tokens": "out"},
        scale={"arrival_s": 1e-3, "prompt_tokens": 1000},
        sep=";",
    )
    assert df.to_dict("list") == {
        "arrival_s": [0.0, 2.0],
        "prompt_tokens": [250, 1500],
        "output_tokens": [3, 7],
    }
    assert meta.format == "generic"
    assert meta.extra["source_t0_s"] == 0.5


def test_generic_scaled_tokens_must_be_integers(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("t,p,o\n0,1.5,1\n1,1.2345,1\n")
    with pytest.raises(TraceFormatError) as info:
        read_generic(
            path,
            kind="requests",
            columns={"arrival_s": "t", "prompt_tokens": "p", "output_tokens": "o"},
            scale={"prompt_tokens": 1000},
        )
    assert (info.value.line, info.value.field) == (3, "p")
    assert "got '1.2345'" in str(info.value)


def test_generic_telemetry_units_and_energy(tmp_path: Path) -> None:
    path = tmp_path / "power.csv"
    path.write_text("when,dev,watts,kwh,busy_pct\n2024-01-01T00:00:00,0,500,1.0,50\n2024-01-01T00:00:10,0,600,1.5,60\n")
    df, meta = read_generic(
        path,
        kind="telemetry",
        columns={
            "time_s": "when",
            "gpu_index": "dev",
            "power_w": "watts",
            "energy_j": "kwh",
            "utilization": "busy_pct",
        },
        scale={"energy_j": 3.6e6, "utilization": 0.01},
    )
    assert df["time_s"].tolist() == [0.0, 10.0]
    assert df["energy_j"].tolist() == [0.0, 0.5 * 3.6e6]
    assert df["utilization"].tolist() == pytest.approx([0.5, 0.6])
    assert meta.start == datetime(2024, 1, 1)


def test_generic_jobs(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    path.write_text("a,b,c\n0,3600,8\n60,120,1\n")
    df, _ = read_generic(path, kind="jobs", columns={"start_s": "a", "end_s": "b", "gpus": "c"})
    assert df["job_id"].tolist() == ["0", "1"]
    assert df["gpus"].tolist() == [8, 1]


def test_generic_argument_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n0,1,2\n")
    with pytest.raises(UnknownNameError, match="requests"):
        read_generic(path, kind="request", columns={})
    with pytest.raises(UnknownNameError, match="arrival_s"):
        read_generic(path, kind="requests", columns={"arrival": "a"})
    with pytest.raises(ValueError, match="output_tokens"):
        read_generic(path, kind="requests", columns={"arrival_s": "a", "prompt_tokens": "b"})
    with pytest.raises(TraceFormatError, match=r"line 1, field 'zz'"):
        read_generic(
            path,
            kind="requests",
            columns={"arrival_s": "a", "prompt_tokens": "b", "output_tokens": "zz"},
        )


# --------------------------------------------------------------------------- registry


def test_registry_names() -> None:
    assert set(READERS) == {
        "azure-llm",
        "burstgpt",
        "mooncake",
        "nvidia-smi",
        "dcgm",
        "harness",
        "jobs",
        "generic",
    }


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("burstgpt_sample.csv", "burstgpt"),
        ("mooncake_sample.jsonl", "mooncake"),
        ("nvidia_smi_units.csv", "nvidia-smi"),
        ("nvidia_smi_nounits.csv", "nvidia-smi"),
        ("dcgm_wide.csv", "dcgm"),
        ("dcgm_long.csv", "dcgm"),
        ("jobs_helios_style.csv", "jobs"),
        ("jobs_seconds.csv", "jobs"),
    ],
)
def test_sniffing_picks_the_reader(name: str, fmt: str) -> None:
    assert sniff_format(DATA / name) == fmt
    df, meta = read_trace(DATA / name)
    expected, _ = READERS[fmt](DATA / name)
    assert meta.format == fmt
    pd.testing.assert_frame_equal(df, expected)


def test_sniffing_real_azure_file() -> None:
    assert sniff_format(AZURE_LLM_2023["conv"]) == "azure-llm"
    df, _ = read_trace(AZURE_LLM_2023["conv"])
    pd.testing.assert_frame_equal(df, read_azure_llm(AZURE_LLM_2023["conv"])[0])


def test_unknown_header_lists_formats(tmp_path: Path) -> None:
    path = tmp_path / "mystery.csv"
    path.write_text("foo,bar\n1,2\n")
    with pytest.raises(TraceFormatError) as info:
        read_trace(path)
    message = str(info.value)
    assert info.value.line == 1
    for name in ("azure-llm", "burstgpt", "mooncake", "nvidia-smi", "dcgm", "jobs", "generic"):
        assert name in message


def test_unknown_format_name_lists_formats() -> None:
    with pytest.raises(UnknownNameError) as info:
        read_trace(DATA / "jobs_seconds.csv", format="philly")
    assert "azure-llm" in str(info.value)
    assert "dcgm" in str(info.value)


def test_read_trace_passes_keywords() -> None:
    df, _ = read_trace(DATA / "burstgpt_sample.csv", model="GPT-4")
    assert len(df) == 3
    df, _ = read_trace(
        DATA / "jobs_seconds.csv",
        format="generic",
        kind="jobs",
        columns={"start_s": "start", "end_s": "finish_time", "gpus": "num_gpu"},
    )
    assert df["gpus"].tolist() == [8, 2, 1]
