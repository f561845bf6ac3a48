"""The serving model's measured error per accelerator: what every run that serves states.

``serving_accuracy.csv`` holds, per catalog accelerator with measured serving runs, the mean
absolute percentage error (MAPE) of the twin against the ML.ENERGY v3 vLLM runs of the models the
fit never saw (the held-out half of :func:`twin.validation.serving_fit.split_models`): GPU power,
GPU energy per output token, output tokens/s and median inter-token latency. ``twin
validate-serving DATASET --accuracy-table FILE`` writes it from the dataset, and the test suite
checks that the shipped table is what the shipped dataset gives. An accelerator without a row has
no measured serving runs in the project (its serving figures carry no stated error).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: The shipped table.
ACCURACY_CSV = Path(__file__).parent / "serving_accuracy.csv"
#: Its columns, in order.
COLUMNS = (
    "accelerator",
    "configurations",
    "power_pct",
    "j_per_token_pct",
    "tokens_per_s_pct",
    "itl_p50_pct",
    "source",
)


@dataclass(frozen=True)
class ServingAccuracy:
    """The serving model's held-out error on one accelerator (MAPE, percent)."""

    accelerator: str
    #: Measured configurations the figures are over. [1]
    configurations: int
    power_pct: float
    j_per_token_pct: float
    tokens_per_s_pct: float
    itl_p50_pct: float
    source: str

    def describe(self) -> str:
        """One line: what the figures are and where they come from.

        Examples
        --------
        >>> line = ServingAccuracy("H100-SXM", 133, 9.6, 12.7, 10.5, 9.7, "ML.ENERGY v3").describe()
        >>> line.split(": ")[1]
        'power 9.6 %, J/token 12.7 %, tokens/s 10.5 %, ITL p50 9.7 %'
        """
        return (
            f"serving model error on {self.accelerator} (MAPE over {self.configurations} measured runs of models "
            f"the fit never saw; {self.source}): power {self.power_pct:.1f} %, J/token {self.j_per_token_pct:.1f} %, "
            f"tokens/s {self.tokens_per_s_pct:.1f} %, ITL p50 {self.itl_p50_pct:.1f} %"
        )


@cache
def _table() -> dict[str, ServingAccuracy]:
    with ACCURACY_CSV.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {
        r["accelerator"]: ServingAccuracy(
            accelerator=r["accelerator"],
            configurations=int(r["configurations"]),
            power_pct=float(r["power_pct"]),
            j_per_token_pct=float(r["j_per_token_pct"]),
            tokens_per_s_pct=float(r["tokens_per_s_pct"]),
            itl_p50_pct=float(r["itl_p50_pct"]),
            source=r["source"],
        )
        for r in rows
    }


def serving_accuracy(accelerator: str) -> ServingAccuracy | None:
    """The catalog accelerator's measured serving error, or None where the project has no measured runs."""
    return _table().get(accelerator)


def validated_accelerators() -> list[str]:
    """Accelerators with a row in the table."""
    return sorted(_table())
