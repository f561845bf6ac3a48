"""Follow a running harness: read its CSV as rows are appended, in the telemetry schema.

The harness appends one flushed line per sample and writes ``<stem>.summary.json`` when it is
done. :func:`follow` yields the complete rows that appeared since its last look (a line without
its newline yet is kept until the rest arrives) and stops once the summary exists and every row
has been read, or when ``stop()`` says so.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from twin.errors import TraceFormatError
from twin.harness.io import HARNESS_COLUMNS, coerce_frame, live_csv_path, summary_path


class _Tail:
    """Incremental reader of complete lines from a growing text file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def lines(self) -> list[str]:
        """Complete lines added since the previous call."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        return [line.decode() for line in complete if line.strip()]


def _parse(lines: list[str], header: list[str], path: Path) -> pd.DataFrame:
    records = list(csv.reader(io.StringIO("\n".join(lines))))
    bad = [i for i, rec in enumerate(records) if len(rec) != len(header)]
    if bad:
        raise TraceFormatError(
            str(path),
            f"row with {len(records[bad[0]])} fields, expected {len(header)}: {lines[bad[0]]!r}",
        )
    frame = pd.read_csv(io.StringIO("\n".join(lines)), names=header, header=None)
    return coerce_frame(frame[list(HARNESS_COLUMNS)])


def follow(
    path: Path | str,
    poll_s: float = 0.2,
    stop: Callable[[], bool] | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the new rows of a harness CSV as they are written.

    Parameters
    ----------
    path : Path or str
        The harness ``--out`` file (for a ``.parquet`` run, its live ``.csv`` is followed). It
        need not exist yet.
    poll_s : float
        Seconds between looks at the file.
    stop : callable, optional
        Checked at every poll; following ends when it returns True.

    Yields
    ------
    pandas.DataFrame
        One or more new rows in :data:`~twin.harness.io.HARNESS_COLUMNS`, schema dtypes.

    Raises
    ------
    TraceFormatError
        If the file's header is not a harness header, or a row has the wrong field count.
    """
    path = live_csv_path(path)
    done = summary_path(path)
    tail = _Tail(path)
    header: list[str] | None = None
    while True:
        finished = done.exists()  # look before reading, so rows written before it are read
        lines = tail.lines()
        if header is None and lines:
            header = next(csv.reader([lines.pop(0)]))
            missing = [c for c in HARNESS_COLUMNS if c not in header]
            if missing:
                raise TraceFormatError(str(path), f"not a harness CSV: lacks {', '.join(missing)}")
        if header is not None and lines:
            yield _parse(lines, header, path)
        if finished or (stop is not None and stop()):
            return
        time.sleep(poll_s)


__all__ = ["follow"]
