"""Follow a running harness: read its CSV as rows are appended, in the telemetry schema.

The harness appends one flushed line per sample and writes ``<stem>.summary.json`` when it is
done. :func:`follow` yields the complete rows that appeared since its last look (a line without
its newline yet is kept until the rest arrives) and stops once the summary exists and every row
has been read, or when ``stop()`` says so.

A file that does not exist yet is waited for (the harness may not have started), for at most
``wait_s`` seconds when given. Rows are checked as :func:`twin.harness.io.read_harness` checks
them; a line that is not UTF-8, has the wrong number of fields or holds a bad value raises a
:class:`~twin.errors.TraceFormatError` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from twin.errors import TraceFormatError
from twin.harness.io import HARNESS_COLUMNS, live_csv_path, parse_rows, summary_path


class _Tail:
    """Incremental reader of complete lines from a growing text file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.exists = False
        self._offset = 0
        self._line = 0
        self._partial = b""

    def lines(self) -> list[tuple[int, str]]:
        """Complete non-blank lines added since the previous call, with their 1-based numbers."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        except OSError as exc:  # a directory, no permission
            raise TraceFormatError(str(self.path), f"cannot read the file: {exc}") from exc
        self.exists = True
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        out = []
        for raw in complete:
            self._line += 1
            if b"\x00" in raw:
                raise TraceFormatError(str(self.path), "not a text file: it holds NUL bytes", line=self._line)
            try:
                line = raw.decode("utf-8-sig" if self._line == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise TraceFormatError(
                    str(self.path), f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded", line=self._line
                ) from exc
            if line.strip():
                out.append((self._line, line))
        return out


def _parse(lines: list[tuple[int, str]], header: list[str], path: Path) -> pd.DataFrame:
    texts = [text for _, text in lines]
    records = list(csv.reader(texts))
    for (line_no, text), rec in zip(lines, records, strict=True):
        if len(rec) != len(header):
            raise TraceFormatError(
                str(path), f"expected {len(header)} fields, got {len(rec)}: {text[:120]!r}", line=line_no
            )
    raw = pd.DataFrame(records, columns=header)
    raw = raw.where(raw.apply(lambda c: c.str.strip() != ""))
    return parse_rows(path, raw[list(HARNESS_COLUMNS)], lambda i: lines[i][0])


def follow(
    path: Path | str,
    poll_s: float = 0.2,
    stop: Callable[[], bool] | None = None,
    wait_s: float | None = None,
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
    wait_s : float, optional
        Longest wait for the file to appear [s]; None waits as long as ``stop`` allows.

    Yields
    ------
    pandas.DataFrame
        One or more new rows in :data:`~twin.harness.io.HARNESS_COLUMNS`, schema dtypes.

    Raises
    ------
    TraceFormatError
        If the file's header is not a harness header, a line is not UTF-8 text, a row has the
        wrong field count or a bad value, or the file did not appear within ``wait_s``.
    """
    path = live_csv_path(path)
    done = summary_path(path)
    tail = _Tail(path)
    header: list[str] | None = None
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        finished = done.exists()  # look before reading, so rows written before it are read
        lines = tail.lines()
        if header is None and lines:
            line_no, text = lines.pop(0)
            header = [name.strip() for name in next(csv.reader([text]))]
            if len(set(header)) != len(header):
                raise TraceFormatError(str(path), "not a harness CSV: a column name repeats", line=line_no)
            missing = [c for c in HARNESS_COLUMNS if c not in header]
            if missing:
                raise TraceFormatError(str(path), f"not a harness CSV: lacks {', '.join(missing)}", line=line_no)
        if header is not None and lines:
            yield _parse(lines, header, path)
        if finished or (stop is not None and stop()):
            return
        if not tail.exists and deadline is not None and time.monotonic() >= deadline:
            raise TraceFormatError(
                str(path), f"no such file: it did not appear within {wait_s:g} s (is a harness writing it?)"
            )
        time.sleep(poll_s)


__all__ = ["follow"]
