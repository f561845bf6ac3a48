"""CPU meters: RAPL counters where readable, otherwise a labelled model of CPU utilisation.

``RaplMeter`` (``energy_source="rapl"``) reads ``/sys/class/powercap/intel-rapl:*/energy_uj``
(microjoules, wrapping at ``max_energy_range_uj``; root-only since Linux 5.10). ``ModelMeter``
(``energy_source="estimated"``) measures nothing: it integrates ``P = P_idle + (P_max - P_idle) u``
of this process's CPU utilisation ``u``, with the parameters and their source in
:class:`CpuPowerModel`, and its ``note`` says so in capitals.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.harness import HarnessError
from twin.harness.meter import NAN, POWERCAP_ROOT, Clock, MeterBase, MeterReading


class CpuUtilization:
    """CPU utilisation of this process between calls: CPU time / (wall time x CPUs available).

    Parameters
    ----------
    clock : callable
        Wall clock [s].
    cpu_time : callable
        CPU time of the process, all threads [s] (:func:`time.process_time`).
    n_cpus : int, optional
        Logical CPUs the process may run on (its affinity mask by default).
    """

    def __init__(
        self,
        clock: Clock = time.monotonic,
        cpu_time: Clock = time.process_time,
        n_cpus: int | None = None,
    ) -> None:
        self._clock = clock
        self._cpu_time = cpu_time
        self.n_cpus = n_cpus or len(os.sched_getaffinity(0))
        self._last = (clock(), cpu_time())
        self._last_u = 0.0

    def sample(self) -> tuple[float, float]:
        """Return ``(now, utilisation since the previous call)``; utilisation in 0..1."""
        now, cpu = self._clock(), self._cpu_time()
        dt = now - self._last[0]
        if dt > 0:
            self._last_u = min(max((cpu - self._last[1]) / (dt * self.n_cpus), 0.0), 1.0)
        self._last = (now, cpu)
        return now, self._last_u


def _read_number(path: Path) -> float:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return NAN


@dataclass
class CpuSensors:
    """CPU clock and temperature from sysfs, where the kernel exposes them (NaN otherwise).

    Parameters
    ----------
    cpu_root : Path
        ``/sys/devices/system/cpu``: ``cpu*/cpufreq/scaling_cur_freq`` in kHz.
    thermal_root : Path
        ``/sys/class/thermal``: ``thermal_zone*/temp`` in millidegrees C, used for zones whose
        ``type`` is ``x86_pkg_temp`` (Intel) or starts with ``cpu``.
    """

    cpu_root: Path = Path("/sys/devices/system/cpu")
    thermal_root: Path = Path("/sys/class/thermal")
    _freq_files: list[Path] = field(init=False, default_factory=list)
    _temp_files: list[Path] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._freq_files = sorted(self.cpu_root.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))
        for zone in sorted(self.thermal_root.glob("thermal_zone*")):
            try:
                kind = (zone / "type").read_text().strip()
            except OSError:
                continue
            if kind == "x86_pkg_temp" or kind.lower().startswith("cpu"):
                self._temp_files.append(zone / "temp")

    def clock_hz(self) -> float:
        """Mean current clock over the CPUs [Hz]."""
        values = [_read_number(p) for p in self._freq_files]
        values = [v for v in values if math.isfinite(v)]
        return 1e3 * sum(values) / len(values) if values else NAN

    def temperature_c(self) -> float:
        """Hottest CPU thermal zone [C]."""
        values = [_read_number(p) / 1e3 for p in self._temp_files]
        values = [v for v in values if math.isfinite(v)]
        return max(values) if values else NAN


def cpu_name() -> str:
    """Return the CPU model from ``/proc/cpuinfo`` (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


#: Watts per logical CPU at full load that CodeCarbon 3.3.2 assumes for a CPU it does not know
#: (observed for an "AMD EPYC" VM: DEPENDENCIES.md 2.1).
CODECARBON_W_PER_THREAD: float = 4.0
#: [EST] Active-idle power as a share of full-load power. Assumed, not measured: a round
#: value for servers with power management enabled.
IDLE_FRACTION_EST: float = 0.3


@dataclass(frozen=True)
class CpuPowerModel:
    """The labelled model behind ``energy_source="estimated"``: ``P = P_idle + (P_max - P_idle) u``.

    Attributes
    ----------
    idle_power_w : float
        Power at zero utilisation [W].
    max_power_w : float
        Power at full utilisation of the CPUs the process may use [W].
    source : str
        Where the two numbers come from.
    """

    idle_power_w: float
    max_power_w: float
    source: str

    @classmethod
    def default(cls, n_cpus: int | None = None) -> CpuPowerModel:
        """CodeCarbon's 4 W per logical CPU at full load, and an assumed idle share of 0.3."""
        n = n_cpus or len(os.sched_getaffinity(0))
        p_max = CODECARBON_W_PER_THREAD * n
        return cls(
            idle_power_w=IDLE_FRACTION_EST * p_max,
            max_power_w=p_max,
            source=(
                f"P_max = {CODECARBON_W_PER_THREAD:g} W x {n} logical CPUs (CodeCarbon 3.3.2 "
                f"fallback for an unknown CPU); P_idle = {IDLE_FRACTION_EST:g} x P_max [EST]"
            ),
        )

    def power_w(self, utilization: float) -> float:
        """Modelled power at ``utilization`` (clipped to 0..1) [W]."""
        u = min(max(utilization, 0.0), 1.0)
        return self.idle_power_w + (self.max_power_w - self.idle_power_w) * u

    @property
    def formula(self) -> str:
        """The model as text, with its numbers."""
        return f"P = {self.idle_power_w:.3g} W + ({self.max_power_w:.3g} - {self.idle_power_w:.3g}) W x u_cpu"


class _CpuMeter(MeterBase):
    """What the CPU meters share: utilisation, sensors, the clock of the last read, the total."""

    def __init__(self, utilization: CpuUtilization | None, sensors: CpuSensors | None) -> None:
        self._util = utilization or CpuUtilization()
        self._sensors = sensors or CpuSensors()
        self.device_name = cpu_name()
        self._last_t = self._util.sample()[0]
        self._energy_j = 0.0

    def _tick(self) -> tuple[float, float, float]:
        """Return ``(now, seconds since the previous read, utilisation over them)``."""
        now, u = self._util.sample()
        dt, self._last_t = now - self._last_t, now
        return now, dt, u

    def _reading(self, now: float, u: float, power_w: float, delta_j: float) -> MeterReading:
        """Add ``delta_j`` to the total and build the reading."""
        self._energy_j += delta_j
        return MeterReading(
            time_s=now,
            power_w=power_w,
            energy_j=self._energy_j,
            utilization=u,
            temperature_c=self._sensors.temperature_c(),
            sm_clock_hz=self._sensors.clock_hz(),
        )


class ModelMeter(_CpuMeter):
    """Energy **estimated** from CPU utilisation with a :class:`CpuPowerModel` (not measured).

    Parameters
    ----------
    model : CpuPowerModel, optional
        The power model; :meth:`CpuPowerModel.default` when omitted.
    utilization : CpuUtilization, optional
        Source of the utilisation (injectable for tests).
    sensors : CpuSensors, optional
        Clock and temperature readers.
    """

    energy_source = "estimated"

    def __init__(
        self,
        model: CpuPowerModel | None = None,
        utilization: CpuUtilization | None = None,
        sensors: CpuSensors | None = None,
    ) -> None:
        super().__init__(utilization, sensors)
        self.model = model or CpuPowerModel.default(self._util.n_cpus)
        self.note = (
            "ENERGY IS ESTIMATED, NOT MEASURED: no energy counter was read (no NVML GPU, no "
            "readable RAPL). "
            f"Power is modelled from this process's CPU utilisation: {self.model.formula} "
            f"({self.model.source})."
        )

    def read(self) -> MeterReading:
        """Model the power since the previous read and integrate it."""
        now, dt, u = self._tick()
        power_w = self.model.power_w(u)
        return self._reading(now, u, power_w, power_w * max(dt, 0.0))

    def describe(self) -> dict[str, Any]:
        """Source, note, and the model's parameters."""
        return {
            **super().describe(),
            "energy_model": {
                "formula": self.model.formula,
                "idle_power_w": self.model.idle_power_w,
                "max_power_w": self.model.max_power_w,
                "source": self.model.source,
            },
        }


@dataclass(frozen=True)
class RaplZone:
    """One RAPL energy counter.

    Attributes
    ----------
    name : str
        Zone name (``package-0``, ``dram``, ...).
    energy_path : Path
        Its ``energy_uj`` file (microjoules).
    max_energy_range_uj : float
        Value at which the counter wraps to zero [uJ].
    """

    name: str
    energy_path: Path
    max_energy_range_uj: float


def rapl_delta_uj(previous_uj: float, current_uj: float, max_energy_range_uj: float) -> float:
    """Energy between two reads of a RAPL counter that wraps at ``max_energy_range_uj`` [uJ].

    Examples
    --------
    >>> rapl_delta_uj(100.0, 250.0, 1000.0)
    150.0
    >>> rapl_delta_uj(900.0, 50.0, 1000.0)  # wrapped: 100 to the top, then 50
    150.0
    """
    delta = current_uj - previous_uj
    return delta + max_energy_range_uj if delta < 0 else delta


_TOP_ZONE = re.compile(r"^intel-rapl:\d+$")
_SUB_ZONE = re.compile(r"^intel-rapl:\d+:\d+$")


def find_rapl_zones(root: Path = POWERCAP_ROOT) -> list[RaplZone]:
    """Readable RAPL counters to sum: package zones, plus DRAM sub-zones where exposed.

    Top-level ``intel-rapl:N`` zones are the CPU packages (``psys``, which overlaps them, is
    skipped); among sub-zones only ``dram`` is outside the package and is added. A zone whose
    ``energy_uj`` cannot be read (root-only since Linux 5.10) is left out.

    Parameters
    ----------
    root : Path
        The powercap directory (``/sys/class/powercap``).

    Returns
    -------
    list of RaplZone
        Empty when RAPL is absent or unreadable.
    """
    if not root.is_dir():
        return []
    zones = []
    for path in sorted(root.iterdir()):
        top, sub = _TOP_ZONE.match(path.name), _SUB_ZONE.match(path.name)
        if not (top or sub):
            continue
        try:
            name = (path / "name").read_text().strip()
        except OSError:
            name = path.name
        if (top and name == "psys") or (sub and name != "dram"):
            continue
        energy = _read_number(path / "energy_uj")
        max_range = _read_number(path / "max_energy_range_uj")
        if math.isfinite(energy) and math.isfinite(max_range) and max_range > 0:
            zones.append(RaplZone(name, path / "energy_uj", max_range))
    return zones


class RaplMeter(_CpuMeter):
    """CPU energy measured by RAPL counters (summed over zones, wraparound handled).

    Parameters
    ----------
    zones : list of RaplZone, optional
        Counters to read; :func:`find_rapl_zones` when omitted.
    root : Path
        Powercap directory searched when ``zones`` is omitted.
    utilization : CpuUtilization, optional
        Source of the utilisation column.
    sensors : CpuSensors, optional
        Clock and temperature readers.
    """

    energy_source = "rapl"

    def __init__(
        self,
        zones: list[RaplZone] | None = None,
        root: Path = POWERCAP_ROOT,
        utilization: CpuUtilization | None = None,
        sensors: CpuSensors | None = None,
    ) -> None:
        self.zones = zones if zones is not None else find_rapl_zones(root)
        if not self.zones:
            raise HarnessError(f"no readable RAPL energy counter under {root}")
        super().__init__(utilization, sensors)
        self._last = [self._raw(z) for z in self.zones]
        names = ", ".join(z.name for z in self.zones)
        self.note = f"measured by RAPL ({names}): CPU package/DRAM counters only, not the whole machine"

    @staticmethod
    def _raw(zone: RaplZone) -> float:
        value = _read_number(zone.energy_path)
        if not math.isfinite(value):
            raise HarnessError(f"cannot read RAPL counter {zone.energy_path}")
        return value

    def read(self) -> MeterReading:
        """Read every counter, add the wrap-corrected increments, derive the mean power."""
        now, dt, u = self._tick()
        raw = [self._raw(z) for z in self.zones]
        delta_j = 1e-6 * sum(
            rapl_delta_uj(prev, cur, z.max_energy_range_uj)
            for prev, cur, z in zip(self._last, raw, self.zones, strict=True)
        )
        self._last = raw
        return self._reading(now, u, delta_j / dt if dt > 0 else NAN, delta_j)


__all__ = [
    "CODECARBON_W_PER_THREAD",
    "IDLE_FRACTION_EST",
    "CpuPowerModel",
    "CpuSensors",
    "CpuUtilization",
    "ModelMeter",
    "RaplMeter",
    "RaplZone",
    "cpu_name",
    "find_rapl_zones",
    "rapl_delta_uj",
]
