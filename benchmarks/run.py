"""Benchmark runner: ``python -m benchmarks [--tiny] [--only NAME ...] [--out FILE]``.

Each case runs in its own Python process (so its peak RSS is its own) and reports:

* ``wall_s``: wall time of :func:`twin.simulate` (facility build, run, KPIs), and ``cpu_s`` its
  CPU time (user + system of every thread; on a shared machine the steadier figure);
* ``server_ticks_per_s``: servers x physics ticks per CPU second (the work rate of fleets whose
  servers differ, where nothing is computed once for many);
* ``device_steps_per_s``: GPUs x physics ticks (``duration_s / step_s``) per wall second;
* ``sim_s_per_wall_s``: simulated seconds per wall second;
* ``peak_rss_mb``: the process's peak resident memory (``getrusage``), and ``rss_start_mb`` before
  the run; ``rss_mb_at``: resident memory sampled at 25/50/75/100 % of simulated time (flat in
  simulated time when the run's memory does not grow with it);
* ``blocks`` and ``events``: vectorised blocks the engine computed and simpy events it processed;
  ``threads``: the threads the engine computed a block's columns with, ``chunked_blocks``: the
  blocks it split into chunks of columns, one per thread (``--threads N`` sets ``TWIN_THREADS``
  for the cases; default every core);
* ``serve_cells``: tick x column cells the serving model solved (every call of
  :func:`twin.engine.serving.serve_block`: a block's first solve, its solve at GPU Boost's top
  clocks, each governor step), and ``serve_cells_per_server_tick`` that over servers x ticks. It is
  the work, not the time: the same on any machine and under any load at the same number of engine
  threads (a block split over threads runs the governor on each chunk), so a change that makes the
  engine solve more (a refit that puts more GPUs over their power cap, each governed block then
  solved ~9 times) shows in it exactly where the CPU time's noise would hide a 20 % change.

The table is printed and the whole record (machine, load average, commit) written as JSON
(``benchmarks/results/latest.json`` by default). ``--bandwidth`` adds the memory-bandwidth bound
(:mod:`benchmarks.bandwidth`). ``--compare BASE.json`` sets the cases run beside a record of the
same cases (another commit's) and flags those that got slower (:func:`compare`); exit status 1
if one did. Benchmarks are not tests: the test suite only runs ``--tiny``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cases import Case, all_cases

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "latest.json"
MB = 1024.0 * 1024.0


def _rss_now_mb() -> float:
    """Current resident set size of this process. [MB]"""
    with open("/proc/self/statm") as fh:  # noqa: PTH123 (a /proc file, read once)
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def _cpu_s() -> float:
    """User + system CPU time of this process (all its threads) so far. [s]"""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


class _Counters:
    """Counts the engine's computed blocks, serving cells and processed events (patched in the worker only)."""

    def __init__(self) -> None:
        import threading

        import simpy

        from twin.engine import clock_solves, kernel

        self.blocks = 0
        self.chunked = 0
        self.events = 0
        self.serve_cells = 0
        lock = threading.Lock()  # the engine's threads solve chunks of a block at once
        compute = kernel.Engine._compute
        chunks = kernel.Engine._chunks
        step = simpy.Environment.step
        serve = clock_solves.serve_block

        def counted_serve(*a: Any, **kw: Any) -> Any:
            res = serve(*a, **kw)
            with lock:
                self.serve_cells += int(np.prod(np.shape(res.busy)))
            return res

        def counted_compute(eng: Any, *a: Any, **kw: Any) -> Any:
            self.blocks += 1
            return compute(eng, *a, **kw)

        def counted_chunks(eng: Any, *a: Any, **kw: Any) -> Any:
            parts = chunks(eng, *a, **kw)
            self.chunked += parts is not None
            return parts

        def counted_step(env: Any) -> None:
            self.events += 1
            step(env)

        clock_solves.serve_block = counted_serve  # (the one caller of serve_block in the engine)
        kernel.Engine._compute = counted_compute  # type: ignore[method-assign,assignment]
        kernel.Engine._chunks = counted_chunks  # type: ignore[method-assign,assignment]
        simpy.Environment.step = counted_step  # type: ignore[method-assign,assignment]


