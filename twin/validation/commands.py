"""``twin validate-anchors``: published anchors and the power model against telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from twin.errors import OutputPathError, TraceFormatError, TwinError, UnknownNameError
from twin.output_paths import check_output_file, check_output_folder

console = Console()
err_console = Console(stderr=True)

#: Exit code for invalid input (as ``twin run``).
EXIT_INVALID = 2


def _writable(paths: list[tuple[Path | None, str]], folder: bool = False) -> None:
    """Refuse, before any work, output paths that cannot be written (exit 2 naming the option and path)."""
    check = check_output_folder if folder else check_output_file
    try:
        for path, option in paths:
            if path is not None:
                check(path, option)
    except OutputPathError as exc:
        err_console.print(f"[bold red]error[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None


def _cannot_write(path: Path, exc: OSError) -> NoReturn:
    """A write that failed after the work was done (the disk, a race): say which file, exit 1."""
    err_console.print(f"[bold red]error[/] cannot write {path}: {exc}", highlight=False)
    raise typer.Exit(1) from None


def validate_anchors(
    out: Annotated[
        list[Path] | None,
        typer.Option("--out", "-o", help="Write the table: FILE.md, FILE.csv or FILE.json (repeatable)."),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only this anchor (repeatable; default: all).")
    ] = None,
    no_anchors: Annotated[bool, typer.Option("--no-anchors", help="Skip the anchors (telemetry only).")] = False,
    telemetry: Annotated[
        list[Path] | None,
        typer.Option("--telemetry", help="nvidia-smi/DCGM CSV or harness output to compare the power model with."),
    ] = None,
    accelerator: Annotated[
        str | None,
        typer.Option(help="Catalog name or calibration YAML of the telemetry's GPU (harness: from its device)."),
    ] = None,
    boost_clock_mhz: Annotated[
        float | None, typer.Option(help="SM boost clock (default: the highest SM clock in the file).")
    ] = None,
    sm_activity_per_busy: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="SM activity while a kernel runs, fraction of utilisation.")
    ] = 1.0,
) -> None:
    """Run the published anchors (parameters.md section 7) and print predicted vs published."""
    from twin.validation.anchors import NOT_EXPRESSIBLE, run_anchors
    from twin.validation.table import NO_TELEMETRY_NOTE, rich_table, summary_line, write_table
    from twin.validation.telemetry import compare_power_file

    for path in out or []:
        if path.suffix.lower() not in (".md", ".csv", ".json"):
            err_console.print(f"[bold red]error[/] --out {path}: expected a .md, .csv or .json file", highlight=False)
            raise typer.Exit(EXIT_INVALID)
    _writable([(path, "--out") for path in out or []])
    results = []
    if not no_anchors:
        try:
            with console.status("running the anchors (about 10 s)"):
                results = run_anchors(only or None)
        except UnknownNameError as exc:
            err_console.print(f"[bold red]error[/] {exc}", highlight=False)
            raise typer.Exit(EXIT_INVALID) from None
    comparisons = []
    for path in telemetry or []:
        try:
            comparisons.append(
                compare_power_file(
                    path,
                    accelerator,
                    boost_clock_hz=None if boost_clock_mhz is None else boost_clock_mhz * 1e6,
                    sm_activity_per_busy=sm_activity_per_busy,
                )
            )
        except (TraceFormatError, TwinError) as exc:
            err_console.print(f"[bold red]error[/] {path}: {exc}", highlight=False)
            raise typer.Exit(EXIT_INVALID) from None
    skipped = NOT_EXPRESSIBLE if not (only or no_anchors) else ()
    if results:
        console.print(rich_table(results))
        console.print(summary_line(results, skipped))
    if skipped:
        console.print(f"not expressible: {', '.join(s.key for s in skipped)}")
    if comparisons:
        table = Table(title="Power model against telemetry")
        for name in ("source", "accelerator", "samples", "MAPE", "bias"):
            table.add_column(name, justify="left" if name in ("source", "accelerator") else "right")
        for c in comparisons:
            table.add_row(c.source, c.accelerator, str(c.n_samples), f"{c.mape_pct:.1f} %", f"{c.bias_pct:+.1f} %")
        console.print(table)
        for c in comparisons:
            for note in c.notes:
                console.print(f"[yellow]note[/] {c.source}: {note}", highlight=False)
    elif not no_anchors:
        console.print(NO_TELEMETRY_NOTE, highlight=False)
    command = "twin validate-anchors" + "".join(f" --only {k}" for k in only or [])
    for path in out or []:
        try:
            written = write_table(path, results, skipped, comparisons, command=f"{command} --out {path}")
        except ValueError as exc:
            err_console.print(f"[bold red]error[/] {exc}", highlight=False)
            raise typer.Exit(EXIT_INVALID) from None
        except OSError as exc:
            _cannot_write(path, exc)
        console.print(f"wrote {written}")


def validate_serving(
    dataset: Annotated[
        Path | None,
        typer.Argument(help="Dataset folder (llm_configs.csv [+ raw/models/]) or CSV; default: shipped ML.ENERGY v3."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the report FILE.md, with FILE.csv and FILE-parity.png beside it."),
    ] = None,
    accuracy_table_csv: Annotated[
        Path | None,
        typer.Option(
            "--accuracy-table",
            help="Write the held-out error per accelerator to FILE.csv (the shipped one: "
            "twin/catalog/serving_accuracy.csv, which every serving run states).",
        ),
    ] = None,
) -> None:
    """Run every measured serving configuration through the twin; state the error (held-out models)."""
    from twin.validation.serving import predict
    from twin.validation.serving_data import read_serving_dataset
    from twin.validation.serving_report import (
        CSV_COLUMNS,
        TARGETS_PCT,
        accuracy_line,
        accuracy_table,
        markdown,
        misses,
        parity_plot,
        summary,
        with_errors,
    )

    if out is not None and out.suffix.lower() != ".md":
        err_console.print(f"[bold red]error[/] --out {out}: expected a .md file", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    if accuracy_table_csv is not None and accuracy_table_csv.suffix.lower() != ".csv":
        err_console.print(
            f"[bold red]error[/] --accuracy-table {accuracy_table_csv}: expected a .csv file", highlight=False
        )
        raise typer.Exit(EXIT_INVALID)
    siblings = [] if out is None else [out, out.with_suffix(".csv"), out.with_name(out.stem + "-parity.png")]
    _writable([*((path, "--out") for path in siblings), (accuracy_table_csv, "--accuracy-table")])
    try:
        configs = read_serving_dataset(dataset)
    except TraceFormatError as exc:
        err_console.print(f"[bold red]error[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    with console.status(f"running {len(configs)} configurations"):
        errors = with_errors(predict(configs))
    table = Table(title="Serving model against measurement (MAPE)")
    for name in ("half", "GPU", "configurations", "power", "J/token", "tokens/s", "ITL p50"):
        table.add_column(name, justify="left" if name in ("half", "GPU") else "right")
    for r in summary(errors).to_dict("records"):
        table.add_row(r["half"], r["gpu"], str(r["configurations"]), *(f"{r[k]:.1f} %" for k in TARGETS_PCT))
    console.print(table)
    m = misses(errors)
    if not m.empty:
        console.print(f"held-out configurations missing a target: {int(m['configurations'].sum())} in {len(m)} groups")
    if out is not None:
        label = "twin/data/mlenergy-v3 (shipped)" if dataset is None else str(dataset)
        command = "twin validate-serving" + ("" if dataset is None else f" {dataset}") + f" --out {out}"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            plot = parity_plot(errors, out.with_name(out.stem + "-parity.png"))
            out.write_text(markdown(errors, label, command, plot.name))
            errors.loc[:, list(CSV_COLUMNS)].to_csv(out.with_suffix(".csv"), index=False)
        except OSError as exc:
            _cannot_write(out, exc)
        console.print(f"wrote {out}, {out.with_suffix('.csv')}, {plot}")
    if accuracy_table_csv is not None:
        try:
            accuracy_table_csv.parent.mkdir(parents=True, exist_ok=True)
            accuracy_table(errors).to_csv(accuracy_table_csv, index=False)
        except OSError as exc:
            _cannot_write(accuracy_table_csv, exc)
        console.print(f"wrote {accuracy_table_csv}")
    console.print(accuracy_line(errors), highlight=False, soft_wrap=True)


def validate_latency(
    dataset: Annotated[
        Path | None,
        typer.Argument(help="Dataset folder (llm_configs.csv [+ raw/models/]) or CSV; default: shipped ML.ENERGY v3."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the report FILE.md.")] = None,
    all_configs: Annotated[
        bool, typer.Option("--all", help="Every held-out configuration (default: 3 batch caps per model x GPU x task).")
    ] = False,
) -> None:
    """Run measured configurations request by request; state the ITL p50/p90/p99 error (held-out models)."""
    from twin.validation.latency import markdown, validate_latency

    if out is not None and out.suffix.lower() != ".md":
        err_console.print(f"[bold red]error[/] --out {out}: expected a .md file", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    _writable([(out, "--out")])
    try:
        with console.status("running configurations request by request (a few seconds each)"):
            result = validate_latency(dataset, subset=not all_configs)
    except TraceFormatError as exc:
        err_console.print(f"[bold red]error[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    table = Table(title="Request-level ITL against measurement (MAPE, held-out models)")
    for name in ("GPU", "configurations", "ITL p50", "ITL p90", "ITL p99", "fluid ITL p50"):
        table.add_column(name, justify="left" if name == "GPU" else "right")
    for r in result.mape.to_dict("records"):
        keys = ("itl_p50", "itl_p90", "itl_p99", "fluid_itl_p50")
        table.add_row(r["gpu"], str(int(r["configurations"])), *(f"{r[k]:.1f} %" for k in keys))
    console.print(table)
    if out is not None:
        command = (
            "twin validate-latency" + ("" if dataset is None else f" {dataset}") + (" --all" if all_configs else "")
        )
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(markdown(result, f"{command} --out {out}"))
        except OSError as exc:
            _cannot_write(out, exc)
        console.print(f"wrote {out}")
    console.print(result.last_line(), highlight=False, soft_wrap=True)


__all__ = ["validate_anchors", "validate_latency", "validate_serving"]


def calibrate(
    file: Annotated[Path, typer.Argument(help="harness output file or sweep folder, or a serving dataset")],
    out: Annotated[Path | None, typer.Option(help="YAML entry to write (a folder for a dataset)")] = None,
    base: Annotated[str | None, typer.Option(help="catalog SKU for peaks (GPU runs; guessed if omitted)")] = None,
    name: Annotated[str | None, typer.Option(help="name of the new entry")] = None,
) -> None:
    """Fit an accelerator entry: from harness output, or from measured serving configurations.

    A harness file (or sweep folder) gives idle/max power and achieved bandwidth/FLOP fractions
    (:func:`twin.harness.commands.calibrate_file`). A serving dataset (a folder with
    ``llm_configs.csv``, the ML.ENERGY v3 format) gives one entry per catalogued GPU in it,
    fitted on half of its models (:mod:`twin.validation.serving_fit`).
    """
    from twin.harness import commands as harness

    if not file.exists():
        harness.fail(f"{file} does not exist")
    if (file / "llm_configs.csv").exists() or (file.suffix == ".csv" and "model_id" in _head_text(file)):
        _writable([(out, "--out")], folder=True)  # one YAML entry per GPU in it
        _calibrate_serving(file, out)
        return
    _writable([(out, "--out")])
    harness.calibrate_file(file, out, base, name)


def _head_text(file: Path, n: int = 2000) -> str:
    """The first ``n`` bytes of a file as text (undecodable bytes replaced; the reader judges them)."""
    from twin.harness.commands import fail

    try:
        with file.open("rb") as fh:
            return fh.read(n).decode("utf-8", errors="replace")
    except OSError as exc:
        fail(f"{file}: cannot read the file: {exc}")


def _calibrate_serving(dataset: Path, out: Path | None) -> None:
    """Fit every catalogued GPU of a serving dataset; write one YAML entry per GPU into ``out``."""
    import yaml

    from twin import catalog
    from twin.harness.commands import fail, fmt
    from twin.harness.io import atomic_write_text
    from twin.validation.serving_data import read_serving_dataset
    from twin.validation.serving_fit import calibration_entry, fit_dataset

    try:
        configs = read_serving_dataset(dataset)
    except TwinError as exc:
        fail(str(exc))
    names = sorted(n for n in set(configs["accelerator"]) if n)
    typer.echo(f"fitting {', '.join(names)} on the fit half of {dataset} (about 30 s per GPU)")
    fits = fit_dataset(configs, {n: catalog.accelerator_spec(n) for n in names})
    folder = out or Path("calibration-serving")
    for gpu, f in fits.items():
        entry = calibration_entry(f, catalog.accelerator_spec(gpu), str(dataset))
        path = folder / f"{gpu}.yaml"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, yaml.safe_dump(entry, sort_keys=False))
        except OSError as exc:
            _cannot_write(path, exc)
        typer.echo(f"{gpu}: {f.configurations} configurations of {len(f.models)} models")
        for key, value in f.values.items():
            typer.echo(f"  {key} = {fmt(value)}")
        if f.at_bounds:
            typer.echo(f"  on a bound of the fit (the data push past it): {'; '.join(f.at_bounds)}")
        typer.echo(f"wrote {path}")
