"""The energy ledger: every joule drawn is booked to exactly one category, per report interval.

``metered_j`` is what the utility meter (plus any generator) delivered; the categories are where it
went. The invariant ``metered_j == sum(categories)`` holds in every interval to ``rtol = 1e-9``
(:meth:`Ledger.check`); a run with ``debug=True`` checks it as it goes. A battery that discharges
books negative energy (``battery_net_j``): the load was met by stored energy, not by the meter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin._types import FloatArray
from twin.errors import TwinError

#: Categories every facility has, in report order (cooling components are added per plant).
BASE_CATEGORIES: tuple[str, ...] = (
    "accelerators",
    "server_other",
    "psu_loss",
    "pdu_loss",
    "ups_loss",
    "transformer_loss",
    "other_facility",
)
#: Categories that are IT load (the denominator of PUE).
IT_CATEGORIES: tuple[str, ...] = ("accelerators", "server_other")
#: Conversion-loss categories.
LOSS_CATEGORIES: tuple[str, ...] = ("psu_loss", "pdu_loss", "ups_loss", "transformer_loss")
#: What a reader calls each category (charts and tables); :func:`category_label` falls back on the name.
CATEGORY_LABELS: dict[str, str] = {
    "accelerators": "accelerators",
    "server_other": "other IT (CPU, memory, fans)",
    "psu_loss": "PSU loss",
    "pdu_loss": "PDU loss",
    "ups_loss": "UPS loss",
    "transformer_loss": "transformer loss",
    "other_facility": "other facility",
    "cooling_chiller": "chillers",
    "cooling_heat_rejection_fans": "tower / dry-cooler fans",
    "cooling_pumps": "facility water pumps",
    "cooling_cdu_pumps": "CDU pumps",
    "cooling_crah_fans": "CRAH fans",
    "battery_net": "UPS battery (net charge)",
}


def category_label(category: str) -> str:
    """A ledger category as words (``ups_loss`` -> ``UPS loss``); an unknown one with spaces for ``_``."""
    return CATEGORY_LABELS.get(category, category.replace("_", " "))


class LedgerImbalanceError(TwinError):
    """The booked energy does not add up to the metered energy."""


class Ledger:
    """Preallocated per-interval energy accounts.

    Parameters
    ----------
    n_intervals : int
        Report intervals in the run.
    categories : sequence of str
        Booking categories (without the ``_j`` suffix).
    """

    def __init__(self, n_intervals: int, categories: tuple[str, ...]) -> None:
        self.categories = tuple(categories)
        self._index = {c: i for i, c in enumerate(self.categories)}
        self.booked_j = np.zeros((n_intervals, len(self.categories)))
        self.metered_j = np.zeros(n_intervals)

    def book(self, interval: int, category: str, energy_j: float) -> None:
        """Add ``energy_j`` to ``category`` in ``interval``."""
        self.booked_j[interval, self._index[category]] += energy_j

    def meter(self, interval: int, energy_j: float) -> None:
        """Add metered input energy in ``interval``."""
        self.metered_j[interval] += energy_j

    def book_rows(self, first: int, category: str, energy_j: FloatArray) -> None:
        """Add ``energy_j[i]`` to ``category`` in interval ``first + i``."""
        self.booked_j[first : first + len(energy_j), self._index[category]] += energy_j

    def meter_rows(self, first: int, energy_j: FloatArray) -> None:
        """Add metered input ``energy_j[i]`` in interval ``first + i``."""
        self.metered_j[first : first + len(energy_j)] += energy_j

    def residual_j(self) -> FloatArray:
        """Metered minus booked energy per interval. [J]"""
        return np.asarray(self.metered_j - self.booked_j.sum(axis=1))

    def check(self, rtol: float = 1e-9, upto: int | None = None) -> None:
        """Raise :class:`LedgerImbalanceError` if any interval does not balance to ``rtol``.

        The tolerance is relative to the larger of the metered energy and the gross bookings, so an
        interval carried by the battery (metered near zero, categories cancelling ``battery_net``)
        is held to the rounding of the energies actually booked.
        """
        res = self.residual_j()[:upto]
        gross = np.abs(self.booked_j[:upto]).sum(axis=1)
        scale = np.maximum(np.maximum(np.abs(self.metered_j[:upto]), gross), 1.0)
        bad = np.flatnonzero(np.abs(res) > rtol * scale)
        if bad.size:
            i = int(bad[0])
            raise LedgerImbalanceError(
                f"interval {i}: metered {self.metered_j[i]:.6e} J but booked "
                f"{self.booked_j[i].sum():.6e} J (residual {res[i]:.3e} J)"
            )

    def frame(self, time_s: FloatArray) -> pd.DataFrame:
        """Per-interval accounts as a DataFrame with ``_j`` columns."""
        data = {"time_s": time_s, "metered_j": self.metered_j}
        data.update({f"{c}_j": self.booked_j[:, i] for i, c in enumerate(self.categories)})
        data["residual_j"] = self.residual_j()
        return pd.DataFrame(data)
