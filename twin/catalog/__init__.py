"""Built-in parameter sets, each value with its unit and source.

Tables are long-format CSV (``name, parameter, value, unit, source``) after PyPSA's component
tables; rows under the name ``*`` apply to every entry unless the entry overrides them. Loss curves
are YAML. Models are Hugging Face ``config.json`` files in ``architectures/`` (read by
:mod:`twin.catalog.architecture`), with short names in ``models.yaml``. The loaders return
frozen dataclasses; an unknown name raises
:class:`~twin.errors.UnknownNameError` listing the valid names.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from twin.catalog.architecture import Architecture, load_architecture
from twin.errors import TwinError, UnknownNameError
from twin.physics.accelerator import AcceleratorPowerParams
from twin.physics.silicon import DieResponseParams

CATALOG_DIR = Path(__file__).parent


#: Accelerator parameters that must be strictly positive (a device without them does nothing).
_POSITIVE = frozenset(
    (
        "max_power_w",
        "hbm_bytes",
        "hbm_bandwidth_b_s",
        "bf16_flop_s",
        "fp8_flop_s",
        "die_time_constant_s",
        "leakage_doubling_k",
        "boost_bin_k",
    )
)


@dataclass(frozen=True)
class AcceleratorSpec:
    """One accelerator SKU. Units are in the field names (see ``accelerators.csv`` for sources)."""

    name: str
    max_power_w: float
    full_power_w: float
    idle_power_w: float
    hbm_bytes: float
    hbm_bandwidth_b_s: float
    bf16_flop_s: float
    fp8_flop_s: float
    power_cap_min_w: float
    power_cap_max_w: float
    slowdown_temp_c: float
    shutdown_temp_c: float
    max_operating_temp_c: float
    static_power_fraction: float
    mem_power_fraction: float
    uncore_power_fraction: float
    clock_exponent: float
    voltage_floor_fraction: float
    min_clock_fraction: float
    thermal_resistance_liquid_k_w: float
    thermal_resistance_air_k_w: float
    die_time_constant_s: float
    leakage_power_fraction: float
    leakage_ref_temp_c: float
    leakage_doubling_k: float
    fit_inlet_temp_c: float
    fit_die_rise_k: float
    boost_bin_fraction: float
    boost_bin_k: float
    boost_bin_start_temp_c: float
    achieved_bandwidth_fraction: float
    achieved_kv_bandwidth_fraction: float
    achieved_expert_bandwidth_fraction: float
    achieved_block_fp8_expert_bandwidth_fraction: float
    achieved_mxfp4_expert_bandwidth_fraction: float
    block_fp8_expert_sm_activity: float
    achieved_flop_fraction: float
    achieved_expert_flop_fraction: float
    roofline_exponent: float
    expert_routing_skew: float
    step_overhead_s: float
    gap_power_fraction: float
    step_overhead_per_sequence_s: float
    link_bandwidth_b_s: float
    achieved_link_fraction: float
    link_latency_s: float

    def __post_init__(self) -> None:
        """Refuse parameters no device has (``max_power_w=-5`` from an override ran on)."""
        bad = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name":
                continue
            if not math.isfinite(value):
                bad.append(f"{f.name} = {value} is not a finite number")
            elif value < 0 and not f.name.endswith("_temp_c"):
                bad.append(f"{f.name} = {value:g} is negative")
            elif value <= 0 and f.name in _POSITIVE:
                bad.append(f"{f.name} = {value:g} must be > 0")
            elif f.name.endswith("_fraction") and value > 1:
                bad.append(f"{f.name} = {value:g} is a fraction, at most 1")
        shares = self.static_power_fraction + self.mem_power_fraction + self.uncore_power_fraction
        if not bad and shares > 1.0 + 1e-9:
            bad.append(
                f"static_power_fraction + mem_power_fraction + uncore_power_fraction = {shares:g}: shares of one"
                " dynamic range, at most 1 together"
            )
        if not bad and self.idle_power_w > self.max_power_w:
            bad.append(f"idle_power_w ({self.idle_power_w:g}) exceeds max_power_w ({self.max_power_w:g})")
        if not bad and self.slowdown_temp_c >= self.shutdown_temp_c:
            bad.append(f"slowdown_temp_c ({self.slowdown_temp_c:g}) must be below shutdown_temp_c")
        if bad:
            raise ValueError(f"accelerator {self.name!r}: " + "; ".join(bad))

    @property
    def power_params(self) -> AcceleratorPowerParams:
        """The power model's coefficients of this SKU (:mod:`twin.physics.accelerator`)."""
        return AcceleratorPowerParams(**{f.name: getattr(self, f.name) for f in fields(AcceleratorPowerParams)})

    @property
    def die_params(self) -> DieResponseParams:
        """The die's leakage and boost-bin response (:mod:`twin.physics.silicon`).

        Leakage at its reference temperature is ``leakage_power_fraction`` of the power limit; the
        power model was measured on air-cooled boards whose die sat ``fit_die_rise_k`` above their
        inlet at the power limit.
        """
        return DieResponseParams(
            leakage_ref_power_w=self.leakage_power_fraction * self.max_power_w,
            leakage_ref_temp_c=self.leakage_ref_temp_c,
            leakage_doubling_k=self.leakage_doubling_k,
            fit_inlet_temp_c=self.fit_inlet_temp_c,
            fit_thermal_resistance_k_w=self.fit_die_rise_k / self.max_power_w,
            boost_bin_fraction=self.boost_bin_fraction,
            boost_bin_k=self.boost_bin_k,
            boost_bin_start_temp_c=self.boost_bin_start_temp_c,
            min_clock_fraction=self.min_clock_fraction,
        )

    @property
    def sm_power_fraction(self) -> float:
        """Share of the dynamic range drawn by the SMs at full activity and boost clock."""
        return 1.0 - self.static_power_fraction - self.mem_power_fraction - self.uncore_power_fraction

    def with_overrides(self, **values: float) -> AcceleratorSpec:
        """Return a copy with some parameters replaced (unknown keys raise ``UnknownNameError``)."""
        valid = {f.name for f in fields(self)} - {"name"}
        for key in values:
            if key not in valid:
                raise UnknownNameError("accelerator parameter", key, sorted(valid))
        return replace(self, **values)  # type: ignore[arg-type]  # every overridable field is a float


