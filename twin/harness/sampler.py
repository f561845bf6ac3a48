"""The fixed-rate sampler thread and the token counter the workload reports to.

The workload (main thread) calls :meth:`WorkCounter.set_phase` and
:meth:`WorkCounter.add_tokens`; the sampler thread reads the meter at ``sample_hz``, takes the
tokens generated since its previous row and the phase that filled most of that interval, and
appends one row to the live CSV. :meth:`Sampler.sample` can also be called from the workload
thread to place a row exactly at a phase boundary.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from twin.harness.io import PHASES, LiveCsvWriter
from twin.harness.meter import Clock, EnergyMeter, MeterReading


class WorkCounter:
    """Tokens generated and time spent per phase since the sampler last took them.

    Parameters
    ----------
    clock : callable
        Monotonic clock [s].
    phase : str
        Phase at start (one of :data:`~twin.harness.io.PHASES`).
    """

    def __init__(self, clock: Clock = time.monotonic, phase: str = "idle") -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._check(phase)
        self._phase = phase
        self._since = clock()
        self._durations: dict[str, float] = {}
        self._tokens = 0
        self.total_tokens = 0

    @staticmethod
    def _check(phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")

    def _close_span(self, now: float) -> None:
        self._durations[self._phase] = self._durations.get(self._phase, 0.0) + now - self._since
        self._since = now

    @property
    def phase(self) -> str:
        """The phase the workload is in now."""
        return self._phase

    def set_phase(self, phase: str) -> None:
        """Enter ``phase`` now."""
        self._check(phase)
        with self._lock:
            if phase != self._phase:
                self._close_span(self._clock())
                self._phase = phase

    def add_tokens(self, n: int) -> None:
        """Count ``n`` generated tokens."""
        with self._lock:
            self._tokens += n
            self.total_tokens += n

    def take(self) -> tuple[int, str]:
        """Return tokens since the last call and the phase that filled most of that time; reset."""
        with self._lock:
            self._close_span(self._clock())
            tokens, self._tokens = self._tokens, 0
            durations, self._durations = self._durations, {}
        phase = max(durations, key=durations.__getitem__) if durations else self._phase
        return tokens, phase


def reading_to_row(
    reading: MeterReading,
    origin: MeterReading,
    gpu_index: int,
    tokens: int,
    phase: str,
) -> dict[str, Any]:
    """One harness row: the reading relative to ``origin`` (time and energy start at zero)."""
    return {
        "time_s": reading.time_s - origin.time_s,
        "gpu_index": gpu_index,
        "power_w": reading.power_w,
        "energy_j": reading.energy_j - origin.energy_j,
        "utilization": reading.utilization,
        "memory_utilization": reading.memory_utilization,
        "temperature_c": reading.temperature_c,
        "sm_clock_hz": reading.sm_clock_hz,
        "mem_clock_hz": reading.mem_clock_hz,
        "power_limit_w": reading.power_limit_w,
        "tokens": float(tokens),
        "phase": phase,
    }


class Sampler:
    """Read ``meter`` at a fixed rate in a thread and append rows to ``writer``.

    Parameters
    ----------
    meter : EnergyMeter
        Where power and energy come from.
    counter : WorkCounter
        Where tokens and phase come from.
    writer : LiveCsvWriter
        Where rows go (flushed one by one).
    sample_hz : float
        Sampling rate [Hz]; ticks follow a fixed grid (a late tick does not shift later ones).
    gpu_index : int
        Value of the ``gpu_index`` column.
    clock : callable
        Monotonic clock [s] used for the tick grid.
    """

    def __init__(
        self,
        meter: EnergyMeter,
        counter: WorkCounter,
        writer: LiveCsvWriter,
        sample_hz: float = 10.0,
        gpu_index: int = 0,
        clock: Clock = time.monotonic,
    ) -> None:
        if not (math.isfinite(sample_hz) and sample_hz > 0):
            raise ValueError(f"sample_hz must be > 0, got {sample_hz}")
        self.meter = meter
        self.counter = counter
        self.writer = writer
        self.period_s = 1.0 / sample_hz
        self.gpu_index = gpu_index
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._origin: MeterReading | None = None
        self._error: BaseException | None = None
        self.n_samples = 0

    def sample(self, then_phase: str | None = None) -> dict[str, Any]:
        """Take one sample now and append its row; return the row.

        Parameters
        ----------
        then_phase : str, optional
            Phase to enter right after the sample, with no tick in between: a boundary row
            closes the old phase exactly.
        """
        with self._lock:
            reading = self.meter.read()
            tokens, phase = self.counter.take()
            if then_phase is not None:
                self.counter.set_phase(then_phase)
            if self._origin is None:
                self._origin = reading
            row = reading_to_row(reading, self._origin, self.gpu_index, tokens, phase)
            self.writer.write(row)
            self.n_samples += 1
            return row

    def _loop(self) -> None:
        next_t = self._clock() + self.period_s
        try:
            while not self._stop.wait(max(0.0, next_t - self._clock())):
                self.sample()
                now = self._clock()
                next_t += self.period_s
                if next_t <= now:  # fell behind: skip the missed ticks, keep the grid
                    next_t += self.period_s * math.ceil((now - next_t) / self.period_s + 1e-9)
        except BaseException as exc:  # re-raised in stop()
            self._error = exc

    def start(self) -> None:
        """Take the first sample (time and energy zero) and start the thread."""
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="twin-harness-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        """Stop the thread, take a final sample (so every token is counted) and return it.

        Raises
        ------
        BaseException
            Whatever stopped the sampler thread early (a meter error), re-raised here.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self.sample()


__all__ = ["Sampler", "WorkCounter", "reading_to_row"]
