"""Request-trace readers: the real Azure files, BurstGPT and Mooncake samples, located errors."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.errors import TraceFormatError
from twin.workload import (
    AZURE_LLM_2023,
    REQUEST_COLUMNS,
    read_azure_llm,
    read_burstgpt,
    read_mooncake,
)

DATA = Path(__file__).parent / "data"
SHARED = Path("/work/shared/traces/azure-llm-2023")


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def _check_schema(df: pd.DataFrame) -> None:
    assert tuple(df.columns) == REQUEST_COLUMNS
    assert df["arrival_s"].dtype == np.float64
    assert df["prompt_tokens"].dtype == np.int64
    assert df["output_tokens"].dtype == np.int64
    assert np.all(np.diff(df["arrival_s"].to_numpy()) >= 0)


# --------------------------------------------------------------------------- real Azure data


@pytest.mark.parametrize("kind", ["code", "conv"])
def test_bundled_azure_files_are_unchanged_copies(kind: str) -> None:
    shared = SHARED / AZURE_LLM_2023[kind].name
    if not shared.exists():
        pytest.skip("shared trace folder not present on this machine")
    assert AZURE_LLM_2023[kind].read_bytes() == shared.read_bytes()


def test_bundled_azure_files_keep_their_licence_note() -> None:
    note = (AZURE_LLM_2023["code"].parent / "SOURCE.md").read_text()
    assert "CC-BY 4.0" in note
    assert "Splitwise" in note
    assert "ISCA 2024" in note


@pytest.mark.parametrize(("kind", "n_rows"), [("code", 8819), ("conv", 19366)])
def test_azure_real_file_counts_and_token_sums(kind: str, n_rows: int) -> None:
    path = AZURE_LLM_2023[kind]
    rows = _csv_rows(path)
    assert rows[0] == ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
    body = rows[1:]
    # The files have no final newline, so every physical line after the header is a request.
    assert len(body) == n_rows
    df, meta = read_azure_llm(path)
    _check_schema(df)
    assert len(df) == n_rows
    assert int(df["prompt_tokens"].sum()) == sum(int(r[1]) for r in body)
    assert int(df["output_tokens"].sum()) == sum(int(r[2]) for r in body)
    # Times: seconds after the first request, to the microsecond (the file has 100 ns digits).
    stamps = [datetime.strptime(r[0][:26], "%Y-%m-%d %H:%M:%S.%f") for r in body]
    t0 = min(stamps)
    expected = np.array([(s - t0).total_seconds() for s in stamps])
    assert df["arrival_s"].iloc[0] == 0.0
    np.testing.assert_allclose(df["arrival_s"].to_numpy(), np.sort(expected), atol=1e-6)
    assert meta.start == t0.replace(microsecond=meta.start.microsecond)
    assert meta.format == "azure-llm"
    assert meta.duration_s == pytest.approx(expected.max(), abs=1e-6)
    assert meta.extra["rows_out_of_order"] == 0


def test_azure_code_known_values() -> None:
    df, meta = read_azure_llm(AZURE_LLM_2023["code"])
    # First rows of the file: 18:17:03.9799600, 4808, 10 / 18:17:04.0319600, 3180, 8.
    assert df.iloc[0].tolist() == [0.0, 4808, 10]
    assert df["arrival_s"].iloc[1] == pytest.approx(0.052, abs=1e-9)
    assert df["prompt_tokens"].iloc[1] == 3180
    assert meta.start == datetime(2023, 11, 16, 18, 17, 3, 979960)
    # Last row: 2023-11-16 19:14:19.9280160 -> 3435.948056 s after the first.
    assert meta.duration_s == pytest.approx(3435.948056, abs=1e-9)


# --------------------------------------------------------------------------- malformed Azure files


def _azure_with_line(tmp_path: Path, line_no: int, text: str) -> Path:
    """Copy the real code trace, replacing physical line ``line_no`` (1-based)."""
    lines = AZURE_LLM_2023["code"].read_bytes().split(b"\r\n")
    lines[line_no - 1] = text.encode()
    out = tmp_path / "AzureLLMInferenceTrace_code.csv"
    out.write_bytes(b"\r\n".join(lines))
    return out


@pytest.mark.parametrize(
    ("line_no", "text", "field", "expected", "got"),
    [
        (
            17,
            "2023-11-16 18:17:04.6000000,abc,10",
            "ContextTokens",
            "a non-negative integer",
            "'abc'",
        ),
        (
            250,
            "2023-11-16 18:17:20.0000000,120,-3",
            "GeneratedTokens",
            "a non-negative integer",
            "'-3'",
        ),
        (
            4000,
            "2023-11-16 18:40:00.0000000,12.5,3",
            "ContextTokens",
            "a non-negative integer",
            "'12.5'",
        ),
        (8820, "2023-11-16 25:99:00.0000000,1,1", "TIMESTAMP", "a date-time timestamp", None),
        (2, "not a time,1,1", "TIMESTAMP", "a date-time timestamp", "'not a time'"),
        (9, "2023-11-16 18:17:04.3000000,,5", "ContextTokens", "a non-negative integer", None),
    ],
)
def test_azure_malformed_rows_name_file_line_and_field(
    tmp_path: Path, line_no: int, text: str, field: str, expected: str, got: str | None
) -> None:
    path = _azure_with_line(tmp_path, line_no, text)
    with pytest.raises(TraceFormatError) as info:
        read_azure_llm(path)
    err = info.value
    assert err.line == line_no
    assert err.field == field
    message = str(err)
    assert message.startswith(f"{path}, line {line_no}, field '{field}': expected {expected}")
    assert "AzureLLMInferenceTrace_code.csv" in message
    if got is not None:
        assert message.endswith(f"got {got}")


def test_azure_error_line_counts_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,10,1\n"
        "\n"
        "\n"
        "2023-11-16 18:17:04.9799600,20,2\n"
        "2023-11-16 18:17:05.9799600,x,3\n"
    )
    with pytest.raises(TraceFormatError, match=r"t\.csv, line 6, field 'ContextTokens'"):
        read_azure_llm(path)


def test_azure_missing_column_names_header(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:17:03.9799600,10\n")
    with pytest.raises(TraceFormatError) as info:
        read_azure_llm(path)
    assert info.value.line == 1
    assert info.value.field == "GeneratedTokens"
    assert "missing" in str(info.value)


def test_azure_ragged_row_is_located(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,10,1\n"
        "2023-11-16 18:17:04.9799600,20,2,99\n"
    )
    with pytest.raises(TraceFormatError) as info:
        read_azure_llm(path)
    assert info.value.line == 3


def test_azure_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("")
    with pytest.raises(TraceFormatError, match="empty file"):
        read_azure_llm(path)


def test_azure_2024_timestamps_with_offsets_and_out_of_order_rows(tmp_path: Path) -> None:
    path = tmp_path / "AzureLLMInferenceTrace_code_1week.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-05-10 00:00:00.009930+00:00,100,10\n"
        "2024-05-10 00:00:02+00:00,300,30\n"
        "2024-05-10 00:00:01.5+00:00,200,20\n"
    )
    df, meta = read_azure_llm(path)
    _check_schema(df)
    assert df["prompt_tokens"].tolist() == [100, 200, 300]
    np.testing.assert_allclose(df["arrival_s"], [0.0, 1.49007, 1.99007], atol=1e-12)
    assert meta.start == datetime(2024, 5, 10, 0, 0, 0, 9930, tzinfo=UTC)
    assert meta.extra["rows_out_of_order"] == 1


def test_azure_header_only_gives_empty_frame(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    df, meta = read_azure_llm(path)
    _check_schema(df)
    assert len(df) == 0
    assert meta.duration_s == 0.0


# --------------------------------------------------------------------------- BurstGPT


def test_burstgpt_sample() -> None:
    path = DATA / "burstgpt_sample.csv"
    rows = _csv_rows(path)
    df, meta = read_burstgpt(path)
    _check_schema(df)
    assert len(df) == len(rows) - 1 == 10
    assert int(df["prompt_tokens"].sum()) == sum(int(r[2]) for r in rows[1:])
    assert int(df["output_tokens"].sum()) == sum(int(r[3]) for r in rows[1:])
    # Timestamp 5 s is t = 0; 199 s is the last.
    assert meta.extra["source_t0_s"] == 5.0
    assert meta.duration_s == 194.0
    assert meta.extra["models"] == ["ChatGPT", "GPT-4"]


def test_burstgpt_filters_and_failed_requests() -> None:
    path = DATA / "burstgpt_sample.csv"
    gpt4, _ = read_burstgpt(path, model="GPT-4")
    assert gpt4["prompt_tokens"].tolist() == [417, 2034, 875]
    assert gpt4["arrival_s"].tolist() == [0.0, 15.0, 42.0]
    ok, meta = read_burstgpt(path, drop_failed=True)
    assert len(ok) == 8
    assert (ok["output_tokens"] > 0).all()
    assert meta.extra["failed_dropped"] == 2
    api, _ = read_burstgpt(path, log_type="API log", drop_failed=True)
    assert api["prompt_tokens"].tolist() == [1535, 875]


def test_burstgpt_bad_token_is_located(tmp_path: Path) -> None:
    text = (DATA / "burstgpt_sample.csv").read_text().splitlines()
    text[4] = "123,ChatGPT,1535,lots,1765,API log"
    path = tmp_path / "BurstGPT_1.csv"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(TraceFormatError) as info:
        read_burstgpt(path)
    assert (info.value.line, info.value.field) == (5, "Response tokens")
    assert "got 'lots'" in str(info.value)


# --------------------------------------------------------------------------- Mooncake


def test_mooncake_sample() -> None:
    path = DATA / "mooncake_sample.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    df, meta = read_mooncake(path)
    _check_schema(df)
    assert len(df) == len(records) == 6
    assert df["arrival_s"].tolist() == [r["timestamp"] / 1000 for r in records]
    assert int(df["prompt_tokens"].sum()) == sum(r["input_length"] for r in records)
    assert int(df["output_tokens"].sum()) == sum(r["output_length"] for r in records)
    # 53 blocks in all; block 0 recurs in 4 later requests, blocks 1 and 2 once each: 6 / 53.
    assert meta.extra["prefix_block_reuse"] == pytest.approx(6 / 53)


@pytest.mark.parametrize(
    ("bad_line", "field", "fragment"),
    [
        ('{"timestamp": 10, "input_length": -5, "output_length": 1}', "input_length", "'-5'"),
        ('{"timestamp": "soon", "input_length": 5, "output_length": 1}', "timestamp", "'soon'"),
        ('{"timestamp": 10, "input_length": 5}', "output_length", "an empty value"),
        ('{"timestamp": 10, "input_length": 5, "output_length": 1', None, "invalid JSON"),
    ],
)
def test_mooncake_malformed_lines(tmp_path: Path, bad_line: str, field: str | None, fragment: str) -> None:
    lines = (DATA / "mooncake_sample.jsonl").read_text().splitlines()
    lines.insert(3, "")  # a blank line before the bad one must not shift the count
    lines.insert(4, bad_line)
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError) as info:
        read_mooncake(path)
    assert info.value.line == 5
    assert info.value.field == field
    assert fragment in str(info.value)
