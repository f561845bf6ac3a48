"""GPU meter through NVML (nvidia-ml-py, ``import pynvml``), and Zeus windows as a cross-check.

The NVML binding is injected (``nvml=``): the ``pynvml`` module by default, in tests any object
with the same functions, ``NVML_*`` constants and ``NVMLError`` classes. Units at the edge (NVML
API reference, docs.nvidia.com/deploy/nvml-api): power and limits in milliwatts, the energy
counter in millijoules since the driver loaded (Volta and newer; it updates every 20-100 ms, so
windows should last well over 100 ms), clocks in megahertz, utilisation in percent over the
driver's last sample period (1/6 s to 1 s).

Power samples: ``nvmlDeviceGetPowerUsage`` returns a 1 s average on Ampere (except GA100) and
newer GPUs, instantaneous power on older ones (NVML reference). The meter therefore asks for the
field ``NVML_FI_DEV_POWER_INSTANT`` through ``nvmlDeviceGetFieldValues`` first, as Zeus does, and
falls back to ``nvmlDeviceGetPowerUsage`` where the driver does not support it; ``describe()``
says which. Energy always comes from the counter, never from the power samples, where the board
has one. Setting a power limit (``nvmlDeviceSetPowerManagementLimit``, milliwatts) needs root;
the limit found at start is put back afterwards.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from twin.harness import HarnessError
from twin.harness.meter import NAN, Clock, MeterBase, MeterReading

#: NVML value types (``NVML_VALUE_TYPE_*``) -> the ``c_nvmlValue_t`` member holding the value.
_VALUE_MEMBER: dict[int, str] = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
#: ``NVML_FI_DEV_POWER_INSTANT`` (nvml.h), for bindings that lack the constant.
_FI_DEV_POWER_INSTANT = 186


def _nvml_error_class(nvml: Any, name: str) -> type[BaseException]:
    cls = getattr(nvml, name, None) or nvml.NVMLError
    return cls  # type: ignore[no-any-return]


class NvmlMeter(MeterBase):
    """GPU power, energy, utilisation, temperature, clocks and power limit through NVML.

    Parameters
    ----------
    index : int or str
        NVML device index (NVML numbers all GPUs, ignoring ``CUDA_VISIBLE_DEVICES``; see
        :func:`nvml_index_of_cuda_device`), or a device UUID (``GPU-...``).
    nvml : module or object, optional
        The NVML binding: ``pynvml`` from nvidia-ml-py by default. It must provide the
        ``nvml*`` functions used here, ``NVMLError`` and the ``NVML_*`` constants.
    clock : callable
        Monotonic clock [s].
    """

    energy_source = "nvml"

    def __init__(self, index: int | str = 0, nvml: Any = None, clock: Clock = time.monotonic) -> None:
        if nvml is None:
            try:
                import pynvml  # nvidia-ml-py
            except ImportError as exc:
                raise HarnessError("nvidia-ml-py is not installed: pip install 'ai-factory-twin[harness]'") from exc
            nvml = pynvml
        self._nvml = nvml
        self._clock = clock
        try:
            nvml.nvmlInit()
            if isinstance(index, str):
                self._handle = nvml.nvmlDeviceGetHandleByUUID(index)
            else:
                self._handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(self._handle)
        except nvml.NVMLError as exc:
            raise HarnessError(f"NVML unavailable for GPU {index}: {exc}") from exc
        self.index = index
        self.device_name = name.decode() if isinstance(name, bytes) else str(name)
        self._energy0_mj = self._query(nvml.nvmlDeviceGetTotalEnergyConsumption)
        self._has_counter = math.isfinite(self._energy0_mj)
        self._default_limit_mw = self._query(nvml.nvmlDeviceGetPowerManagementLimit)
        self._limit_changed = False
        self._integrated_j = 0.0
        self._last_power: tuple[float, float] | None = None
        self._instant = math.isfinite(self._instant_power_mw())
        self.power_reading = (
            "NVML_FI_DEV_POWER_INSTANT (instantaneous)"
            if self._instant
            else "nvmlDeviceGetPowerUsage (a 1 s average on Ampere except GA100 and newer, instantaneous before)"
        )
        self.note = (
            "measured by NVML: board energy counter (mJ, rebased to the first sample)"
            if self._has_counter
            else "measured by NVML: power samples integrated over time (this GPU has no energy counter)"
        )

    def _instant_power_mw(self) -> float:
        """Instantaneous board power from the field API [mW]; NaN where unsupported."""
        nvml = self._nvml
        get = getattr(nvml, "nvmlDeviceGetFieldValues", None)
        if get is None:
            return NAN
        field = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", _FI_DEV_POWER_INSTANT)
        try:
            value = get(self._handle, [field])[0]
        except nvml.NVMLError:
            return NAN
        member = _VALUE_MEMBER.get(int(value.valueType))
        if value.nvmlReturn != getattr(nvml, "NVML_SUCCESS", 0) or member is None:
            return NAN
        return float(getattr(value.value, member))

    def _power_mw(self) -> float:
        if self._instant:
            power = self._instant_power_mw()
            if math.isfinite(power):
                return power
        return self._query(self._nvml.nvmlDeviceGetPowerUsage)

    def _query(self, fn: Callable[..., Any], *args: Any) -> float:
        """Call an NVML query; NaN when the device does not support it."""
        try:
            return float(fn(self._handle, *args))
        except self._nvml.NVMLError:
            return NAN

    def read(self) -> MeterReading:
        """One sample, converted to SI (W, J, Hz, fractions)."""
        nvml = self._nvml
        now = self._clock()
        power_w = self._power_mw() / 1e3
        if self._has_counter:
            energy_j = (self._query(nvml.nvmlDeviceGetTotalEnergyConsumption) - self._energy0_mj) / 1e3
        else:
            if self._last_power is not None and math.isfinite(power_w):
                t0, p0 = self._last_power
                self._integrated_j += 0.5 * (p0 + power_w) * (now - t0)
            if math.isfinite(power_w):
                self._last_power = (now, power_w)
            energy_j = self._integrated_j
        try:
            rates = nvml.nvmlDeviceGetUtilizationRates(self._handle)
            util, mem_util = rates.gpu / 100.0, rates.memory / 100.0
        except nvml.NVMLError:
            util = mem_util = NAN
        limit_mw = self._query(nvml.nvmlDeviceGetEnforcedPowerLimit)
        if not math.isfinite(limit_mw):
            limit_mw = self._query(nvml.nvmlDeviceGetPowerManagementLimit)
        return MeterReading(
            time_s=now,
            power_w=power_w,
            energy_j=energy_j,
            utilization=util,
            memory_utilization=mem_util,
            temperature_c=self._query(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU),
            sm_clock_hz=self._query(nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_SM) * 1e6,
            mem_clock_hz=self._query(nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_MEM) * 1e6,
            power_limit_w=limit_mw / 1e3,
        )

    def power_limit_range_w(self) -> tuple[float, float]:
        """Lowest and highest power limit the board accepts [W] (NaN if unknown)."""
        try:
            lo, hi = self._nvml.nvmlDeviceGetPowerManagementLimitConstraints(self._handle)
        except self._nvml.NVMLError:
            return NAN, NAN
        return lo / 1e3, hi / 1e3

    def set_power_limit(self, power_w: float) -> str:
        """Set the board power limit (needs root); return ``"set"`` or why not.

        Raises
        ------
        HarnessError
            If ``power_w`` lies outside the board's accepted range.
        """
        lo, hi = self.power_limit_range_w()
        if math.isfinite(lo) and not lo <= power_w <= hi:
            raise HarnessError(f"power limit {power_w:g} W is outside this GPU's range {lo:g}-{hi:g} W")
        no_permission = _nvml_error_class(self._nvml, "NVMLError_NoPermission")
        not_supported = _nvml_error_class(self._nvml, "NVMLError_NotSupported")
        try:
            self._nvml.nvmlDeviceSetPowerManagementLimit(self._handle, round(power_w * 1e3))
        except no_permission as exc:
            return f"not permitted: setting a GPU power limit needs root (NVML: {exc})"
        except not_supported as exc:
            return f"not supported: this GPU does not accept power limits (NVML: {exc})"
        except self._nvml.NVMLError as exc:
            return f"not permitted: NVML refused the power limit ({exc})"
        self._limit_changed = True
        return "set"

    def restore_power_limit(self) -> None:
        """Put back the limit found at start, if :meth:`set_power_limit` changed it.

        Raises
        ------
        HarnessError
            If NVML refuses, with the ``nvidia-smi`` command that restores the limit by hand.
        """
        if self._limit_changed and math.isfinite(self._default_limit_mw):
            try:
                self._nvml.nvmlDeviceSetPowerManagementLimit(self._handle, round(self._default_limit_mw))
            except self._nvml.NVMLError as exc:
                raise HarnessError(
                    f"could not restore GPU {self.index}'s power limit to {self._default_limit_mw / 1e3:g} W "
                    f"(NVML: {exc}); restore it with: sudo nvidia-smi -i {self.index} -pl "
                    f"{self._default_limit_mw / 1e3:g}"
                ) from exc
            self._limit_changed = False

    def describe(self) -> dict[str, Any]:
        """Source, note, NVML index and the board's power limit range."""
        lo, hi = self.power_limit_range_w()
        return {
            **super().describe(),
            "nvml_index": self.index,
            "energy_counter": self._has_counter,
            "power_reading": self.power_reading,
            "power_limit_min_w": lo,
            "power_limit_max_w": hi,
            "power_limit_default_w": self._default_limit_mw / 1e3,
        }

    def close(self) -> None:
        """Restore the power limit and shut NVML down."""
        try:
            self.restore_power_limit()
        finally:
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()