@dataclass(frozen=True)
class LossCurve:
    """A conversion-stage loss curve (``loss_curves.yaml``)."""

    name: str
    kind: str
    a: float = 0.0
    b: float = 0.0
    c: float = 0.0
    load_fraction: tuple[float, ...] = ()
    efficiency: tuple[float, ...] = ()
    source: str = ""


def _read_long_csv(path: Path, key: str) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    with path.open(newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            try:
                value = float(row["value"])
            except (TypeError, ValueError) as exc:
                raise TwinError(f"{path}, line {lineno}: value {row['value']!r} is not a number") from exc
            table.setdefault(row[key], {})[row["parameter"]] = value
    return table


def _build(cls: type, name: str, params: dict[str, Any], source: str) -> Any:
    names = [f.name for f in fields(cls) if f.name != "name"]
    missing = [n for n in names if n not in params]
    if missing:
        raise TwinError(f"{source}: entry {name!r} lacks {', '.join(missing)}")
    return cls(name=name, **{n: float(params[n]) for n in names})


@cache
def _accelerators() -> dict[str, AcceleratorSpec]:
    path = CATALOG_DIR / "accelerators.csv"
    table = _read_long_csv(path, "accelerator")
    common = table.pop("*", {})
    return {name: _build(AcceleratorSpec, name, {**common, **params}, str(path)) for name, params in table.items()}


@cache
def accelerator_units() -> dict[str, str]:
    """Unit of each accelerator parameter, as ``accelerators.csv`` gives it (``1``: dimensionless)."""
    with (CATALOG_DIR / "accelerators.csv").open(newline="") as fh:
        return {row["parameter"]: row["unit"] for row in csv.DictReader(fh)}


@cache
def _model_aliases() -> dict[str, str]:
    raw = yaml.safe_load((CATALOG_DIR / "models.yaml").read_text()) or {}
    return {str(k): str(v) for k, v in raw.items()}


@cache
def _loss_curves() -> dict[str, LossCurve]:
    raw = yaml.safe_load((CATALOG_DIR / "loss_curves.yaml").read_text())
    out = {}
    for name, entry in raw.items():
        entry = dict(entry)
        for key in ("load_fraction", "efficiency"):
            if key in entry:
                entry[key] = tuple(float(v) for v in entry[key])
        out[name] = LossCurve(name=name, **entry)
    return out


def accelerator_names() -> list[str]:
    """Names of the built-in accelerators."""
    return sorted(_accelerators())


def accelerator_spec(name: str) -> AcceleratorSpec:
    """Return the built-in accelerator ``name`` (e.g. ``"H100-SXM"``)."""
    try:
        return _accelerators()[name]
    except KeyError:
        raise UnknownNameError("accelerator", name, accelerator_names()) from None


def accelerator_from_mapping(name: str, values: dict[str, Any], source: str) -> AcceleratorSpec:
    """Build an accelerator from a mapping (a calibration file); unset model fields use defaults."""
    common = _read_long_csv(CATALOG_DIR / "accelerators.csv", "accelerator").get("*", {})
    return _build(AcceleratorSpec, name, {**common, **values}, source)


def model_names() -> list[str]:
    """Short names of the catalog's LLMs (``models.yaml``)."""
    return sorted(_model_aliases())


def model_config_id(name: str) -> str:
    """The Hugging Face id a catalog name stands for (e.g. ``Llama-3.1-8B``)."""
    try:
        return _model_aliases()[name]
    except KeyError:
        raise UnknownNameError("model", name, model_names()) from None


def catalog_model_architecture(name: str) -> Architecture:
    """The architecture of the catalog model ``name`` (its shipped config, under the short name)."""
    return replace(load_architecture(model_config_id(name)), name=name)


def model_spec(name: str) -> Architecture:
    """The architecture of a model: a catalog name, a shipped Hugging Face id or a config path.

    Raises :class:`~twin.errors.UnknownNameError` listing the valid names.
    """
    return load_architecture(name)


def loss_curve_names() -> list[str]:
    """Names of the built-in loss curves."""
    return sorted(_loss_curves())


def loss_curve(name: str) -> LossCurve:
    """Return the built-in loss curve ``name`` (e.g. ``"ups-double-conversion"``)."""
    try:
        return _loss_curves()[name]
    except KeyError:
        raise UnknownNameError("loss curve", name, loss_curve_names()) from None


__all__ = [
    "AcceleratorSpec",
    "Architecture",
    "LossCurve",
    "accelerator_from_mapping",
    "accelerator_names",
    "accelerator_spec",
    "accelerator_units",
    "catalog_model_architecture",
    "loss_curve",
    "loss_curve_names",
    "model_config_id",
    "model_names",
    "model_spec",
]