def run_simulation(case: Case) -> dict[str, Any]:
    """Run one simulation case in this process and measure it."""
    import twin
    from twin.engine.threads import resolve_threads

    counters = _Counters()
    folder = tempfile.TemporaryDirectory()  # the job trace a case writes, read when the run builds
    sc = twin.load_scenario("default", case.with_files(Path(folder.name)))
    samples: list[tuple[float, float]] = []

    def progress(t_s: float, total_s: float) -> None:
        samples.append((t_s / total_s, _rss_now_mb()))

    rss_start = _rss_now_mb()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    result = twin.simulate(sc, progress=progress)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    folder.cleanup()
    ticks = sc.duration_s / sc.step_s
    at = {}
    for q in (0.25, 0.5, 0.75, 1.0):
        later = [rss for frac, rss in samples if frac >= q - 1e-9]
        at[f"{round(q * 100)}%"] = round(later[0], 1) if later else None
    k = result.kpis
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "n_gpus": result.meta["n_gpus"],
        "n_servers": result.meta["n_servers"],
        "duration_s": sc.duration_s,
        "step_s": sc.step_s,
        "report_interval_s": sc.report_interval_s,
        "ticks": ticks,
        "device_steps_per_s": result.meta["n_gpus"] * ticks / wall,
        "server_ticks_per_s": result.meta["n_servers"] * ticks / cpu,
        "sim_s_per_wall_s": sc.duration_s / wall,
        "rss_start_mb": round(rss_start, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_mb_at": at,
        "blocks": counters.blocks,
        "threads": resolve_threads(),
        "chunked_blocks": counters.chunked,
        "events": counters.events,
        "serve_cells": counters.serve_cells,
        "serve_cells_per_server_tick": counters.serve_cells / (result.meta["n_servers"] * ticks),
        "rows": len(result.timeseries),
        "tokens_out": k["tokens_out"],
        "facility_energy_j": k["facility_energy_j"],
        "ledger_residual_j": k["ledger_residual_j"],
    }


