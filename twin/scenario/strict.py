"""The base of every scenario model and its number types: no unknown keys, no inf or NaN, no booleans as numbers.

Decisions (issue 15):

* ``allow_inf_nan=False`` on :class:`StrictModel`: ``.inf`` and ``.nan`` are refused by every
  float field (a ``gt=0`` bound lets ``inf`` through, and ``nan`` passes every bound).
* A boolean is not a number: YAML ``true`` given to an :data:`Int` or :data:`Float` field
  (``fleet.rows: true``) is refused instead of being read as 1. Otherwise both keep pydantic's
  lax parsing: an int field takes ``2.0`` as 2 and refuses ``2.5``; a float field reads YAML's
  ``1e6`` (a string to PyYAML, whose floats need a dot).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r} (a boolean is not a number here)")
    return value


#: An integer field that refuses booleans.
Int = Annotated[int, BeforeValidator(_not_bool)]
#: A float field that refuses booleans (and, in a :class:`StrictModel`, inf and NaN).
Float = Annotated[float, BeforeValidator(_not_bool)]


class StrictModel(BaseModel):
    """Base model: unknown keys are errors, instances are immutable, floats are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
