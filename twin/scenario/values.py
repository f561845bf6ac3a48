"""A scenario as plain data, and the ``--set`` overrides between two scenarios.

:func:`plain` turns values into what YAML holds (ISO dates, paths as text); :func:`same` compares
values as an override would (numbers within :data:`SAME_RTOL`); :func:`diff` gives the dotted
overrides that turn one scenario (or sub-model) into another, field by field where that reads back.
The edits (:mod:`twin.scenario.edits`) and the ``--set`` rules (:mod:`twin.scenario.set_rules`)
build on them.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

#: Relative tolerance within which two numbers are the same value (float round-off of a rule).
SAME_RTOL = 1e-12

Data = dict[str, Any]


def spelt(value: Any) -> Any:
    """A model as a mapping of its set fields, its union tag (``kind``/``model``) always among them."""
    if isinstance(value, list):
        return [spelt(v) for v in value]
    if isinstance(value, BaseModel):
        out = value.model_dump(mode="python", exclude_unset=True)
        for tag in tags(type(value)):
            if tag not in out:
                out = {tag: getattr(value, tag), **out}
        return out
    return value


def plain(value: Any) -> Any:
    """``value`` as plain YAML data: datetimes and dates as ISO text, paths as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return datetime.combine(value, time()).isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Equal values, numbers within :data:`SAME_RTOL` (a bool is never a number here)."""
    if isinstance(a, BaseModel) and isinstance(b, BaseModel):
        return type(a) is type(b) and all(same(getattr(a, f), getattr(b, f)) for f in type(a).model_fields)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=SAME_RTOL, abs_tol=0.0)
    return bool(a == b)


def plain_spelt(value: Any) -> Any:
    """``value`` as plain data, a model as its set fields (:func:`spelt`)."""
    return plain(spelt(value))


def diff(base: BaseModel, edited: BaseModel, prefix: str = "") -> Data:
    """Dotted overrides that turn ``base`` into ``edited`` (both of one model class).

    A sub-model is compared field by field where the edit kept the fields it was given and its
    fields alone read back: the base's input gave it (so its path exists where the overrides are
    applied), or it needs no field and no union tag. Otherwise, and for a list whose length
    changed, the edited value is given whole (its set fields).
    """
    out: Data = {}
    for name, field in type(base).model_fields.items():
        if field.exclude:
            continue
        a, b = getattr(base, name), getattr(edited, name)
        if same(a, b):
            continue
        path = prefix + name
        if _comparable(a, b) and (name in base.model_fields_set or _from_leaves(type(a))):
            out |= diff(a, b, path + ".")
        elif name in base.model_fields_set and isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                if _comparable(x, y):
                    out |= diff(x, y, f"{path}.{i}.")
                elif not same(x, y):
                    out[f"{path}.{i}"] = plain_spelt(y)
        else:
            out[path] = plain_spelt(b)
    return out


def _from_leaves(cls: type[BaseModel]) -> bool:
    """Whether a mapping of any of ``cls``'s fields alone validates: no field required, no union tag."""
    return all(not f.is_required() for f in cls.model_fields.values()) and not tags(cls)


def tags(cls: type[BaseModel]) -> list[str]:
    """The union tags (``kind``, ``model``) among ``cls``'s fields."""
    return [tag for tag in ("kind", "model") if tag in cls.model_fields]


def _comparable(a: Any, b: Any) -> bool:
    return (
        isinstance(a, BaseModel)
        and type(a) is type(b)
        and b.model_fields_set >= a.model_fields_set  # the edit rebuilt it otherwise: give it whole
    )


def value_at(sc: BaseModel, path: str, whole: bool = True) -> Any:
    """The value at dotted ``path`` (``whole``: as plain data, a model as its set fields)."""
    node: Any = sc
    for key in path.split("."):
        node = node[int(key)] if isinstance(node, list) else getattr(node, key)
    return plain_spelt(node) if whole else node
