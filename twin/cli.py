"""The command line: ``twin run | validate | catalog | dashboard`` (and the subsystems' commands)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from twin.errors import InvalidInputError, OutputPathError, ScenarioError, TwinError
from twin.kpis import SITE_KPIS
from twin.units import J_PER_KWH

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The AI-factory twin: energy in, tokens out.")
console = Console()
err_console = Console(stderr=True)

#: Exit code for invalid input (a scenario, spec or trace that does not validate).
EXIT_INVALID = 2

#: Headline KPIs (key, label, format of the shown value); units from the registry (twin.kpis), shown
#: as :data:`TABLE_UNITS` says.
KPI_ROWS = [
    ("facility_energy_kwh", "Facility energy", "{:,.1f}"),
    ("it_energy_kwh", "IT energy", "{:,.1f}"),
    ("pue", "PUE", "{:.3f}"),
    ("tokens_out", "Tokens out", "{:,.0f}"),
    ("tokens_per_kwh", "Tokens per kWh (facility)", "{:,.0f}"),
    ("j_per_token_facility", "Energy per token (facility)", "{:.4g}"),
    ("j_per_token_it", "Energy per token (IT)", "{:.4g}"),
    ("mean_facility_power_w", "Mean facility power", "{:,.1f}"),
    ("peak_facility_power_w", "Peak facility power", "{:,.1f}"),
    ("cooling_energy_j", "Cooling energy", "{:,.1f}"),
    ("conversion_loss_energy_j", "Conversion losses", "{:,.1f}"),
    ("max_die_temp_c", "Max die temperature", "{:.1f}"),
    ("water_l", "Water (towers, pads)", "{:,.0f}"),
    ("wue_l_per_kwh", "WUE", "{:.3f}"),
    ("free_cooling_h", "Free-cooling hours (equivalent)", "{:,.1f}"),
    ("throttled_gpu_h", "Throttled GPU-hours", "{:,.1f}"),
    ("carbon_kg", "Carbon (location-based)", "{:,.0f}"),
    ("ledger_residual_j", "Ledger residual", "{:.2g}"),
]
#: Fault and control KPIs (key, label, format), shown when not zero (the battery's state of charge always).
FAULT_KPI_ROWS = [
    ("tokens_lost", "Tokens lost (rollbacks + dropped)", "{:,.0f}"),
    ("lost_energy_j", "Energy of rolled-back work", "{:,.1f}"),
    ("load_shed_j", "Load shed", "{:,.1f}"),
    ("battery_min_soc", "Battery minimum state of charge", "{:.3f}"),
    ("time_to_thermal_shutdown_s", "Fault to first thermal shutdown", "{:,.1f}"),
    ("time_throttled_s", "Time with GPUs thermally throttled", "{:,.0f}"),
    ("time_site_limited_s", "Time held at the site power limit", "{:,.0f}"),
    ("grid_ramp_max_w_per_s", "Largest grid ramp", "{:,.1f}"),
]


#: Help of ``--set``; what follows a key is :mod:`twin.scenario.edits`' table.
SET_HELP = (
    "Override a field: --set fleet.rows=2 (the workloads' servers and request rates follow the fleet "
    "size unless also set; see twin/scenario/edits.py)"
)


#: Help of ``--threads``.
THREADS_HELP = (
    "Threads that compute a run's columns (default: the TWIN_THREADS environment variable, else every core; "
    "1: serial). Results are the same to the bit."
)


def _use_threads(ctx: typer.Context, threads: int | None) -> None:
    """``--threads`` for the runs this command makes: ``TWIN_THREADS`` (which worker processes inherit) until it ends.

    A bad ``TWIN_THREADS`` exits 2 before anything runs.
    """
    from twin.engine.threads import THREADS_ENV, resolve_threads

    if threads is not None:
        before = os.environ.get(THREADS_ENV)
        os.environ[THREADS_ENV] = str(threads)

        def restore() -> None:
            if before is None:
                os.environ.pop(THREADS_ENV, None)
            else:
                os.environ[THREADS_ENV] = before

        ctx.call_on_close(restore)
    try:
        resolve_threads()
    except InvalidInputError as exc:
        _invalid(exc)


def _parse_sets(sets: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as overrides (:func:`twin.scenario.loader.parse_sets`)."""
    from twin.scenario.loader import parse_sets

    return parse_sets(sets)


