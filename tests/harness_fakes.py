"""Test doubles for the harness: a fake NVML binding and a fake RAPL sysfs tree."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace


class FakeNvml:
    """Stand-in for ``pynvml`` with the functions, constants and errors the harness uses.

    Power is ``power_mw`` milliwatts; the energy counter starts at ``energy0_mj`` and, when
    ``tick`` is true, grows with the clock as ``power_mw * elapsed_s`` millijoules (mW x s = mJ),
    otherwise it is whatever ``energy_mj`` holds. ``instant_power_mw`` is what the field
    ``NVML_FI_DEV_POWER_INSTANT`` returns (as ``instant_value_type``: 1 unsigned int, 5 signed
    int, 0 double); None makes the field unsupported, as on drivers that lack it.
    ``restore_fails`` makes every limit change after the first refuse.
    """

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_SUCCESS = 0
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_FI_DEV_POWER_INSTANT = 186

    class NVMLError(Exception):
        pass

    class NVMLError_NoPermission(NVMLError):
        def __str__(self) -> str:
            return "Insufficient Permissions"

    class NVMLError_NotSupported(NVMLError):
        def __str__(self) -> str:
            return "Not Supported"

    def __init__(
        self,
        power_mw: int = 250_000,
        energy0_mj: int = 987_654_321,
        tick: bool = False,
        allow_set_limit: bool = False,
        energy_counter: bool = True,
        clock=time.monotonic,
        instant_power_mw: float | None = None,
        instant_value_type: int = 1,
        restore_fails: bool = False,
    ) -> None:
        self.instant_power_mw = instant_power_mw
        self.instant_value_type = instant_value_type
        self.restore_fails = restore_fails
        self.handles: list[object] = []
        self.power_mw = power_mw
        self.energy_mj = energy0_mj
        self.tick = tick
        self.allow_set_limit = allow_set_limit
        self.energy_counter = energy_counter
        self.clock = clock
        self.t0 = clock()
        self.limit_mw = 700_000
        self.set_calls: list[int] = []
        self.util = SimpleNamespace(gpu=87, memory=42)
        self.initialised = False

    def nvmlInit(self) -> None:
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        self.handles.append(index)
        return f"gpu{index}"

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        self.handles.append(uuid)
        return f"gpu-{uuid}"

    def nvmlDeviceGetFieldValues(self, handle: str, field_ids: list[int]) -> list[SimpleNamespace]:
        out = []
        for field in field_ids:
            ok = field == self.NVML_FI_DEV_POWER_INSTANT and self.instant_power_mw is not None
            member = {0: "dVal", 1: "uiVal", 5: "siVal"}[self.instant_value_type]
            value = SimpleNamespace(**{member: self.instant_power_mw if ok else 0})
            out.append(
                SimpleNamespace(
                    fieldId=field,
                    nvmlReturn=self.NVML_SUCCESS if ok else self.NVML_ERROR_NOT_SUPPORTED,
                    valueType=self.instant_value_type,
                    value=value,
                )
            )
        return out

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"Fake H100 80GB HBM3"

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return self.power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        if not self.energy_counter:
            raise self.NVMLError_NotSupported()
        if self.tick:
            return self.energy_mj + round(self.power_mw * (self.clock() - self.t0))
        return self.energy_mj

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> SimpleNamespace:
        return self.util

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 61

    def nvmlDeviceGetClockInfo(self, handle: str, kind: int) -> int:
        return {self.NVML_CLOCK_SM: 1980, self.NVML_CLOCK_MEM: 2619}[kind]

    def nvmlDeviceGetPowerManagementLimit(self, handle: str) -> int:
        return self.limit_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: str) -> int:
        return self.limit_mw

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: str) -> list[int]:
        return [200_000, 700_000]

    def nvmlDeviceSetPowerManagementLimit(self, handle: str, limit_mw: int) -> None:
        if not self.allow_set_limit or (self.restore_fails and self.set_calls):
            raise self.NVMLError_NoPermission()
        self.set_calls.append(limit_mw)
        self.limit_mw = limit_mw


def make_rapl_tree(root: Path, zones: dict[str, tuple[str, int, int]]) -> Path:
    """Write a fake ``/sys/class/powercap``: ``{dir: (name, energy_uj, max_energy_range_uj)}``."""
    for dirname, (name, energy, max_range) in zones.items():
        zone = root / dirname
        zone.mkdir(parents=True)
        (zone / "name").write_text(name + "\n")
        (zone / "energy_uj").write_text(f"{energy}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    return root


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt
