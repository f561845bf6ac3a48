"""The result of a run: KPIs and time series, with a Parquet/JSON round trip.

Every file is written atomically (temporary file, then rename), so a crash never leaves a
half-written result behind and never destroys a finished one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.ledger import IT_CATEGORIES, LOSS_CATEGORIES
from twin.units import J_PER_KWH, S_PER_HOUR


@dataclass
class Result:
    """What one simulation produced.

    Attributes
    ----------
    kpis : dict
        Scalar key figures; units are in the key names (``_j``, ``_kwh``, ``_w``, ``_c``, ``_h``,
        ``_kg``); ratios are ``pue``, ``tokens_per_kwh``, ``j_per_token_*``.
    timeseries : pandas.DataFrame
        One row per report interval; mean powers ``_w``, token counts, temperatures ``_c``.
    ledger : pandas.DataFrame
        Energy per category and interval (``_j``), the metered input and the residual.
    scenario : dict
        The validated scenario that produced the result (JSON-able).
    seed : int
        The scenario seed; ``rng_state`` is the generator's state after the run.
    meta : dict
        Run facts: twin version, wall time, device counts.
    events : pandas.DataFrame
        Discrete events in time order: ``time_s``, ``event`` and a ``detail`` string (faults,
        repairs, power-source changes, load shed, rollbacks, thermal shutdowns, control windows).
    """

    kpis: dict[str, float]
    timeseries: pd.DataFrame
    ledger: pd.DataFrame
    scenario: dict[str, Any]
    seed: int
    rng_state: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    events: pd.DataFrame = field(default_factory=lambda: events_frame([]))

    def summary(self) -> dict[str, Any]:
        """KPIs plus the run facts, as written to ``summary.json``."""
        return {
            "kpis": self.kpis,
            "scenario_name": self.scenario.get("name"),
            "seed": self.seed,
            "meta": self.meta,
        }

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write ``summary.json``, ``timeseries.parquet``, ``ledger.parquet``, ``scenario.json``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [
            atomic_write(out / "timeseries.parquet", lambda p: self.timeseries.to_parquet(p, index=False)),
            atomic_write(out / "ledger.parquet", lambda p: self.ledger.to_parquet(p, index=False)),
            atomic_write_text(out / "scenario.json", json.dumps(self.scenario, indent=2, default=str)),
            atomic_write(out / "events.csv", lambda p: self.events.to_csv(p, index=False)),
            atomic_write_text(
                out / "summary.json",
                json.dumps({**self.summary(), "rng_state": self.rng_state}, indent=2, default=_json_default),
            ),
        ]
        return written

    @classmethod
    def load(cls, out_dir: str | Path) -> Result:
        """Read a result written by :meth:`save`."""
        out = Path(out_dir)
        summary = json.loads((out / "summary.json").read_text())
        events = pd.read_csv(out / "events.csv", dtype={"detail": str}) if (out / "events.csv").exists() else None
        return cls(
            kpis=summary["kpis"],
            timeseries=pd.read_parquet(out / "timeseries.parquet"),
            ledger=pd.read_parquet(out / "ledger.parquet"),
            scenario=json.loads((out / "scenario.json").read_text()),
            seed=summary["seed"],
            rng_state=summary.get("rng_state", {}),
            meta=summary.get("meta", {}),
            events=events_frame([]) if events is None else events.fillna({"detail": ""}),
        )


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The event log as a table: ``time_s``, ``event``, ``detail`` (``key=value`` pairs)."""

    def fmt(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    rows = [
        {
            "time_s": float(e["time_s"]),
            "event": str(e["event"]),
            "detail": " ".join(f"{k}={fmt(v)}" for k, v in e.items() if k not in ("time_s", "event")),
        }
        for e in events
    ]
    return pd.DataFrame(rows, columns=["time_s", "event", "detail"]).astype(
        {"time_s": "float64", "event": "object", "detail": "object"}
    )


def compute_kpis(
    timeseries: pd.DataFrame, ledger: pd.DataFrame, pool_names: list[str], site: dict[str, Any], n_gpus: int
) -> dict[str, float]:
    """Key figures from the per-interval ledger and time series."""
    booked_cols = [c for c in ledger.columns if c.endswith("_j") and c not in ("metered_j", "residual_j")]
    e = {c[:-2]: float(ledger[c].sum()) for c in booked_cols}
    facility_j = float(ledger["metered_j"].sum())
    it_j = sum(e.get(c, 0.0) for c in IT_CATEGORIES)
    cooling_j = sum(v for k, v in e.items() if k.startswith("cooling"))
    losses_j = sum(e.get(c, 0.0) for c in LOSS_CATEGORIES)
    ts = timeseries
    tokens_out = float(ts["tokens_out"].sum())
    duration_s = float(ts["duration_s"].sum())
    k: dict[str, float] = {
        "duration_s": duration_s,
        "n_gpus": float(n_gpus),
        "facility_energy_j": facility_j,
        "facility_energy_kwh": facility_j / J_PER_KWH,
        "it_energy_j": it_j,
        "it_energy_kwh": it_j / J_PER_KWH,
        "cooling_energy_j": cooling_j,
        "conversion_loss_energy_j": losses_j,
    }
    k.update({f"energy_{name}_j": v for name, v in e.items()})
    k.update(
        {
            "tokens_out": tokens_out,
            "tokens_generated": float(ts["tokens_generated"].sum()),
            "tokens_prefill": float(ts["tokens_prefill"].sum()),
            "tokens_training": float(ts["tokens_training"].sum()),
            "tokens_per_kwh": tokens_out / (facility_j / J_PER_KWH) if facility_j > 0 else 0.0,
            "tokens_per_kwh_it": tokens_out / (it_j / J_PER_KWH) if it_j > 0 else 0.0,
            "j_per_token_facility": facility_j / tokens_out if tokens_out > 0 else float("nan"),
            "j_per_token_it": it_j / tokens_out if tokens_out > 0 else float("nan"),
            "pue": facility_j / it_j if it_j > 0 else float("nan"),
            "mean_facility_power_w": facility_j / duration_s if duration_s > 0 else 0.0,
            "peak_facility_power_w": float(ts["facility_peak_power_w"].max()),
            "mean_it_power_w": it_j / duration_s if duration_s > 0 else 0.0,
            "max_die_temp_c": float(ts["die_temp_max_c"].max()),
            "max_inlet_temp_c": float(ts["inlet_temp_max_c"].max()),
            "water_l": float(ts["water_l"].sum()),
            "wue_l_per_kwh": float(ts["water_l"].sum()) / (it_j / J_PER_KWH) if it_j > 0 else 0.0,
            "free_cooling_h": float((ts["free_cooling_fraction"] * ts["duration_s"]).sum()) / S_PER_HOUR,
            "unmet_heat_j": float((ts["unmet_heat_w"] * ts["duration_s"]).sum()),
            "min_servers_up": float(ts["servers_up"].min()),
            "throttled_gpu_h": float(ts["throttled_gpu_s"].sum()) / S_PER_HOUR,
            "capped_gpu_h": float(ts["capped_gpu_s"].sum()) / S_PER_HOUR,
            "ledger_residual_j": float(ledger["residual_j"].sum()),
            "ledger_max_abs_residual_j": float(ledger["residual_j"].abs().max()),
            "carbon_kg": facility_j / J_PER_KWH * site["carbon_intensity_g_per_kwh"] / 1000.0,
            "energy_cost": facility_j / J_PER_KWH * site["electricity_price_per_kwh"],
        }
    )
    for name in pool_names:
        k[f"{name}_tokens_generated"] = float(ts[f"{name}_tokens_generated"].sum())
        k[f"{name}_tokens_prefill"] = float(ts[f"{name}_tokens_prefill"].sum())
        k[f"{name}_tokens_training"] = float(ts[f"{name}_tokens_training"].sum())
        k[f"{name}_requests"] = float(ts[f"{name}_requests"].sum())
        k[f"{name}_backlog_tokens_end"] = float(ts[f"{name}_backlog_tokens"].iloc[-1])
    return k


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o666 & ~_umask())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
