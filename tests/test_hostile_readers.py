"""Hostile and corrupt input files: every reader returns sane data or a located InvalidInputError.

Fixtures are built in ``tmp_path``: Azure, nvidia-smi and TMY3 files are cut from the files
shipped under ``twin/data``; BurstGPT, Mooncake, DCGM, job and harness files (no shipped
sample) are written from a few literal rows in their documented layouts.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from twin.cli import app as twin_app
from twin.errors import InvalidInputError, TraceFormatError
from twin.harness import commands
from twin.harness.calibrate import calibrate
from twin.harness.follow import follow
from twin.harness.io import LiveCsvWriter, read_harness, summary_path, write_json
from twin.validation import commands as validation_commands
from twin.weather import DATA_DIR as WEATHER_DIR
from twin.weather import read_epw, read_tmy3, require_coverage
from twin.workload import read_trace
from twin.workload.jobs import MAX_JOB_GPUS, read_jobs
from twin.workload.requests import AZURE_LLM_2023, MAX_TOKENS_PER_REQUEST, read_azure_llm, read_burstgpt, read_mooncake
from twin.workload.telemetry import PLAUSIBLE_RANGES, read_dcgm, read_harness_telemetry, read_nvidia_smi

REPO = Path(__file__).resolve().parent.parent
SMI_SAMPLE = REPO / "twin" / "data" / "traces" / "nvidia-smi-sample" / "nvidia_smi_8gpu_sample.csv"
GREENSBORO = WEATHER_DIR / "723170TYA_Greensboro_NC.csv"
runner = CliRunner()
harness_app = typer.Typer()
harness_app.command()(validation_commands.calibrate)
harness_app.command()(commands.follow)


def _head(path: Path, n: int) -> list[str]:
    with path.open(encoding="latin-1", newline="") as fh:
        return [next(fh) for _ in range(n)]


def _azure(tmp_path: Path, last_output: str = "44", name: str = "azure.csv") -> Path:
    """The first 4 rows of the shipped Azure code trace, the last output count replaced."""
    lines = _head(AZURE_LLM_2023["code"], 5)
    fields = lines[-1].rstrip("\r\n").split(",")
    lines[-1] = ",".join([*fields[:2], last_output]) + "\n"
    out = tmp_path / name
    out.write_text("".join(lines), encoding="utf-8")
    return out


BURSTGPT = (
    "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
    "5,ChatGPT,472,18,490,Conversation log\n"
    "45,ChatGPT,{prompt},110,1197,Conversation log\n"
)
MOONCAKE = (
    '{{"timestamp": 0, "input_length": 6755, "output_length": 500, "hash_ids": [0, 1]}}\n'
    '{{"timestamp": {time}, "input_length": {prompt}, "output_length": 490, "hash_ids": [0, 2]}}\n'
)
JOBS = "jobid,num_gpu,start,finish_time\na,1,100.0,160.0\nb,{gpus},0.5,{end}\n"
DCGM_WIDE = (
    "timestamp,gpu,DCGM_FI_DEV_POWER_USAGE,DCGM_FI_DEV_GPU_UTIL,DCGM_FI_DEV_GPU_TEMP\n"
    "2024-05-01T12:00:00.000Z,GPU 0,612.5,98,68\n"
    "2024-05-01T12:00:01.000Z,{gpu},{power},{util},69\n"
)
DCGM_LONG = (
    "timestamp,gpu,field,value\n"
    "1714564800.0,0,DCGM_FI_DEV_POWER_USAGE,612.5\n"
    "1714564800.0,0,DCGM_FI_DEV_GPU_UTIL,{util}\n"
    "1714564801.0,0,DCGM_FI_DEV_POWER_USAGE,{power}\n"
)
HARNESS = "time_s,gpu_index,power_w,utilization,energy_j\n0,0,100,0.5,0\n0.5,{gpu},{power},{util},50\n"


def _smi(tmp_path: Path, row: str | None = None) -> Path:
    """The header and first 4 rows of the shipped nvidia-smi sample, plus ``row``."""
    out = tmp_path / "smi.csv"
    out.write_text("".join(_head(SMI_SAMPLE, 5)) + (row + "\n" if row else ""), encoding="utf-8")
    return out


def _write(tmp_path: Path, name: str, text: str) -> Path:
    out = tmp_path / name
    out.write_text(text, encoding="utf-8")
    return out


# ---------------------------------------------------------------- 1. token counts and overflow


@pytest.mark.parametrize(
    "cell",
    [
        "99999999999999999999999999",  # wrapped to -7.8e22 in an int64 cast before
        "18446744073709551615",  # uint64 max
        "9223372036854775807",  # int64 max: no cast error, but no request either
        str(MAX_TOKENS_PER_REQUEST + 1),
        "1e300",
        "-1",
        "nan",
        "inf",
        "-inf",
        "12.5",
        "lots",
        "",
    ],
)
def test_azure_token_counts_must_be_whole_and_in_range(tmp_path: Path, cell: str) -> None:
    path = _azure(tmp_path, cell)
    with pytest.raises(TraceFormatError) as info:
        read_azure_llm(path)
    assert (info.value.line, info.value.field) == (5, "GeneratedTokens")
    assert str(info.value).startswith(f"{path}, line 5, field 'GeneratedTokens': expected a non-negative integer")
    assert f"at most {MAX_TOKENS_PER_REQUEST} tokens per request" in str(info.value)


def test_azure_largest_token_count_is_read(tmp_path: Path) -> None:
    data, _ = read_azure_llm(_azure(tmp_path, str(MAX_TOKENS_PER_REQUEST)))
    assert data["output_tokens"].max() == MAX_TOKENS_PER_REQUEST
    assert (data[["prompt_tokens", "output_tokens"]] >= 0).all().all()


def test_validate_refuses_an_azure_trace_with_a_wrapping_token_count(tmp_path: Path) -> None:
    trace = _azure(tmp_path, "99999999999999999999999999")
    scenario = tmp_path / "big.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "base": str(REPO / "scenarios" / "azure-llm-trace.yaml"),
                "duration_s": 600,
                "workloads": [
                    {
                        "name": "chat-70b",
                        "kind": "inference",
                        "model": "Llama-3-70B",
                        "servers": 96,
                        "tensor_parallel": 8,
                        "arrivals": {"kind": "trace", "path": str(trace), "requests_per_s": 700},
                    }
                ],
            }
        )
    )
    result = runner.invoke(twin_app, ["validate", str(scenario)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "line 5, field 'GeneratedTokens'" in said
    assert "Traceback" not in result.output


@pytest.mark.parametrize("prompt", ["99999999999999999999999999", "1e300", "-3", "inf"])
def test_burstgpt_token_counts_are_bounded(tmp_path: Path, prompt: str) -> None:
    path = _write(tmp_path, "b.csv", BURSTGPT.format(prompt=prompt))
    with pytest.raises(TraceFormatError) as info:
        read_burstgpt(path)
    assert (info.value.line, info.value.field) == (3, "Request tokens")


def test_burstgpt_times_that_overflow_are_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "b.csv", BURSTGPT.format(prompt=1).replace("\n5,", "\n-1e308,").replace("\n45,", "\n1e308,")
    )
    with pytest.raises(TraceFormatError, match=r"line 2, field 'Timestamp': expected a time within 1e\+12 s"):
        read_burstgpt(path)


@pytest.mark.parametrize(
    ("time", "prompt", "field"),
    [
        (3052, "99999999999999999999999999", "input_length"),  # beyond 64 bits: pandas refuses it
        (3052, "18446744073709551615", "input_length"),
        (3052, "-5", "input_length"),
        (3052, "true", "input_length"),
        (3052, "NaN", "input_length"),
        ("1e400", 5, "timestamp"),
        ("1e300", 5, "timestamp"),
    ],
)
def test_mooncake_counts_and_times_are_bounded(tmp_path: Path, time: object, prompt: object, field: str) -> None:
    path = _write(tmp_path, "m.jsonl", MOONCAKE.format(time=time, prompt=prompt))
    with pytest.raises(TraceFormatError) as info:
        read_mooncake(path)
    assert (info.value.line, info.value.field) == (2, field)


@pytest.mark.parametrize(
    ("gpus", "end", "field"),
    [
        ("99999999999999999999999999", "3640.0", "num_gpu"),
        (str(MAX_JOB_GPUS + 1), "3640.0", "num_gpu"),
        ("-8", "3640.0", "num_gpu"),
        ("inf", "3640.0", "num_gpu"),
        ("8", "1e300", "finish_time"),
        ("8", "nan", "finish_time"),
    ],
)
def test_job_counts_and_times_are_bounded(tmp_path: Path, gpus: str, end: str, field: str) -> None:
    path = _write(tmp_path, "j.csv", JOBS.format(gpus=gpus, end=end))
    with pytest.raises(TraceFormatError) as info:
        read_jobs(path)
    assert (info.value.line, info.value.field) == (3, field)


def test_job_duration_that_overflows_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "j.csv", "jobid,num_gpu,start,duration\na,1,0,60\nb,2,0,1e308\n")
    with pytest.raises(TraceFormatError, match="line 3, field 'duration': expected a duration within"):
        read_jobs(path)


def test_gpu_label_with_too_many_digits_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.csv", DCGM_WIDE.format(gpu="GPU 99999999999999999999", power=600, util=50))
    with pytest.raises(TraceFormatError) as info:
        read_dcgm(path)
    assert (info.value.line, info.value.field) == (3, "gpu")


# ---------------------------------------------------------------- 2. telemetry ranges


@pytest.mark.parametrize(
    ("row", "field", "expected"),
    [
        ("2024/05/01 12:00:01.123, 0, 312.00 W, 250 %, 0 %, 38, 345 MHz, 700.00 W", "utilization.gpu [%]", "0..100 %"),
        ("2024/05/01 12:00:01.123, 0, -50.00 W, 0 %, 0 %, 38, 345 MHz, 700.00 W", "power.draw [W]", "0..5000 W"),
        ("2024/05/01 12:00:01.123, 0, 6000.00 W, 0 %, 0 %, 38, 345 MHz, 700.00 W", "power.draw [W]", "0..5000 W"),
        ("2024/05/01 12:00:01.123, 0, 2 kW, 0 %, 0 %, 38, 345 MHz, 70000 W", "power.limit [W]", "0..5000 W"),
        ("2024/05/01 12:00:01.123, 0, 300 W, 0 %, -5 %, 38, 345 MHz, 700 W", "utilization.memory [%]", "0..100 %"),
        ("2024/05/01 12:00:01.123, 0, 300 W, 0 %, 0 %, 500, 345 MHz, 700 W", "temperature.gpu", "-40..150 C"),
        ("2024/05/01 12:00:01.123, 0, 300 W, 0 %, 0 %, 38, 1e9 MHz, 700 W", "clocks.current.sm [MHz]", "0..100 GHz"),
        ("2024/05/01 12:00:01.123, 0, 300 W, 0 %, 0 %, 38, 1e305 MHz, 700 W", "clocks.current.sm [MHz]", "a number"),
    ],
)
def test_nvidia_smi_values_are_range_checked(tmp_path: Path, row: str, field: str, expected: str) -> None:
    path = _smi(tmp_path, row)
    with pytest.raises(TraceFormatError) as info:
        read_nvidia_smi(path)
    assert (info.value.line, info.value.field) == (6, field)
    assert expected in str(info.value)


def test_nvidia_smi_values_at_the_bounds_are_read(tmp_path: Path) -> None:
    path = _smi(tmp_path, "2024/05/01 12:00:01.123, 0, 0.00 W, 100 %, 100 %, 38, 345 MHz, 700.00 W")
    data, _ = read_nvidia_smi(path)
    assert data["utilization"].max() == 1.0
    assert data["power_w"].min() == 0.0


@pytest.mark.parametrize(
    ("power", "util", "field"),
    [
        ("-5", "50", "DCGM_FI_DEV_POWER_USAGE"),
        ("600", "250", "DCGM_FI_DEV_GPU_UTIL"),
        ("1e6", "5", "DCGM_FI_DEV_POWER_USAGE"),
    ],
)
def test_dcgm_wide_values_are_range_checked(tmp_path: Path, power: str, util: str, field: str) -> None:
    path = _write(tmp_path, "d.csv", DCGM_WIDE.format(gpu="GPU 0", power=power, util=util))
    with pytest.raises(TraceFormatError) as info:
        read_dcgm(path)
    assert (info.value.line, info.value.field) == (3, field)


@pytest.mark.parametrize(("power", "util", "line"), [("-5", "50", 4), ("600", "250", 3)])
def test_dcgm_long_values_are_range_checked_per_field(tmp_path: Path, power: str, util: str, line: int) -> None:
    path = _write(tmp_path, "d.csv", DCGM_LONG.format(power=power, util=util))
    with pytest.raises(TraceFormatError) as info:
        read_dcgm(path)
    assert (info.value.line, info.value.field) == (line, "value")
    assert "DCGM_FI_DEV_" in str(info.value)


@pytest.mark.parametrize(
    ("gpu", "power", "util", "field"),
    [("0", "-1", "0.5", "power_w"), ("0", "100", "2.5", "utilization"), ("1e30", "100", "0.5", "gpu_index")],
)
def test_harness_telemetry_values_are_range_checked(
    tmp_path: Path, gpu: str, power: str, util: str, field: str
) -> None:
    path = _write(tmp_path, "h.csv", HARNESS.format(gpu=gpu, power=power, util=util))
    with pytest.raises(TraceFormatError) as info:
        read_harness_telemetry(path)
    assert (info.value.line, info.value.field) == (3, field)


# ---------------------------------------------------------------- 3. weather


def _short_tmy(tmp_path: Path, rows: int = 98) -> Path:
    """The shipped Greensboro TMY3 cut to its first ``rows`` hours (1-5 January)."""
    out = tmp_path / "short_tmy.csv"
    out.write_text("".join(_head(GREENSBORO, 2 + rows)), encoding="latin-1")
    return out


def test_weather_file_must_cover_the_run(tmp_path: Path) -> None:
    path = _short_tmy(tmp_path)
    frame, _ = read_tmy3(path)
    with pytest.raises(TraceFormatError) as info:
        require_coverage(frame, datetime(2024, 7, 15), 600.0, str(path))
    message = str(info.value)
    assert isinstance(info.value, InvalidInputError)
    assert message.startswith(str(path))
    assert "covers 98 hourly rows from Jan 01 00:00 to Jan 05 02:00" in message
    assert "the run needs Jul 15 00:00 to Jul 15 01:00" in message
    # Inside the covered span the run is fine; past its end it is not.
    require_coverage(frame, datetime(2024, 1, 2, 5), 86400.0, str(path))
    with pytest.raises(TraceFormatError, match="no row for Jan 05 02:00"):
        require_coverage(frame, datetime(2024, 1, 4), 3 * 86400.0, str(path))


def test_whole_year_weather_wraps_at_the_year_end() -> None:
    frame, _ = read_tmy3(GREENSBORO)
    require_coverage(frame, datetime(2024, 12, 31, 23), 7200.0, "greensboro")
    require_coverage(frame, datetime(2024, 3, 1), 3 * 365 * 86400.0, "greensboro")


def test_weather_range_error_prints_plain_numbers(tmp_path: Path) -> None:
    lines = _head(GREENSBORO, 5)
    fields = lines[2].split(",")
    fields[31] = "999.0"  # Dry-bulb (C)
    lines[2] = ",".join(fields)
    path = tmp_path / "w999.csv"
    path.write_text("".join(lines), encoding="latin-1")
    with pytest.raises(TraceFormatError) as info:
        read_tmy3(path)
    assert str(info.value).endswith("got 999.0")
    assert "np.float64" not in str(info.value)
    assert (info.value.line, info.value.field) == (3, "dry_bulb_c")


@pytest.mark.parametrize("reader", [read_tmy3, read_epw])
def test_binary_weather_file_is_refused_with_its_line(tmp_path: Path, reader) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes("".join(_head(GREENSBORO, 3)).encode("latin-1") + b"\x00\x01\xff\n")
    with pytest.raises(TraceFormatError, match="NUL bytes") as info:
        reader(path)
    assert info.value.line == 4


def test_epw_year_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    text = (REPO / "tests" / "data" / "synthetic.epw").read_text(encoding="latin-1").splitlines(keepends=True)
    fields = text[8].split(",")
    fields[0] = "nan"
    text[8] = ",".join(fields)
    path = tmp_path / "y.epw"
    path.write_text("".join(text), encoding="latin-1")
    with pytest.raises(TraceFormatError) as info:
        read_epw(path)
    assert (info.value.line, info.value.field) == (9, "Year")


# ---------------------------------------------------------------- 4. empty and binary files


def _harness_run(tmp_path: Path, name: str = "run.csv") -> Path:
    out = tmp_path / name
    writer = LiveCsvWriter(out)
    for i in range(6):
        writer.write(
            {
                "time_s": 0.5 * i,
                "gpu_index": 0,
                "power_w": 50.0 + 20 * i,
                "energy_j": 30.0 * i,
                "utilization": 0.2 * i,
                "memory_utilization": float("nan"),
                "temperature_c": 40.0,
                "sm_clock_hz": float("nan"),
                "mem_clock_hz": float("nan"),
                "power_limit_w": float("nan"),
                "tokens": float(10 * i),
                "phase": "idle" if i < 2 else "decode",
            }
        )
    writer.close()
    return out


def test_calibrate_empty_file_exits_2_with_a_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = runner.invoke(harness_app, ["calibrate", str(empty)])
    assert result.exit_code == 2, result.output
    assert "empty.csv: expected a CSV header and rows, got an empty file" in result.output


@pytest.mark.parametrize("command", ["calibrate", "follow"])
def test_binary_harness_file_exits_2_naming_the_line(tmp_path: Path, command: str) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"time_s,gpu_index\n0,0\n\xff\xfe\x00garbage\n")
    args = [command, str(path)] + (["--poll", "0.01", "--wait", "0"] if command == "follow" else [])
    result = runner.invoke(harness_app, args)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "bin.csv, line 3" in said
    assert "not UTF-8 text" in said or "NUL bytes" in said


@pytest.mark.parametrize("fmt", ["azure-llm", "burstgpt", "mooncake", "nvidia-smi", "dcgm", "harness", "jobs", None])
def test_non_utf8_trace_is_a_named_error(tmp_path: Path, fmt: str | None) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,1,2\n\xe9t\xe9\n")
    with pytest.raises(TraceFormatError, match="not UTF-8 text") as info:
        read_trace(path, fmt)
    assert info.value.line == 3


def test_harness_file_with_a_bad_value_names_line_and_column(tmp_path: Path) -> None:
    path = _harness_run(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("40.0", "hot", 1)
    path.write_text("".join(lines))
    with pytest.raises(TraceFormatError) as info:
        read_harness(path)
    assert (info.value.line, info.value.field) == (4, "temperature_c")


def test_parquet_harness_file_is_range_checked_like_the_csv(tmp_path: Path) -> None:
    frame, _ = read_harness(_harness_run(tmp_path))
    good = tmp_path / "run.parquet"
    frame.to_parquet(good, index=False)
    pd.testing.assert_frame_equal(read_harness(good)[0], frame)  # the same rows either way
    bad = tmp_path / "bad.parquet"
    frame.assign(power_w=frame["power_w"].where(frame.index != 2, -50.0)).to_parquet(bad, index=False)
    with pytest.raises(TraceFormatError) as info:
        read_harness(bad)
    assert info.value.field == "power_w" and "-50.0" in str(info.value)


@pytest.mark.parametrize(
    ("summary", "message"),
    [(b"{not json", "invalid JSON"), (b"[1, 2]", "got list"), (b'{"decode_steps": "many"}', "decode_steps")],
)
def test_calibrate_bad_summary_is_a_named_error(tmp_path: Path, summary: bytes, message: str) -> None:
    path = _harness_run(tmp_path)
    summary_path(path).write_bytes(summary)
    with pytest.raises(TraceFormatError, match=message):
        calibrate(path, out=tmp_path / "x.yaml")


# ---------------------------------------------------------------- 5. follow a file that is not there


def test_follow_missing_file_with_no_wait_exits_2_at_once(tmp_path: Path) -> None:
    start = time.monotonic()
    result = runner.invoke(harness_app, ["follow", str(tmp_path / "nothere.csv"), "--wait", "0"])
    assert result.exit_code == 2
    assert "nothere.csv does not exist" in result.output
    assert time.monotonic() - start < 5


def test_follow_missing_file_says_it_waits_then_gives_up(tmp_path: Path) -> None:
    result = runner.invoke(harness_app, ["follow", str(tmp_path / "nothere.csv"), "--wait", "0.2", "--poll", "0.01"])
    assert result.exit_code == 2
    assert "waiting up to 0.2 s for" in result.output
    assert "did not appear within 0.2 s" in result.output


def test_follow_library_wait_limit(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="did not appear"):
        list(follow(tmp_path / "nothere.csv", poll_s=0.01, wait_s=0.05))


def test_follow_waits_for_a_file_that_appears(tmp_path: Path) -> None:
    path = _harness_run(tmp_path)
    write_json(summary_path(path), {"tokens": 0})
    frames = list(follow(path, poll_s=0.01, wait_s=0.0))
    assert sum(len(f) for f in frames) == 6


def test_follow_bad_value_names_line_and_column(tmp_path: Path) -> None:
    path = _harness_run(tmp_path)
    with path.open("a") as fh:
        fh.write("3.0,0,-70.0,,,,40.0,,,,60.0,decode\n")
    write_json(summary_path(path), {"tokens": 0})
    with pytest.raises(TraceFormatError) as info:
        list(follow(path, poll_s=0.01))
    assert (info.value.line, info.value.field) == (8, "power_w")


# ---------------------------------------------------------------- 6. property-based fuzzing

_NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e400", "-0", "0x10", "1_000", "[N/A]", "N/A", "１２"]),
    st.sampled_from(["99999999999999999999999999", "18446744073709551615", "9223372036854775808", "2147483648"]),
)
#: A CSV cell: a hostile number, or any short text (commas, quotes and newlines included).
_CELLS = st.one_of(_NUMBERS, _NUMBERS.map(lambda s: s + " W"), st.text(max_size=6))
#: A JSON value for a Mooncake field.
_JSON = st.one_of(
    _NUMBERS.filter(lambda s: s.strip() != "" and _is_json(s)),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "true", "null", "[1]", "{}", '"12"', '"x"']),
    st.text(max_size=5).map(json.dumps),
)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _azure_template() -> str:
    return "".join(_head(AZURE_LLM_2023["code"], 4)).replace("\r\n", "\n")


TEMPLATES: dict[str, tuple[str, object]] = {
    # Each: a valid file with {} where the fuzzed cells go, and its reader.
    "azure-llm": (_azure_template() + "2023-11-16 18:15:51.3910170,{},{}\n", read_azure_llm),
    "burstgpt": (BURSTGPT.replace("{prompt}", "{}").replace(",110,", ",{},"), read_burstgpt),
    "nvidia-smi": (
        "".join(_head(SMI_SAMPLE, 3)) + "2024/05/01 12:00:01.123, {}, {}, {}, 0 %, {}, 345 MHz, 700.00 W\n",
        read_nvidia_smi,
    ),
    "dcgm": (DCGM_WIDE.replace("{gpu}", "{}").replace("{power}", "{}").replace("{util}", "{}"), read_dcgm),
    "dcgm-long": (DCGM_LONG.replace("{util}", "{}").replace("{power}", "{}"), read_dcgm),
    "harness": (
        HARNESS.replace("{gpu}", "{}").replace("{power}", "{}").replace("{util}", "{}"),
        read_harness_telemetry,
    ),
    "jobs": (JOBS.replace("{gpus}", "{}").replace("{end}", "{}"), read_jobs),
}


def _check_sane(data: pd.DataFrame) -> None:
    """What a reader may return: finite times, counts whole, non-negative and bounded."""
    for col in ("arrival_s", "time_s", "start_s", "end_s"):
        if col in data:
            assert np.isfinite(data[col].to_numpy(dtype=np.float64)).all(), col
    for col, top in (("prompt_tokens", MAX_TOKENS_PER_REQUEST), ("output_tokens", MAX_TOKENS_PER_REQUEST)):
        if col in data:
            assert data[col].dtype == np.int64 and data[col].between(0, top).all(), col
    if "gpus" in data:
        assert data["gpus"].between(1, MAX_JOB_GPUS).all()
        assert (data["end_s"] > data["start_s"]).all()
    if "gpu_index" in data:
        assert data["gpu_index"].dtype == np.int64 and (data["gpu_index"] >= 0).all()
    for col, (lo, hi, _) in PLAUSIBLE_RANGES.items():
        if col in data:
            v = data[col].to_numpy(dtype=np.float64)
            v = v[~np.isnan(v)]
            assert ((v >= lo) & (v <= hi * (1 + 1e-9))).all(), col


def _read_or_refuse(reader, path: Path) -> None:
    try:
        data, _ = reader(path)
    except InvalidInputError:
        return
    _check_sane(data)
    for col in ("dry_bulb_c", "wet_bulb_c", "pressure_pa"):  # weather frames
        if col in data:
            assert np.isfinite(data[col].to_numpy(dtype=np.float64)).all(), col


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(fmt=st.sampled_from(sorted(TEMPLATES)), cells=st.lists(_CELLS, min_size=4, max_size=4))
def test_fuzzed_cells_give_sane_data_or_a_trace_error(tmp_path_factory, fmt: str, cells: list[str]) -> None:
    template, reader = TEMPLATES[fmt]
    n = template.count("{}")
    path = tmp_path_factory.mktemp("fuzz") / "trace.csv"
    path.write_text(template.format(*cells[:n]), encoding="utf-8")  # templates hold no other braces
    _read_or_refuse(reader, path)


@FUZZ
@given(time_=_JSON, prompt=_JSON, output=_JSON)
def test_fuzzed_mooncake_values_give_sane_data_or_a_trace_error(
    tmp_path_factory, time_: str, prompt: str, output: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "trace.jsonl"
    line = f'{{"timestamp": {time_}, "input_length": {prompt}, "output_length": {output}, "hash_ids": [1]}}\n'
    path.write_text(MOONCAKE.format(time=5, prompt=7) + line, encoding="utf-8")
    _read_or_refuse(read_mooncake, path)


def _bytes_heads() -> dict[str, tuple[bytes, object]]:
    """A valid beginning of a file of each kind, and the reader of that kind."""
    heads: dict[str, tuple[bytes, object]] = {
        fmt: (template.replace("{}", "1").encode(), reader) for fmt, (template, reader) in TEMPLATES.items()
    }
    heads["mooncake"] = (MOONCAKE.format(time=5, prompt=7).encode(), read_mooncake)
    heads["sniffed"] = (b"", read_trace)
    heads["tmy3"] = ("".join(_head(GREENSBORO, 6)).encode("latin-1"), read_tmy3)
    epw = (REPO / "tests" / "data" / "synthetic.epw").read_bytes().splitlines(keepends=True)
    heads["epw"] = (b"".join(epw[:12]), read_epw)
    heads["harness-run"] = (HARNESS_RUN.encode(), read_harness)
    return heads


HARNESS_RUN = (
    "time_s,gpu_index,power_w,energy_j,utilization,memory_utilization,temperature_c,sm_clock_hz,"
    "mem_clock_hz,power_limit_w,tokens,phase\n0.0,0,50.0,0.0,0.0,,40.0,,,,0.0,idle\n"
    "0.5,0,70.0,30.0,0.2,,40.0,,,,10.0,decode\n"
)
BYTES_HEADS = _bytes_heads()


@FUZZ
@given(fmt=st.sampled_from(sorted(BYTES_HEADS)), tail=st.binary(max_size=200), cut=st.integers(0, 600))
def test_fuzzed_bytes_give_sane_data_or_a_trace_error(tmp_path_factory, fmt: str, tail: bytes, cut: int) -> None:
    head, reader = BYTES_HEADS[fmt]
    path = tmp_path_factory.mktemp("fuzz") / "trace.bin"
    path.write_bytes(head[:cut] + tail)
    _read_or_refuse(reader, path)


def test_fuzz_templates_are_valid_files(tmp_path: Path) -> None:
    """Without fuzzing, each template reads: the fuzz tests start from good files."""
    for fmt, (template, reader) in TEMPLATES.items():
        path = tmp_path / f"{fmt}.csv"
        path.write_text(template.replace("{}", "1"), encoding="utf-8")
        data, _ = reader(path)  # type: ignore[operator]
        _check_sane(data)
        assert len(data) >= 1 and math.isfinite(float(len(data)))


def test_run_with_a_weather_file_that_misses_the_run_span_exits_2(tmp_path: Path) -> None:
    scenario = tmp_path / "weather_short.yaml"
    scenario.write_text(yaml.safe_dump({"base": "default", "weather": {"source": str(_short_tmy(tmp_path))}}))
    args = ["run", "-q", "--out", str(tmp_path / "o"), "--set", "duration_s=600", str(scenario)]
    result = runner.invoke(twin_app, args)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "covers 98 hourly rows from Jan 01 00:00 to Jan 05 02:00" in said
    assert "the run needs Jul 15 00:00" in said
    check = runner.invoke(twin_app, ["validate", str(scenario)])  # validate refuses what run refuses
    assert check.exit_code == 2 and "covers 98 hourly rows" in " ".join(check.output.split())