def _invalid(exc: InvalidInputError) -> NoReturn:
    """Print an input error and exit 2."""
    what = "invalid scenario" if isinstance(exc, ScenarioError) else "invalid input"
    err_console.print(f"[bold red]{what}[/] {exc}", highlight=False)
    raise typer.Exit(EXIT_INVALID) from None


def _load(scenario: str | None, sets: list[str] | None) -> Any:
    """The scenario with its ``--set`` overrides and what follows from them (:mod:`twin.scenario.edits`).

    Problems a ``--set`` caused are named after it.
    """
    from twin.scenario.loader import blame_overrides
    from twin.scenario.set_rules import load_with_sets

    overrides: dict[str, Any] = {}
    try:
        overrides = _parse_sets(sets)
        return load_with_sets(scenario, overrides)
    except ScenarioError as exc:
        _invalid(blame_overrides(exc, list(overrides)))
    except InvalidInputError as exc:
        _invalid(exc)


#: Most events the run report prints (all are in events.csv).
MAX_EVENT_ROWS = 40


def events_table(events: Any) -> Table:
    """A rich table of the run's discrete events (faults, repairs, sources, shutdowns, controls)."""
    table = Table(title=f"Events ({len(events)})")
    table.add_column("time [s]", justify="right")
    table.add_column("event")
    table.add_column("detail")
    for row in events.head(MAX_EVENT_ROWS).itertuples(index=False):
        table.add_row(f"{row.time_s:,.1f}", str(row.event), str(row.detail))
    if len(events) > MAX_EVENT_ROWS:
        table.add_row("…", f"{len(events) - MAX_EVENT_ROWS} more in events.csv", "")
    return table


#: Per-pool job-queue KPIs the run table shows: key suffix, label, format, unit.
QUEUE_ROWS = (
    ("_job_wait_p95_s", "job wait p95", "{:,.0f}", "s"),
    ("_jobs_waiting_end", "jobs waiting at the end", "{:,.0f}", "jobs"),
    ("_job_utilisation", "GPU utilisation", "{:.3f}", ""),
)

#: Per-pool request-level KPIs the run table shows (``request_level``): key suffix, label, format, unit.
RL_ROWS = (
    ("_slo_attainment", "SLO attainment (requests)", "{:.3f}", ""),
    ("_goodput_req_per_s", "goodput (requests meeting the SLO)", "{:,.2f}", "requests/s"),
    ("_ranks_replayed", "ranks replayed request by request", "{:,.0f}", "ranks"),
)


def kpi_table(kpis: dict[str, float], title: str) -> Table:
    """A rich table of the headline KPIs; an undefined (null) value reads ``n/a``."""
    from twin.results import fmt_value, is_undefined

    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for key, label, fmt in KPI_ROWS:
        if key in kpis:
            table.add_row(*_row(kpis, key, label, fmt))
    for key, value in kpis.items():  # per-pool latency: fluid (twin.engine.pool_stats), replayed (twin.latency)
        for metric in ("ttft", "tpot"):
            for q in ("p50", "p99"):
                for how, suffix in (("", f"_{metric}_{q}_s"), (" (requests)", f"_{metric}_{q}_replay_s")):
                    if key.endswith(suffix):
                        ms = None if is_undefined(value) else value * 1e3
                        label = f"{key.removesuffix(suffix)} {metric.upper()} {q}{how}"
                        table.add_row(label, fmt_value(ms, "{:,.1f}"), "ms")
        for suffix, label, fmt, unit in QUEUE_ROWS + RL_ROWS:  # pools whose job trace a scheduler queues
            if key.endswith(suffix):
                table.add_row(f"{key.removesuffix(suffix)} {label}", fmt_value(value, fmt), unit)
    for key, label, fmt in FAULT_KPI_ROWS:
        if key in kpis and (kpis[key] != 0 or key == "battery_min_soc"):
            table.add_row(*_row(kpis, key, label, fmt))
    return table


#: One convention per quantity in the table: energy in kWh, power in kW (summary.json keeps SI).
TABLE_UNITS: dict[str, tuple[float, str]] = {"J": (1.0 / J_PER_KWH, "kWh"), "W": (1e-3, "kW"), "W/s": (1e-3, "kW/s")}


