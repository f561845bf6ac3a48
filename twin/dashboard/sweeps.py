"""Reading a sweep result folder for the dashboard (no Streamlit).

A sweep folder holds ``summary.parquet`` and/or ``summary.csv`` with one row per point: the swept
fields and every KPI as columns. Any column can go on the x axis, any numeric column on the y
axis; the first plot puts the first swept field (not a bookkeeping column) on x.
"""

from __future__ import annotations

import io
from pathlib import Path

import altair as alt
import pandas as pd

from twin.errors import TwinError

#: File names looked for in a sweep folder, in order of preference.
SUMMARY_FILES: tuple[str, ...] = ("summary.parquet", "summary.csv")

#: Columns ``twin sweep`` writes about each point rather than about the scenario (never a default x).
BOOKKEEPING: frozenset[str] = frozenset({"point", "key", "status", "error", "wall_time_s", "worker", "run_id"})


def summary_file(path: str | Path) -> Path:
    """The summary table of a sweep folder (or ``path`` itself when it is a .parquet/.csv file).

    Raises
    ------
    TwinError
        When ``path`` does not exist or holds neither ``summary.parquet`` nor ``summary.csv``.
    """
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix not in (".parquet", ".csv"):
            raise TwinError(f"{p}: expected a .parquet or .csv summary table, got a {p.suffix or 'suffix-less'} file")
        return p
    if not p.is_dir():
        raise TwinError(f"{p}: no such sweep folder or summary file")
    for name in SUMMARY_FILES:
        if (p / name).is_file():
            return p / name
    raise TwinError(f"{p}: not a sweep folder (expected {' or '.join(SUMMARY_FILES)} in it)")


def load_sweep(path: str | Path) -> pd.DataFrame:
    """Read a sweep's summary table (see :func:`summary_file`).

    Raises
    ------
    TwinError
        When the file cannot be read or has no rows.
    """
    f = summary_file(path)
    try:
        frame = pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f)
    except (OSError, ValueError) as exc:
        raise TwinError(f"{f}: cannot read the sweep summary ({exc})") from None
    if frame.empty:
        raise TwinError(f"{f}: the sweep summary has no rows")
    return frame


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that can go on a y axis (numeric, not boolean, at least one finite value)."""
    out = []
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            continue
        if s.notna().any():
            out.append(str(col))
    return out


def varying_columns(frame: pd.DataFrame) -> list[str]:
    """Columns with more than one distinct value: the swept fields (and the KPIs that moved)."""
    return [str(c) for c in frame.columns if frame[c].nunique(dropna=True) > 1]


def default_axes(frame: pd.DataFrame) -> tuple[str, str]:
    """A sensible first plot: the first varying column that is not bookkeeping (the first swept
    field) against ``tokens_per_kwh`` (or a numeric one)."""
    numeric = numeric_columns(frame)
    if not numeric:
        raise TwinError("the sweep summary has no numeric column to plot")
    y = "tokens_per_kwh" if "tokens_per_kwh" in numeric else numeric[-1]
    varying = [c for c in varying_columns(frame) if c != y]
    x = next((c for c in varying if c not in BOOKKEEPING), varying[0] if varying else str(frame.columns[0]))
    return x, y


def plot_frame(frame: pd.DataFrame, x: str, y: str, color: str | None = None) -> pd.DataFrame:
    """The columns of one plot, rows with a missing ``y`` dropped, sorted by ``x``.

    Raises
    ------
    TwinError
        When a column is missing or ``y`` is not numeric.
    """
    for col in (x, y, *([color] if color else [])):
        if col not in frame.columns:
            raise TwinError(f"no column {col!r} in the sweep summary; columns: {', '.join(map(str, frame.columns))}")
    if y not in numeric_columns(frame):
        raise TwinError(f"column {y!r} is not numeric and cannot go on the y axis")
    cols = list(dict.fromkeys([x, y, *([color] if color else [])]))
    out = frame[cols].dropna(subset=[y])
    return out.sort_values(x, kind="stable").reset_index(drop=True)


def field(column: str) -> str:
    """``column`` as a Vega-Lite field name: ``.``, ``[`` and ``]`` escaped, so that a swept path
    such as ``weather.source`` is one column and not the field ``source`` nested in ``weather``."""
    out = column.replace("\\", "\\\\")
    for ch in ".[]":
        out = out.replace(ch, "\\" + ch)
    return out


def chart(data: pd.DataFrame, x: str, y: str, color: str | None = None) -> alt.Chart:
    """Line-and-point chart of :func:`plot_frame`'s ``data``: ``y`` against ``x``, one line per ``color``.

    A numeric ``x`` is a quantitative axis (whole-number ticks when every value is whole); any
    other ``x`` is nominal, one category per value in the order of ``data``.
    """
    numeric = numeric_columns(data)
    if x in numeric:
        whole = bool((data[x].dropna() % 1 == 0).all())
        x_enc = alt.X(field(x), type="quantitative", title=x, axis=alt.Axis(tickMinStep=1) if whole else alt.Axis())
    else:
        x_enc = alt.X(field(x), type="nominal", title=x, sort=None)
    enc: dict[str, object] = {
        "x": x_enc,
        "y": alt.Y(field(y), type="quantitative", title=y, scale=alt.Scale(zero=False)),
        "tooltip": [alt.Tooltip(field(c), title=c) for c in data.columns],
    }
    if color:
        enc["color"] = alt.Color(field(color), type="nominal", title=color)
    return alt.Chart(data, height=380).mark_line(point=True).encode(**enc)


def read_summary_bytes(name: str, data: bytes) -> pd.DataFrame:
    """Read an uploaded summary table (``name`` ends in .parquet or .csv).

    Raises
    ------
    TwinError
        On another suffix, an unreadable file or an empty table.
    """
    suffix = Path(name).suffix
    if suffix not in (".parquet", ".csv"):
        raise TwinError(f"{name}: expected a .parquet or .csv summary table")
    try:
        frame = pd.read_parquet(io.BytesIO(data)) if suffix == ".parquet" else pd.read_csv(io.BytesIO(data))
    except (OSError, ValueError) as exc:
        raise TwinError(f"{name}: cannot read the sweep summary ({exc})") from None
    if frame.empty:
        raise TwinError(f"{name}: the sweep summary has no rows")
    return frame
