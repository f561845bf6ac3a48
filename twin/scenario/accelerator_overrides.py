"""``fleet.accelerator_overrides``: accelerator parameters that replace the catalog's.

One optional field per parameter of :class:`twin.catalog.AcceleratorSpec`, generated from the
dataclass, so a parameter added to the catalog can be overridden without an edit here; each
field carries the unit ``twin/catalog/accelerators.csv`` gives it. Unset fields keep the catalog
value. The bounds are the spec's own (:meth:`AcceleratorSpec.__post_init__` refuses a negative
power or a fraction over 1 when the facility is built, so ``twin validate`` refuses it too).
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from pydantic import Field, create_model

from twin.catalog import AcceleratorSpec, accelerator_units
from twin.scenario.strict import Float, Overrides


def _fields() -> dict[str, Any]:
    units = accelerator_units()
    out: dict[str, Any] = {}
    for f in fields(AcceleratorSpec):
        if f.name == "name":
            continue
        unit = units.get(f.name)
        shown = "-" if unit in (None, "1") else unit
        out[f.name] = (
            Float | None,
            Field(
                None,
                description=f"Replaces the catalog's {f.name} (twin/catalog/accelerators.csv). [{shown}]",
                json_schema_extra={"unit": unit} if unit is not None else None,
            ),
        )
    return out


if TYPE_CHECKING:  # the fields exist only at run time (one per AcceleratorSpec parameter)
    AcceleratorOverrides = Overrides
else:
    AcceleratorOverrides = create_model(
        "AcceleratorOverrides",
        __base__=Overrides,
        __doc__="Accelerator parameters that replace the catalog's (see :class:`twin.catalog.AcceleratorSpec`).",
        __module__=__name__,
        **_fields(),
    )