def _row(kpis: dict[str, float], key: str, label: str, fmt: str) -> tuple[str, str, str]:
    """(label, value, unit) of a site KPI as the table shows it.

    In :data:`TABLE_UNITS`' unit, no unit for a ratio of like quantities, ``n/a`` when undefined.
    """
    from twin.results import fmt_value, is_undefined

    unit = SITE_KPIS[key].unit
    scale, shown = TABLE_UNITS.get(unit, (1.0, "" if unit == "1" else unit))
    value = kpis[key]
    return label, fmt_value(None if is_undefined(value) else value * scale, fmt), shown


@app.command()
def run(
    ctx: typer.Context,
    scenario: Annotated[
        str | None, typer.Argument(help="Scenario YAML or preset name (default: built-in default).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for summary.json, timeseries.parquet, report.png.")
    ] = Path("out"),
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
    debug: Annotated[bool, typer.Option(help="Check the energy ledger after every interval.")] = False,
    request_level: Annotated[
        int | None,
        typer.Option(
            "--request-level",
            min=1,
            help="Replay N ranks of each inference pool request by request after the run (the scenario's "
            "request_level with ranks N): latency KPIs, latency.csv, histogram.csv.",
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help=THREADS_HELP)] = None,
) -> None:
    """Run a scenario and write its report."""
    from twin.catalog.serving_accuracy import ServingAccuracy
    from twin.report import write_report
    from twin.results import OutputDirError, check_output_dir
    from twin.simulation import simulate

    _use_threads(ctx, threads)
    sc = _load(scenario, [*(set_ or []), *([f"request_level.ranks={request_level}"] if request_level else [])])
    try:  # before simulating: a file, or a folder with other files, is refused, not found out after the run
        previous = check_output_dir(out)
    except OutputDirError as exc:
        _invalid(exc)
    try:
        if quiet:
            result = simulate(sc, debug=debug)
        else:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task(f"simulating {sc.name}", total=sc.duration_s)
                result = simulate(sc, debug=debug, progress=lambda t, total: bar.update(task, completed=t))
    except InvalidInputError as exc:  # an input the scenario names (a trace, a weather file) is malformed
        _invalid(exc)
    except TwinError as exc:
        err_console.print(f"[bold red]error[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if previous is not None:  # say what is replaced, never overwrite without a word
        err_console.print(f"[yellow]{previous.describe()}[/]", highlight=False)
    try:
        files = result.save(out, report=write_report)  # the whole folder or nothing: written aside, then swapped in
    except OutputDirError as exc:
        _invalid(exc)
    except OSError as exc:
        err_console.print(f"[bold red]error[/] cannot write the run to {out}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    for issue in result.meta.get("warnings", []):  # what `twin validate` warns about, `run` says too
        err_console.print(f"[yellow]warning[/] {issue}", highlight=False)
    if not quiet:
        console.print(kpi_table(result.kpis, f"{sc.name} — {result.meta['n_gpus']} GPUs, {sc.duration_s / 3600:.1f} h"))
        if result.meta.get("serving_error") is not None:
            console.print(ServingAccuracy(**result.meta["serving_error"]).describe(), highlight=False, soft_wrap=True)
        if len(result.events):
            console.print(events_table(result.events))
        console.print(
            f"wrote {out}/{', '.join(f.name for f in files)} (simulated in {result.meta['wall_time_s']:.2f} s)"
        )


@app.command()
def latency(
    ctx: typer.Context,
    scenario: Annotated[
        str | None, typer.Argument(help="Scenario YAML or preset name (default: built-in default).")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    replicas: Annotated[
        int, typer.Option("--replicas", "-n", min=1, help="Attention ranks replayed per pool (a declared sample).")
    ] = 4,
    start_s: Annotated[
        float | None, typer.Option(help="Window start [s] (default: the busiest report interval).")
    ] = None,
    duration_s: Annotated[float, typer.Option(min=1.0, help="Window length [s].")] = 600.0,
    slo_ttft_ms: Annotated[
        float | None, typer.Option(min=0.0, help="TTFT target [ms] (default: each workload's slo, else 2500).")
    ] = None,
    slo_tpot_ms: Annotated[
        float | None, typer.Option(min=0.0, help="TPOT target [ms] (default: each workload's slo, else 150).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for latency.csv and requests.parquet.")
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help=THREADS_HELP)] = None,
) -> None:
    """Run a scenario, then replay a sample of each inference pool request by request: TTFT/TPOT percentiles."""
    import pandas as pd

    from twin.latency import busiest_start_s, fluid_latency, latency_frames, replay_latency
    from twin.output_paths import check_output_folder
    from twin.simulation import simulate

    _use_threads(ctx, threads)
    sc = _load(scenario, set_)
    try:
        if out is not None:  # refused before the run, not after it
            check_output_folder(out, "--out")
        with console.status(f"simulating {sc.name}"):
            result = simulate(sc)
        start = busiest_start_s(result, duration_s) if start_s is None else start_s
        end = min(start + duration_s, float(sc.duration_s))
        with console.status(f"replaying {replicas} rank(s) per pool, {start:.0f}-{end:.0f} s, request by request"):
            pools = replay_latency(
                result,
                sc,
                replicas,
                start,
                end - start,
                None if slo_ttft_ms is None else slo_ttft_ms / 1e3,
                None if slo_tpot_ms is None else slo_tpot_ms / 1e3,
            )
    except InvalidInputError as exc:
        _invalid(exc)
    table = Table(title=f"{sc.name}: request-level latency, {start:.0f}-{end:.0f} s (95 % CI)")
    for name in ("pool", "ranks (sampled)", "requests", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "SLO met"):
        table.add_column(name, justify="left" if name == "pool" else "right")

    def ms(v: tuple[float, float, float]) -> str:
        return f"{v[0] * 1e3:.1f} [{v[1] * 1e3:.1f}, {v[2] * 1e3:.1f}] ms"

    fluid = fluid_latency(result.timeseries, [p.pool for p in pools], start, end).set_index(["pool", "metric", "stat"])

    def fluid_ms(pool: str, metric: str, stat: str) -> str:
        v = float(fluid.loc[(pool, metric, stat), "value_s"])
        return f"{v * 1e3:.1f} ms" if math.isfinite(v) else "n/a"

    for p in pools:
        s = p.summary.percentiles
        table.add_row(
            p.pool,
            f"{p.ranks} ({p.sampled})",
            f"{p.summary.requests:,}",
            ms(s["ttft"][50.0]),
            ms(s["ttft"][99.0]),
            ms(s["tpot"][50.0]),
            ms(s["tpot"][99.0]),
            f"{100 * p.summary.attainment:.1f} %",
        )
        cells = [fluid_ms(p.pool, m, q) for m in ("ttft", "tpot") for q in ("p50", "p99")]
        table.add_row("  fluid model", "", "", *cells, "", style="dim")
    console.print(table)
    console.print(
        "fluid model: the run's interval values over the same window (quantiles over each interval's ticks and "
        "servers, not requests), weighted by requests (TTFT) or tokens (TPOT); fluid.csv has them and their means",
        highlight=False,
        soft_wrap=True,
    )
    if out is not None:
        percentiles, requests = latency_frames(pools)
        try:
            out.mkdir(parents=True, exist_ok=True)
            percentiles.to_csv(out / "latency.csv", index=False)
            requests.to_parquet(out / "requests.parquet", index=False)
            pd.concat([p.histogram() for p in pools]).to_csv(out / "histogram.csv", index=False)
            fluid.reset_index().to_csv(out / "fluid.csv", index=False)
        except OSError as exc:
            err_console.print(f"[bold red]error[/] cannot write into {out}: {exc}", highlight=False)
            raise typer.Exit(1) from None
        console.print(f"wrote {out}/latency.csv, {out}/histogram.csv, {out}/fluid.csv, {out}/requests.parquet")
    for p in pools:
        summ = p.summary
        console.print(
            f"{p.pool}: TTFT p99 {summ.percentiles['ttft'][99.0][0] * 1e3:.1f} ms, "
            f"TPOT p99 {summ.percentiles['tpot'][99.0][0] * 1e3:.1f} ms, SLO attainment {100 * summ.attainment:.1f} % "
            f"(TTFT <= {summ.slo_ttft_s * 1e3:g} ms, TPOT <= {summ.slo_tpot_s * 1e3:g} ms), "
            f"goodput {summ.goodput_per_s:.2f} req/s/rank",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def validate(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML or preset name.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Check a scenario file without running it."""
    from twin.checks import run_checks, serving_error
    from twin.facility import build_facility

    sc = _load(scenario, set_)
    try:  # building reads every trace and the weather file and sizes the plant: what a run refuses fails here
        fac = build_facility(sc)
        issues = run_checks(fac, request_level=sc.request_level)
    except InvalidInputError as exc:
        _invalid(exc)
    console.print(
        f"[green]valid[/] {sc.name}: {fac.n_gpus} x {fac.accelerator.name} in {fac.n_servers} servers, "
        f"{len(fac.pools)} workload(s), {sc.duration_s:g} s at {sc.step_s:g} s ticks"
    )
    err = serving_error(fac)
    if err is not None:
        console.print(err.describe(), highlight=False, soft_wrap=True)
    for issue in issues:
        console.print(f"[yellow]warning[/] {issue}")


@app.command("catalog")
def catalog_cmd() -> None:
    """List the built-in accelerators, models, loss curves and scenario presets."""
    from twin import catalog
    from twin.catalog.architecture import shipped_model_ids
    from twin.scenario import preset_names

    for title, names in (
        ("accelerators", catalog.accelerator_names()),
        ("models", catalog.model_names()),
        ("Hugging Face models (config.json shipped)", list(shipped_model_ids())),
        ("loss curves", catalog.loss_curve_names()),
        ("presets", preset_names()),
    ):
        console.print(f"[bold]{title}[/]: {', '.join(names)}")


@app.command()
def sweep(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Sweep spec YAML (base scenario + grid/points of dotted paths).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Sweep folder (default: sweeps/<spec name>).")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=0, help="LocalCluster worker processes (default: CPU count); 0 runs in this process."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and list the points; run nothing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="Threads of each point's run (default: TWIN_THREADS, else 1 with worker processes, every core "
            "with --workers 0). Results are the same to the bit.",
        ),
    ] = None,
) -> None:
    """Run every point of a sweep on Dask; one Parquet per point and a summary table.

    Finished points are skipped and failed ones retried when the sweep is run again. Exit codes:
    0 every point finished, 1 a point failed, 2 the spec is invalid, 130 interrupted.
    """
    from twin.engine.threads import THREADS_ENV
    from twin.output_paths import check_output_folder
    from twin.sweep import load_sweep, run_sweep
    from twin.sweep.store import INVALID, point_problem, status

    _use_threads(ctx, threads)

    try:
        sw = load_sweep(spec)
    except ScenarioError as exc:
        err_console.print(f"[bold red]invalid sweep spec[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    folder = out if out is not None else Path("sweeps") / sw.name
    if folder.exists() and not folder.is_dir():
        err_console.print(f"[bold red]invalid input[/] {folder} is a file, not a sweep folder", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    try:
        check_output_folder(folder, "--out")  # a file on its way, or a folder it may not write in
    except OutputPathError as exc:
        _invalid(exc)
    if dry_run:
        problems = []
        for p in sw.points:
            state = status(folder, p.key)
            console.print(f"{p.index:>4}  {p.key}  {state:<7}  {p.label()}", highlight=False)
            if state == INVALID:
                problems.append(f"point {p.index}: {point_problem(folder, p.key)}; a run computes it again")
        for line in problems:
            err_console.print(f"[yellow]invalid[/] {line}", highlight=False)
        console.print(f"{len(sw.points)} points, folder {folder}")
        return
    if threads is None and workers != 0 and not os.environ.get(THREADS_ENV, "").strip():
        _use_threads(ctx, 1)  # the points already run side by side, one worker process per core
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            console=err_console,
            disable=quiet,
        ) as bar:
            # Out of every point of the spec from the start: points a previous run finished count as done.
            task = bar.add_task(f"sweep {sw.name}", total=len(sw.points), failed="")
            n_failed = 0

            def advance(done: int, total: int, point: Any, state: str) -> None:
                nonlocal n_failed
                n_failed += state == "failed"
                skipped = len(sw.points) - total
                bar.update(task, completed=skipped + done, failed=f"[red]{n_failed} failed[/]" if n_failed else "")

            def invalid(point: Any, problem: str) -> None:
                err_console.print(f"[yellow]recomputing[/] point {point.index} ({point.label()}): {problem}")

            report = run_sweep(sw, folder, scheduler=scheduler, workers=workers, progress=advance, on_invalid=invalid)
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted[/]: finished points are kept in {folder}; run again to resume")
        raise typer.Exit(130) from None
    except TwinError as exc:
        err_console.print(f"[bold red]error[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if not quiet:
        _print_sweep(report)
    for p in report.failed:
        err_console.print(f"[bold red]failed[/] point {p.index} ({p.label()}): see {folder}/points/{p.key}.error.json")
    if report.failed:
        raise typer.Exit(1)


def _print_sweep(report: Any) -> None:
    """A table of the swept values and headline KPIs (the first 30 points), then the counts."""
    from twin.results import fmt_value

    frame = report.summary
    first = list(frame.columns).index("status")
    fields = list(frame.columns[2:first])
    formats = {
        "pue": ("PUE", "{:.3f}"),
        "tokens_per_kwh": ("tokens/kWh", "{:,.0f}"),
        "facility_energy_kwh": ("kWh", "{:,.0f}"),
        "water_l": ("water L", "{:,.0f}"),
    }
    kpis = [k for k in formats if k in frame.columns]
    table = Table(title=f"{len(frame)} points" + (" (first 30)" if len(frame) > 30 else ""))
    table.add_column("#", justify="right")
    for f in fields:
        table.add_column(f.rsplit(".", 1)[-1], overflow="fold")
    table.add_column("status")
    for k in kpis:
        table.add_column(formats[k][0], justify="right", no_wrap=True)
    for _, row in frame.head(30).iterrows():
        cells = [str(row["point"]), *(str(row[f]) for f in fields), str(row["status"])]
        cells += [fmt_value(row[k], formats[k][1]) if row["status"] == "ok" else "" for k in kpis]
        table.add_row(*cells)
    console.print(table)
    console.print(
        f"ran {report.ran}, skipped {report.skipped} finished, failed {len(report.failed)} "
        f"in {report.wall_time_s:.1f} s; wrote {report.out}/summary.parquet, summary.csv, points/"
    )


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 serves the network).")] = "127.0.0.1",
    browser: Annotated[bool, typer.Option(help="Open a browser tab.")] = False,
) -> None:
    """Serve the what-if dashboard (Streamlit) until Ctrl-C."""
    import os
    import sys

    from twin.dashboard.launch import streamlit_available, streamlit_command

    if not streamlit_available():
        err_console.print("[bold red]error[/] the dashboard needs Streamlit: pip install 'ai-factory-twin[dashboard]'")
        raise typer.Exit(EXIT_INVALID)
    console.print(f"dashboard at http://{address}:{port} (Ctrl-C stops it)")
    sys.stdout.flush()
    cmd = streamlit_command(port, address, headless=not browser)
    os.execv(cmd[0], cmd)  # Streamlit replaces this process: signals reach it directly


def _register_harness() -> None:
    """Add the harness commands (their torch import is deferred to when they run)."""
    from twin.harness import commands

    app.command("harness", help="Run the real PyTorch workload and record power/energy/tokens.")(commands.harness)
    app.command("follow", help="Watch a running harness's samples as they are written.")(commands.follow)


_register_harness()


def _register_validation() -> None:
    """Add ``twin validate-anchors`` (published anchors, power model against telemetry)."""
    from twin.validation import commands

    app.command("validate-anchors", help="Reproduce published measurements; compare the power model with telemetry.")(
        commands.validate_anchors
    )
    app.command("calibrate", help="Fit an accelerator catalog entry from harness output or a serving dataset.")(
        commands.calibrate
    )
    app.command("validate-serving", help="Run measured serving configurations through the twin; state the error.")(
        commands.validate_serving
    )
    app.command(
        "validate-latency", help="Run measured serving configurations request by request; state the ITL error."
    )(commands.validate_latency)


_register_validation()


def main() -> None:
    """Entry point of the ``twin`` command."""
    app()


if __name__ == "__main__":
    main()
