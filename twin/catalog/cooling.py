"""Built-in cooling-plant parameter sets: EnergyPlus electric-EIR chiller curves.

``chillers.yaml`` holds one entry per chiller of the EnergyPlus Chillers dataset (parameters.md
3.2), each with its source. :func:`chiller_curve` returns a frozen :class:`ChillerCurve`; an
unknown name raises :class:`~twin.errors.UnknownNameError` listing the valid names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any

import yaml

from twin.catalog import CATALOG_DIR
from twin.errors import TwinError, UnknownNameError

CHILLERS_FILE = CATALOG_DIR / "chillers.yaml"

#: Number of coefficients of each curve: biquadratic CAPFT/EIRFT, quadratic EIRFPLR.
_CURVE_LENGTHS = {"capft": 6, "eirft": 6, "eirfplr": 3}


@dataclass(frozen=True)
class ChillerCurve:
    """One chiller of the EnergyPlus ``Chiller:Electric:EIR`` model.

    Attributes
    ----------
    name : str
        Dataset name, e.g. ``"McQuay WSC 471kW/5.89COP/Vanes"``.
    q_ref_w : float
        Reference (rated) cooling capacity. [W]
    cop_ref : float
        Reference coefficient of performance. [W/W]
    t_chw_ref_c, t_cond_ref_c : float
        Reference leaving chilled-water and entering condenser-water temperatures. [C]
    capft, eirft : tuple of 6 floats
        Biquadratic coefficients a..f of capacity and EIR versus temperature.
    eirfplr : tuple of 3 floats
        Quadratic coefficients a, b, c of EIR versus part-load ratio.
    plr_min, plr_max : float
        Minimum part-load ratio (below it the chiller cycles) and maximum part-load ratio. [-]
    t_chw_min_c, t_chw_max_c, t_cond_min_c, t_cond_max_c : float
        Temperature ranges of the curve fit; inputs are clamped to them. [C]
    source : str
        Where the values come from.
    """

    name: str
    q_ref_w: float
    cop_ref: float
    t_chw_ref_c: float
    t_cond_ref_c: float
    capft: tuple[float, ...]
    eirft: tuple[float, ...]
    eirfplr: tuple[float, ...]
    plr_min: float
    plr_max: float
    t_chw_min_c: float
    t_chw_max_c: float
    t_cond_min_c: float
    t_cond_max_c: float
    source: str


def _parse_entry(name: str, entry: dict[str, Any]) -> ChillerCurve:
    wanted = [f.name for f in fields(ChillerCurve) if f.name != "name"]
    missing = [key for key in wanted if key not in entry]
    if missing:
        raise TwinError(f"{CHILLERS_FILE}: chiller {name!r} lacks {', '.join(missing)}")
    values: dict[str, Any] = {"name": name, "source": str(entry["source"])}
    for key in wanted:
        if key == "source":
            continue
        if key in _CURVE_LENGTHS:
            coeffs = tuple(float(v) for v in entry[key])
            if len(coeffs) != _CURVE_LENGTHS[key]:
                raise TwinError(
                    f"{CHILLERS_FILE}: chiller {name!r} {key} has {len(coeffs)} coefficients, "
                    f"expected {_CURVE_LENGTHS[key]}"
                )
            values[key] = coeffs
        else:
            values[key] = float(entry[key])
    return ChillerCurve(**values)


@cache
def _chillers() -> dict[str, ChillerCurve]:
    raw = yaml.safe_load(CHILLERS_FILE.read_text())
    return {name: _parse_entry(name, entry) for name, entry in raw.items()}


def chiller_names() -> list[str]:
    """Names of the built-in chillers."""
    return sorted(_chillers())


def chiller_curve(name: str) -> ChillerCurve:
    """Return the built-in chiller ``name`` (e.g. ``"McQuay WSC 471kW/5.89COP/Vanes"``).

    Examples
    --------
    >>> chiller_curve("McQuay WSC 471kW/5.89COP/Vanes").cop_ref
    5.89
    """
    try:
        return _chillers()[name]
    except KeyError:
        raise UnknownNameError("chiller", name, chiller_names()) from None


__all__ = ["CHILLERS_FILE", "ChillerCurve", "chiller_curve", "chiller_names"]