def run_dashboard(tiny: bool) -> dict[str, Any]:
    """Whole-page reruns of the dashboard: the figure is a lever change at one simulated day."""
    from streamlit.testing.v1 import AppTest

    app = ROOT / "twin" / "dashboard" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=600)
    hours = 1.0 if tiny else 24.0

    def timed(step: Any) -> float:
        t0 = time.perf_counter()
        step()
        if at.exception:
            raise RuntimeError(str(at.exception))
        return time.perf_counter() - t0

    first = timed(at.run)
    day = timed(lambda: at.slider(key="duration_h").set_value(hours).run())
    rerun = timed(lambda: at.selectbox(key="cooling_type").set_value("air").run())
    cached = timed(lambda: at.selectbox(key="cooling_type").set_value("liquid").run())
    return {
        "wall_s": rerun,
        "first_page_s": first,
        "duration_change_s": day,
        "rerun_s": rerun,
        "cached_rerun_s": cached,
        "simulated_h": hours,
        "n_gpus": 1024,
        "sim_s_per_wall_s": hours * 3600.0 / rerun,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _shortened(case: Case, duration_s: float | None) -> Case:
    if duration_s is None or case.kind != "simulate":
        return case
    return replace(case, overrides={**case.overrides, "duration_s": duration_s})


def _worker(name: str, tiny: bool, duration_s: float | None) -> None:
    case = _shortened(next(c for c in all_cases(tiny) if c.name == name), duration_s)
    out = run_dashboard(tiny) if case.kind == "dashboard" else run_simulation(case)
    print("RESULT " + json.dumps(out))


def _run_case(
    case: Case, tiny: bool, timeout_s: float, duration_s: float | None, threads: int | None = None
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks", "--worker", case.name] + (["--tiny"] if tiny else [])
    if duration_s is not None:
        cmd += ["--duration-s", str(duration_s)]
    env = os.environ | ({} if threads is None else {"TWIN_THREADS": str(threads)})
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:g} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"]}
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "twin"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def _fmt(x: Any, spec: str) -> str:
    """``x`` formatted, or ``-`` in the same width where the record has none."""
    if x is not None:
        return format(x, spec)
    width = "".join(itertools.takewhile(str.isdigit, spec))
    return format("-", f">{width}") if width else "-"


def print_table(results: dict[str, dict[str, Any]], cases: list[Case]) -> None:
    """The figures, one line per case."""
    head = f"{'case':<16} {'wall s':>8} {'CPU s':>8} {'dev-steps/s':>12} {'sim s/wall s':>13} {'peak RSS MB':>12}"
    head += f" {'blocks':>8} {'threads':>7} {'cells/srv-tick':>14}"
    print(head)
    print("-" * len(head))
    for c in cases:
        r = results.get(c.name, {})
        if "error" in r:
            print(f"{c.name:<16} error: {r['error']}")
            continue
        print(
            f"{c.name:<16} {_fmt(r.get('wall_s'), '8.2f')} {_fmt(r.get('cpu_s'), '8.2f')} "
            f"{_fmt(r.get('device_steps_per_s'), '12.3g')} "
            f"{_fmt(r.get('sim_s_per_wall_s'), '13,.0f')} {_fmt(r.get('peak_rss_mb'), '12.0f')} "
            f"{_fmt(r.get('blocks'), '8d')} {_fmt(r.get('threads'), '7d')} "
            f"{_fmt(r.get('serve_cells_per_server_tick'), '14.3f')}"
        )


#: A case whose CPU time grew by more than this share against the base counts as slower (two runs of
#: one commit on this shared 2-core VM differ by up to ~15 %, 25 % under load).
CPU_SLOWER = 0.3
#: A case whose serving cells grew by more than this share counts as doing more work (the count is
#: exact: any growth is the engine's or the model's doing).
WORK_MORE = 0.1


def _positive(x: Any) -> bool:
    """Whether ``x`` is a finite number above 0 (a figure a record may lack or hold wrong)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and 0.0 < x < float("inf")


def compare(now: dict[str, Any], base: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Lines setting each case of ``now`` beside ``base`` (two records' ``cases``), and the cases flagged.

    A case is flagged where its CPU time grew by more than :data:`CPU_SLOWER` or its serving cells
    by more than :data:`WORK_MORE`; cases of another simulated duration are not compared, nor the
    cells of runs on other numbers of threads (each chunk of a block runs its own governor).
    """
    lines = [f"{'case':<16} {'base CPU s':>10} {'CPU s':>8} {'x':>6} {'base cells':>12} {'cells':>12} {'x':>6}"]
    flagged = []
    for name, r in now.items():
        b = base.get(name)
        if not isinstance(b, dict) or not _positive(r.get("cpu_s")):
            continue
        if not _positive(b.get("cpu_s")):
            lines.append(f"{name:<16} not compared: no CPU time in the base ({b.get('cpu_s')!r})")
            continue
        if r.get("duration_s") != b.get("duration_s"):
            lines.append(
                f"{name:<16} not compared: {b.get('duration_s')} s simulated in the base, {r.get('duration_s')} s now"
            )
            continue
        cpu = r["cpu_s"] / b["cpu_s"]
        cells = r.get("serve_cells")
        base_cells = b.get("serve_cells")
        same_threads = r.get("threads") == b.get("threads")
        work = cells / base_cells if _positive(cells) and _positive(base_cells) and same_threads else None
        flags = (["slower"] if cpu > 1.0 + CPU_SLOWER else []) + (
            ["more work"] if work is not None and work > 1.0 + WORK_MORE else []
        )
        lines.append(
            f"{name:<16} {b['cpu_s']:10.2f} {r['cpu_s']:8.2f} {cpu:6.2f} "
            f"{_fmt(base_cells if _positive(base_cells) else None, '12.0f')} "
            f"{_fmt(cells if _positive(cells) else None, '12.0f')} "
            f"{_fmt(work, '6.2f')}"
            + (f"  {' and '.join(flags).upper()}" if flags else "")
            + ("" if same_threads else f"  (threads {b.get('threads')} then, {r.get('threads')} now)")
        )
        if flags:
            flagged.append(name)
    return lines, flagged


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny sizes (what the test suite runs)")
    p.add_argument("--only", nargs="*", default=None, help="case names (or prefixes) to run")
    p.add_argument("--out", type=Path, default=None, help=f"JSON output (default {DEFAULT_OUT.relative_to(ROOT)})")
    p.add_argument("--bandwidth", action="store_true", help="also measure memory bandwidth and the bound")
    p.add_argument(
        "--duration-s", type=float, default=None, help="shorten the simulated time of the cases run (extrapolate!)"
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per case")
    p.add_argument("--threads", type=int, default=None, help="engine threads (TWIN_THREADS; default every core)")
    p.add_argument(
        "--compare", type=Path, default=None, help="a record (JSON) of the same cases to flag slowdowns against"
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads: expected a whole number of threads >= 1, got {args.threads}")
    if args.worker:
        _worker(args.worker, args.tiny, args.duration_s)
        return 0
    base = None
    if args.compare is not None:
        try:
            base = json.loads(args.compare.read_text())["cases"]
            if not isinstance(base, dict):
                raise TypeError(f"'cases' is a {type(base).__name__}, not an object of cases")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            p.error(f"--compare {args.compare}: expected a benchmark record (JSON with 'cases'): {exc}")
    cases = all_cases(args.tiny)
    if args.only:
        cases = [c for c in cases if any(c.name == o or c.name.startswith(o) for o in args.only)]
        if not cases:
            p.error(f"no case matches {args.only}; cases: {', '.join(c.name for c in all_cases(args.tiny))}")
    record: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": os.getloadavg(),
        },
        "commit": _git_commit(),
        "tiny": args.tiny,
        "duration_s_override": args.duration_s,
        "threads": args.threads,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cases": {},
    }
    for c in cases:
        print(f"running {c.name}: {c.what} ...", flush=True)
        r = _run_case(c, args.tiny, args.timeout, args.duration_s, args.threads)
        r["what"] = c.what
        record["cases"][c.name] = r
    if args.bandwidth:
        from benchmarks.bandwidth import bandwidth_report

        trace = record["cases"].get("day-trace-10k", {})
        engine = None
        if "device_steps_per_s" in trace:  # the suite's own per-server-trace run, if it ran
            keys = ("n_gpus", "duration_s", "wall_s", "device_steps_per_s")
            engine = {k: trace[k] for k in keys} | {"case": "day-trace-10k"}
        record["bandwidth"] = bandwidth_report(tiny=args.tiny, engine=engine)
    record["machine"]["load_average_after"] = os.getloadavg()
    print_table(record["cases"], cases)
    if "bandwidth" in record:
        print(record["bandwidth"]["statement"])
    out = args.out or DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    flagged: list[str] = []
    if base is not None:
        lines, flagged = compare(record["cases"], base)
        print(f"against {args.compare}:")
        print("\n".join(lines))
    return 1 if flagged or any("error" in r for r in record["cases"].values()) else 0
