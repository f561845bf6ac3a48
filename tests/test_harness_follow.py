"""Following a harness CSV while a writer thread appends to it (partial lines included)."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from twin.errors import TraceFormatError
from twin.harness.follow import follow
from twin.harness.io import HARNESS_COLUMNS, LiveCsvWriter, summary_path, write_json


def _row(i: int) -> dict:
    return {
        "time_s": 0.1 * i,
        "gpu_index": 0,
        "power_w": 100.0 + i,
        "energy_j": 10.0 * i,
        "utilization": float("nan"),
        "memory_utilization": float("nan"),
        "temperature_c": 40.0,
        "sm_clock_hz": float("nan"),
        "mem_clock_hz": float("nan"),
        "power_limit_w": float("nan"),
        "tokens": float(2 * i),
        "phase": "idle" if i < 3 else "decode",
    }


def test_follow_reads_rows_appended_by_a_writer_thread(tmp_path):
    out = tmp_path / "live.csv"
    n = 12

    def writer() -> None:
        w = LiveCsvWriter(out)
        for i in range(n):
            w.write(_row(i))
            time.sleep(0.01)
        w.close()
        # Now a line arrives in two pieces, as a slow writer might leave it.
        line = "1.2,0,112.0,120.0,,,40.0,,,,24.0,decode\n"
        with out.open("a") as fh:
            fh.write(line[:17])
            fh.flush()
            time.sleep(0.15)
            fh.write(line[17:])
            fh.flush()
        time.sleep(0.05)
        write_json(summary_path(out), {"tokens": 0})

    thread = threading.Thread(target=writer)
    thread.start()
    frames = list(follow(out, poll_s=0.02))
    thread.join()
    data = pd.concat(frames, ignore_index=True)
    assert len(frames) >= 2  # it really did read while the file grew
    assert tuple(data.columns) == HARNESS_COLUMNS
    assert len(data) == n + 1  # every row once, the split line whole
    assert list(data["tokens"]) == [2.0 * i for i in range(n + 1)]
    assert data["power_w"].iloc[-1] == 112.0
    assert data["gpu_index"].dtype == "int64"
    assert data["utilization"].isna().all()
    assert list(data["phase"].iloc[:4]) == ["idle", "idle", "idle", "decode"]


def test_follow_stops_on_request_before_the_file_exists(tmp_path):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 3

    assert list(follow(tmp_path / "never.csv", poll_s=0.001, stop=stop)) == []


def test_follow_rejects_a_foreign_csv(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(TraceFormatError, match="not a harness CSV"):
        next(follow(path, poll_s=0.001))


def test_follow_of_a_parquet_run_tails_its_csv(tmp_path):
    w = LiveCsvWriter(tmp_path / "run.csv")
    w.write(_row(0))
    w.close()
    write_json(summary_path(tmp_path / "run.parquet"), {})
    frames = list(follow(tmp_path / "run.parquet", poll_s=0.001))
    assert sum(len(f) for f in frames) == 1