def nvml_index_of_cuda_device(cuda_index: int, env: Mapping[str, str] | None = None) -> int | str:
    """NVML index (or UUID) of CUDA device ``cuda_index``, following ``CUDA_VISIBLE_DEVICES``.

    A numeric entry is an NVML index, a ``GPU-...`` entry a UUID that NVML looks up directly.
    Without the variable the CUDA index is taken as the NVML index: CUDA enumerates fastest
    first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, NVML in PCI order, so on a machine with mixed
    GPU models set that variable (the harness notes a device-name mismatch).

    Examples
    --------
    >>> nvml_index_of_cuda_device(1, {"CUDA_VISIBLE_DEVICES": "2,3"})
    3
    >>> nvml_index_of_cuda_device(0, {"CUDA_VISIBLE_DEVICES": "GPU-8a1c,GPU-77f0"})
    'GPU-8a1c'
    >>> nvml_index_of_cuda_device(0, {})
    0
    """
    visible = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES", "").strip()
    if not visible:
        return cuda_index
    parts = [p.strip() for p in visible.split(",")]
    if cuda_index < len(parts):
        part = parts[cuda_index]
        if part.isdigit():
            return int(part)
        if part.startswith("GPU-"):
            return part
    return cuda_index  # MIG names: assume the order matches


