"""The summary of one harness run, written last (atomically) as ``<stem>.summary.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from twin.harness import HarnessError
from twin.harness.io import summary_path

NAN = float("nan")


@dataclass(frozen=True)
class HarnessSummary:
    """What one harness run measured, and under which conditions (``<out>.summary.json``).

    Energy figures cover the load window (from the end of the idle baseline to the last sample);
    ``energy_source`` says whether they are measured (``nvml``, ``rapl``) or ``estimated``.
    """

    out: str
    device: str
    device_name: str
    energy_source: str
    energy_note: str
    batch: int
    prompt_len: int
    gen_len: int
    dtype: str
    torch_version: str
    seed: int
    sample_hz: float
    idle_s: float
    #: Load window length [s].
    duration_s: float
    #: Tokens generated in the load window (the first token of each prefill and every decode).
    tokens: int
    #: Prompt tokens processed by prefill.
    prompt_tokens: int
    tokens_per_s: float
    #: Energy of the load window [J].
    energy_j: float
    j_per_token: float
    #: Mean power over the load window = energy_j / duration_s [W].
    mean_power_w: float
    #: Highest sampled power in the load window [W].
    peak_power_w: float
    #: Mean sampled power in the idle baseline [W] (NaN with no idle samples).
    idle_power_w: float
    #: Enforced power limit during the load window [W] (NaN where the meter has none).
    power_limit_w: float
    power_limit_requested_w: float
    #: ``default`` (no cap asked), ``set``, ``not permitted: ...`` or ``not supported: ...``.
    power_limit_status: str
    prefill_time_s: float
    prefill_flops_total: float
    decode_time_s: float
    decode_steps: int
    decode_bytes_total: float
    device_memory_bytes: float
    n_samples: int
    started_at: str
    model: dict[str, Any] = field(default_factory=dict)
    meter: dict[str, Any] = field(default_factory=dict)
    zeus_energy_j: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        """True when energy was measured by a counter, False when it is a model estimate."""
        return self.energy_source != "estimated"

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (JSON-ready apart from NaN, which :func:`write_json` turns to null)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HarnessSummary:
        """Rebuild from :meth:`to_dict` output (``null`` floats come back as NaN)."""
        kinds = {f.name: f.type for f in fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in data.items():
            if key not in kinds:
                continue
            clean[key] = NAN if value is None and kinds[key] == "float" else value
        return cls(**clean)


def read_summary(out: Path | str) -> HarnessSummary:
    """Read the summary of the run written to ``out``."""
    path = summary_path(out)
    if not path.exists():
        raise HarnessError(f"{path} does not exist: the run has not finished (or never started)")
    return HarnessSummary.from_dict(json.loads(path.read_text()))


__all__ = ["HarnessSummary", "read_summary"]
