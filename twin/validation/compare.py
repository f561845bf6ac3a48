"""Predicted against published: the relative error, the pass rule and one row of the table.

The error of a prediction ``p`` against a published point value ``v`` is ``(p - v) / |v|``.
Against a published range ``[lo, hi]`` (a spread of measurements, a one-sided bound written as
``(0, hi)``) it is 0 inside the range and the distance to the nearest end, relative to that end,
outside it: ``(p - hi) / |hi|`` above, ``(p - lo) / |lo|`` below. A case passes when
``|error| <= TOLERANCE``.

A published claim whose conditions are unknowable (a vendor figure that names no workload) is an
*order-of-magnitude check* instead (``magnitude_only``): it passes when the prediction lies within
a factor ``MAGNITUDE_FACTOR`` (√10, half a decade) of the value or range, it is shown with that
factor beside its relative error, and it is counted apart from the ±25 % cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Largest relative error a case may show and pass (the issue's target: within +-25 %).
TOLERANCE = 0.25
#: Largest factor between prediction and published value of an order-of-magnitude check (√10:
#: within half a decade, the same rounded order of magnitude).
MAGNITUDE_FACTOR = math.sqrt(10.0)

Published = float | tuple[float, float]


def relative_error(predicted: float, published: Published) -> float:
    """Relative error of ``predicted`` against a published value or range.

    Parameters
    ----------
    predicted : float
        The twin's value.
    published : float or (float, float)
        A point value, or a range ``(lo, hi)`` with ``lo <= hi``.

    Returns
    -------
    float
        Signed: positive when the twin is above the value (or above the range's top).

    Examples
    --------
    >>> round(relative_error(0.09, 0.12), 12)
    -0.25
    >>> relative_error(250.0, (137.0, 300.0)), relative_error(330.0, (137.0, 300.0))
    (0.0, 0.1)
    >>> relative_error(75.0, (0.0, 60.0))  # a bound "< 60 s"
    0.25
    """
    if isinstance(published, tuple):
        lo, hi = published
        if lo > hi:
            raise ValueError(f"published range must have lo <= hi, got {published}")
        if lo <= predicted <= hi:
            return 0.0
        end = hi if predicted > hi else lo
        scale = abs(end) if end != 0 else abs(hi if end == lo else lo)
        return (predicted - end) / scale
    if published == 0:
        raise ValueError("a published value of 0 has no relative error")
    return (predicted - published) / abs(published)


@dataclass(frozen=True)
class AnchorResult:
    """One published case set up from its stated conditions and run through the twin.

    Attributes
    ----------
    key : str
        Short identifier (``ml-energy-llama8b-h100``).
    quantity : str
        What is compared, in words.
    predicted : float
        The twin's value, in ``unit``.
    published : float or (float, float)
        The published value or range, in ``unit``.
    unit : str
        Unit of both values.
    source : str
        Where the published figure comes from (parameters.md entry and its source).
    conditions : str
        The published conditions and how the twin was set up to meet them.
    notes : str
        What a reader must know to judge the comparison (assumptions, sensitivities).
    miss_reason : str
        Why the twin misses, shown only when it does.
    fmt : str
        Format of the values for display.
    magnitude_only : bool
        An order-of-magnitude check (module docstring): the published conditions are unknowable,
        so the case passes within a factor :data:`MAGNITUDE_FACTOR` and is counted apart.
    """

    key: str
    quantity: str
    predicted: float
    published: Published
    unit: str
    source: str
    conditions: str
    notes: str = ""
    miss_reason: str = ""
    fmt: str = "{:.3g}"
    magnitude_only: bool = False

    @property
    def rel_error(self) -> float:
        """Relative error (see :func:`relative_error`)."""
        if not math.isfinite(self.predicted):
            return math.nan
        return relative_error(self.predicted, self.published)

    @property
    def factor(self) -> float:
        """Prediction over the published value, or over the nearest end of a range (1 inside it).

        For positive quantities (the order-of-magnitude checks): ``1 + rel_error``.

        Examples
        --------
        >>> AnchorResult("k", "q", 470.0, (95.0, 180.0), "u", "s", "c").factor
        2.611111111111111
        """
        return 1.0 + self.rel_error

    @property
    def passed(self) -> bool:
        """True when ``|rel_error| <= TOLERANCE`` (order-of-magnitude checks: within the factor)."""
        err = self.rel_error
        if not math.isfinite(err):
            return False
        if self.magnitude_only:
            return 1.0 / MAGNITUDE_FACTOR <= self.factor <= MAGNITUDE_FACTOR
        return abs(err) <= TOLERANCE + 1e-12

    @property
    def status(self) -> str:
        """``pass`` or ``miss``; ``order of magnitude`` for an order-of-magnitude check that passes."""
        if self.magnitude_only and self.passed:
            return "order of magnitude"
        return "pass" if self.passed else "miss"

    @property
    def published_text(self) -> str:
        """The published value or range as text."""
        if isinstance(self.published, tuple):
            lo, hi = self.published
            if lo == 0:
                return f"< {self.fmt.format(hi)}"
            return f"{self.fmt.format(lo)}–{self.fmt.format(hi)}"
        return self.fmt.format(self.published)

    @property
    def predicted_text(self) -> str:
        """The predicted value as text."""
        return self.fmt.format(self.predicted)

    @property
    def note_text(self) -> str:
        """Notes, with the reason for a miss first when the case misses."""
        if self.passed or not self.miss_reason:
            return self.notes
        return f"MISS: {self.miss_reason} {self.notes}".strip()

    def row(self) -> dict[str, Any]:
        """A flat record for CSV/JSON output (values as numbers, ranges split)."""
        lo, hi = self.published if isinstance(self.published, tuple) else (self.published, self.published)
        return {
            "key": self.key,
            "quantity": self.quantity,
            "predicted": self.predicted,
            "published": self.published_text,
            "published_low": lo,
            "published_high": hi,
            "unit": self.unit,
            "rel_error": self.rel_error,
            "check": "order of magnitude" if self.magnitude_only else f"±{100 * TOLERANCE:.0f} %",
            "factor": self.factor,
            "status": self.status,
            "source": self.source,
            "conditions": self.conditions,
            "notes": self.note_text,
        }


@dataclass(frozen=True)
class NotExpressible:
    """A published case the twin cannot set up honestly, and why.

    Attributes
    ----------
    key : str
        Short identifier.
    quantity : str
        The published figure, in words, with its value.
    source : str
        parameters.md entry and its source.
    reason : str
        What the twin lacks to express the stated conditions.
    """

    key: str
    quantity: str
    source: str
    reason: str

    def row(self) -> dict[str, Any]:
        """A flat record for CSV/JSON output."""
        return {
            "key": self.key,
            "quantity": self.quantity,
            "status": "not expressible",
            "source": self.source,
            "notes": self.reason,
        }


__all__ = ["MAGNITUDE_FACTOR", "TOLERANCE", "AnchorResult", "NotExpressible", "Published", "relative_error"]
