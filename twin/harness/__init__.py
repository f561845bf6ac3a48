"""The workload harness: a real PyTorch decode loop measured through NVML, RAPL or a labelled model.

Modules (only :mod:`~twin.harness.model` and :mod:`~twin.harness.run` need torch, and ``run``
imports it lazily, inside its functions):

- :mod:`~twin.harness.model`: the tiny GPT decoder, its FLOPs per token and bytes per step.
- :mod:`~twin.harness.meter`: the energy-meter interface;
  :mod:`~twin.harness.nvml` (GPU) and :mod:`~twin.harness.cpu` (RAPL, estimated) implement it.
- :mod:`~twin.harness.sampler`: the fixed-rate sampler thread and the token counter it reads.
- :mod:`~twin.harness.run`: ``run_harness``, ``run_harness_sweep`` and ``auto_meter`` (picks the meter).
- :mod:`~twin.harness.summary`: ``HarnessSummary``, the run summary, and ``read_summary``.
- :mod:`~twin.harness.calibrate`: fits an accelerator catalog entry from harness output.
- :mod:`~twin.harness.follow`: tails a running harness's CSV.
- :mod:`~twin.harness.intervals`: the measured device (``device_source``) and its samples cut into
  report intervals of metered energy and tokens (``device_intervals``).
- :mod:`~twin.harness.mirror`: mirrors the measured device on every GPU of a simulated fleet
  (``mirror_frame``, ``mirror_file``, ``follow_mirror``; imports the simulator).
- :mod:`~twin.harness.io`: file layout, atomic writes, reading harness output.
- :mod:`~twin.harness.commands`: the ``twin harness`` and ``follow`` CLI functions, and the harness-file
  body of ``twin calibrate``.
"""

from __future__ import annotations

from twin.errors import TwinError


class HarnessError(TwinError):
    """The harness cannot run as asked (no CUDA, no NVML, bad sweep list, ...)."""


__all__ = ["HarnessError"]
