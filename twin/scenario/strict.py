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

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r} (a boolean is not a number here)")
    return value


#: Largest magnitude of any float field. No quantity of a facility comes near it (a 10 GW campus
#: for 30 years is 1e19 J but 1e10 W and 1e9 s; the fastest accelerator 1e16 FLOP/s), while the
#: twin's products of two of them (losses ``P**2 / P_rated``, energies ``P t``) stay far inside
#: float64: ``other_facility_power_w=1e154`` overflowed to inf.
MAX_MAGNITUDE = 1e18


#: Smallest magnitude of a non-zero float field: a nanowatt, a nanosecond, a billionth of a
#: request per second. Nothing in a facility is meaningful below it, and its reciprocals stay
#: finite: ``requests_per_s=2.2e-308`` overflowed a division.
MIN_MAGNITUDE = 1e-9


def _not_huge(value: float) -> float:
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"expected a number of magnitude at most {MAX_MAGNITUDE:g}, got {value:g}")
    if value != 0.0 and abs(value) < MIN_MAGNITUDE:
        raise ValueError(f"expected 0 or a number of magnitude at least {MIN_MAGNITUDE:g}, got {value:g}")
    return value


#: An integer field that refuses booleans.
Int = Annotated[int, BeforeValidator(_not_bool)]
#: A float field that refuses booleans, magnitudes over :data:`MAX_MAGNITUDE` or between 0 and
#: :data:`MIN_MAGNITUDE` (and, in a :class:`StrictModel`, inf and NaN).
Float = Annotated[float, BeforeValidator(_not_bool), AfterValidator(_not_huge)]


class StrictModel(BaseModel):
    """Base model: unknown keys are errors, instances are immutable, floats are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Overrides(StrictModel):
    """Optional parameters that replace a preset's: a field left unset (None) keeps the preset's value.

    Written and dumped as ``{name: value}`` of the fields set, so a scenario's YAML holds only what
    it changes.
    """

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        """Dump the fields set, as written (``{name: value}``)."""
        return {k: v for k, v in handler(self).items() if v is not None}

    def given(self) -> dict[str, Any]:
        """The fields set, by name."""
        return {k: v for k, v in self if v is not None}
