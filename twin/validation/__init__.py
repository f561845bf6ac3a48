"""Fidelity: the twin against published measurements and against measured GPU telemetry.

- :mod:`twin.validation.anchors`: each published case of parameters.md section 7 set up from its
  stated conditions (:func:`run_anchors`), or listed as not expressible with the reason.
- :mod:`twin.validation.compare`: the relative error (0 inside a published range), the
  +-25 % pass rule, and the order-of-magnitude check for claims with unknowable conditions.
- :mod:`twin.validation.telemetry`: the accelerator power model against measured power,
  given measured utilisation and clock (mean absolute percentage error).
- :mod:`twin.validation.table`: the table as rich, Markdown, CSV or JSON.
"""

from twin.validation.anchors import ANCHORS, NOT_EXPRESSIBLE, run_anchors
from twin.validation.compare import MAGNITUDE_FACTOR, TOLERANCE, AnchorResult, NotExpressible, relative_error

__all__ = [
    "ANCHORS",
    "MAGNITUDE_FACTOR",
    "NOT_EXPRESSIBLE",
    "TOLERANCE",
    "AnchorResult",
    "NotExpressible",
    "relative_error",
    "run_anchors",
]