class ZeusWindows:
    """Per-phase GPU energy from Zeus's ``ZeusMonitor``, a cross-check of the NVML sampler.

    Zeus is optional: when it is missing or fails, the windows do nothing and ``problems`` says
    why, so a cross-check never stops a run.

    Parameters
    ----------
    cuda_index : int or None
        CUDA device index (Zeus follows ``CUDA_VISIBLE_DEVICES``); None disables the windows.
    """

    def __init__(self, cuda_index: int | None) -> None:
        self.energy_j: dict[str, float] = {}
        self.problems: list[str] = []
        self._monitor: Any = None
        if cuda_index is None:
            return
        try:
            from zeus.monitor import ZeusMonitor

            self._monitor = ZeusMonitor(gpu_indices=[cuda_index], sync_execution_with="torch")
        except Exception as exc:
            self.problems.append(f"Zeus windows unavailable: {exc}")

    def begin(self, key: str) -> None:
        """Open window ``key`` (Zeus synchronises CUDA first)."""
        if self._monitor is not None:
            try:
                self._monitor.begin_window(key)
            except Exception as exc:
                self.problems.append(f"Zeus window {key!r} failed to open: {exc}")

    def end(self, key: str) -> None:
        """Close window ``key`` and remember its GPU energy [J]."""
        if self._monitor is not None:
            try:
                self.energy_j[key] = float(self._monitor.end_window(key).total_energy)
            except Exception as exc:
                self.problems.append(f"Zeus window {key!r} failed to close: {exc}")

    @property
    def result(self) -> dict[str, float] | None:
        """Energy per window [J], or None when Zeus was not used."""
        return dict(self.energy_j) if self._monitor is not None else None


__all__ = ["NvmlMeter", "ZeusWindows", "nvml_index_of_cuda_device"]
