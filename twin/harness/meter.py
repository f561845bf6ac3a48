"""Energy meters: one interface over NVML (GPU), RAPL (CPU package) and a labelled CPU model.

Every meter returns :class:`MeterReading` in SI units with energy cumulative since the meter was
created. ``energy_source`` says where the energy comes from:

``"nvml"``
    measured by the GPU board: ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the
    driver loaded, Volta or newer) rebased to the meter's first read; power from the
    ``NVML_FI_DEV_POWER_INSTANT`` field, or ``nvmlDeviceGetPowerUsage`` (milliwatts) where the
    driver lacks it. On GPUs without the counter the power samples are integrated (trapezoid)
    and ``note`` says so.
``"rapl"``
    measured by the CPU: ``/sys/class/powercap/intel-rapl:*/energy_uj`` (microjoules, wrapping
    at ``max_energy_range_uj``). CPU packages (and DRAM where exposed) only, not the machine.
``"estimated"``
    **not measured**: power is a model of CPU utilisation, ``P = P_idle + (P_max - P_idle) u``,
    with the parameters and their source in :class:`CpuPowerModel`.

The meters live in :mod:`twin.harness.nvml` (GPU) and :mod:`twin.harness.cpu` (RAPL and the
model), which import this module; :func:`twin.harness.run.auto_meter` picks one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

NAN = float("nan")

#: Energy sources a meter can report.
ENERGY_SOURCES: tuple[str, ...] = ("nvml", "rapl", "estimated")
#: Where Linux exposes RAPL.
POWERCAP_ROOT = Path("/sys/class/powercap")

Clock = Callable[[], float]


@dataclass(frozen=True)
class MeterReading:
    """One sample of a meter.

    Attributes
    ----------
    time_s : float
        Clock reading when the sample was taken (monotonic; only differences matter) [s].
    power_w : float
        Power draw [W]: NVML's instantaneous field where the driver has it, else
        ``nvmlDeviceGetPowerUsage`` (a 1 s average on Ampere and newer); for RAPL and the
        estimate the mean since the previous read.
    energy_j : float
        Energy since the meter was created [J].
    utilization, memory_utilization : float
        Fractions 0..1 (NaN if the meter has none).
    temperature_c : float
        Die or package temperature [C] (NaN if absent).
    sm_clock_hz, mem_clock_hz : float
        Core and memory clocks [Hz] (NaN if absent).
    power_limit_w : float
        Enforced power limit [W] (NaN if absent).
    """

    time_s: float
    power_w: float
    energy_j: float
    utilization: float = NAN
    memory_utilization: float = NAN
    temperature_c: float = NAN
    sm_clock_hz: float = NAN
    mem_clock_hz: float = NAN
    power_limit_w: float = NAN


class EnergyMeter(Protocol):
    """What the sampler and the harness need from a meter."""

    energy_source: str
    device_name: str
    note: str

    def read(self) -> MeterReading:
        """Take one sample."""
        ...

    def set_power_limit(self, power_w: float) -> str:
        """Try to set a power cap; return ``"set"`` or why not (``"not permitted: ..."``)."""
        ...

    def restore_power_limit(self) -> None:
        """Put back the limit found when the meter was created, if it was changed."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts for the run summary (source, note, model parameters, ...)."""
        ...

    def close(self) -> None:
        """Release the device (restores the power limit)."""
        ...


class MeterBase:
    """Defaults for meters that cannot cap power and hold no device."""

    energy_source = ""
    device_name = ""
    note = ""

    def set_power_limit(self, power_w: float) -> str:
        """Refuse: this meter cannot set a power limit."""
        return f"not supported: the {self.energy_source} meter cannot set a power limit"

    def restore_power_limit(self) -> None:
        """Nothing to restore."""
        return None

    def describe(self) -> dict[str, Any]:
        """Source, device and note."""
        return {
            "energy_source": self.energy_source,
            "device_name": self.device_name,
            "energy_note": self.note,
        }

    def close(self) -> None:
        """Restore the power limit (nothing else to release)."""
        self.restore_power_limit()


__all__ = [
    "ENERGY_SOURCES",
    "POWERCAP_ROOT",
    "Clock",
    "EnergyMeter",
    "MeterBase",
    "MeterReading",
]
