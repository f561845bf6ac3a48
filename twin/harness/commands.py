"""CLI functions for ``twin harness``, ``twin calibrate`` and ``twin follow`` (``--mirror``).

Plain functions with typer annotations; the main CLI registers them (``app.command()(harness)``).
torch is imported only when a harness actually runs, so importing this module needs no torch.
Bad input ends with a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from twin.errors import TwinError
from twin.output_paths import check_output_file, check_output_folder

T = TypeVar("T")

#: Default of ``twin follow --wait``: how long to wait for a harness file that does not exist yet.
#: A harness creates its CSV only after loading its model, which takes seconds (tiny) to about
#: a minute (7b on a GPU), so a minute covers a harness started together with the follower.
DEFAULT_WAIT_S: float = 60.0


def fail(message: str) -> NoReturn:
    """Print ``error: message`` and exit 2 (the harness commands' input errors)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _parse_list(text: str, cast: Callable[[str], T], flag: str, kind: str) -> list[T]:
    """Parse ``"1,2,4"``; exit with a message naming ``flag`` on anything else."""
    try:
        values = [cast(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values:
        fail(f"bad {flag} {text!r}: expected comma-separated {kind}, e.g. {flag} 1,8,32")
    return values


def fmt(value: Any, unit: str = "", digits: int = 4) -> str:
    """A number to ``digits`` significant digits with its unit; ``n/a`` for None or non-finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}{(' ' + unit) if unit else ''}"


def _echo_summary(s: Any) -> None:
    typer.echo(
        f"{s.device_name} ({s.device}, {s.dtype}), batch {s.batch}: {s.tokens} tokens in "
        f"{s.duration_s:.2f} s = {fmt(s.tokens_per_s, 'tokens/s')}"
    )
    typer.echo(
        f"  energy {fmt(s.energy_j, 'J')}, {fmt(s.j_per_token, 'J/token')}, mean "
        f"{fmt(s.mean_power_w, 'W')}, peak {fmt(s.peak_power_w, 'W')}, idle "
        f"{fmt(s.idle_power_w, 'W')}  [energy_source: {s.energy_source}]"
    )
    if s.energy_source == "estimated":
        typer.echo(f"  {s.energy_note}")
    if s.power_limit_status not in ("default", "set"):
        typer.echo(f"  power limit: {s.power_limit_status}")
    for note in s.notes:
        typer.echo(f"  note: {note}")


def harness(
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    seconds: Annotated[float, typer.Option(help="load seconds per run (after the idle baseline)")] = 10.0,
    batch: Annotated[int, typer.Option(help="sequences decoded together")] = 8,
    out: Annotated[Path, typer.Option(help="telemetry file (.csv or .parquet); a directory in sweep mode")] = Path(
        "harness.csv"
    ),
    prompt_len: Annotated[int, typer.Option(help="prompt tokens per sequence")] = 128,
    gen_len: Annotated[int, typer.Option(help="tokens generated per sequence per round")] = 128,
    sample_hz: Annotated[float, typer.Option(help="sampling rate [Hz]")] = 10.0,
    idle_seconds: Annotated[float, typer.Option(help="idle baseline before the load [s]")] = 2.0,
    model: Annotated[str, typer.Option(help="model size: tiny, small or 7b")] = "tiny",
    sweep_batches: Annotated[
        str | None, typer.Option(help="sweep these batch sizes, e.g. 1,8,32 (out = directory)")
    ] = None,
    power_limits: Annotated[
        str | None, typer.Option(help="sweep GPU power caps [W], e.g. 300,450,700 (needs root)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of weights and prompts")] = 0,
) -> None:
    """Run the decode workload and record power, energy and tokens (or sweep batch and cap)."""
    from twin.harness.run import require_device, run_harness, run_harness_sweep

    if device != "cpu" and not device.startswith("cuda"):
        fail(f"unknown --device {device!r}; use cpu or cuda")
    batches = _parse_list(sweep_batches, int, "--sweep-batches", "integers") if sweep_batches else None
    caps = _parse_list(power_limits, float, "--power-limits", "watts") if power_limits else None
    try:
        (check_output_folder if batches or caps else check_output_file)(out, "--out")  # before the run, not after
        require_device(device)
        options: dict[str, Any] = {
            "prompt_len": prompt_len,
            "gen_len": gen_len,
            "sample_hz": sample_hz,
            "idle_s": idle_seconds,
            "model": model,
            "seed": seed,
            "progress": lambda line: typer.echo(line, err=True),
        }
        if batches or caps:
            table = run_harness_sweep(device, seconds, batches or [batch], caps, out, **options)
            typer.echo(table.to_string(index=False))
            typer.echo(f"wrote {out / 'sweep.csv'} and {len(table)} point(s)")
            if (table["energy_source"] == "estimated").any():
                typer.echo("ENERGY IS ESTIMATED, NOT MEASURED (see each point's summary JSON)")
        else:
            summary = run_harness(device, seconds, batch, out, **options)
            _echo_summary(summary)
            typer.echo(f"wrote {out}")
    except (TwinError, ValueError) as exc:
        fail(str(exc))


def calibrate_file(file: Path, out: Path | None, base: str | None, name: str | None) -> None:
    """Fit an accelerator entry from harness output: idle/max power, achieved bandwidth/FLOP fractions.

    The body of ``twin calibrate`` (:func:`twin.validation.commands.calibrate`, which also takes
    serving datasets) for a harness file or sweep folder; exits 2 on bad input.
    """
    from twin.harness.calibrate import calibrate as fit
    from twin.harness.calibrate import calibration_path

    if not file.exists():
        fail(f"{file} does not exist")
    try:
        doc = fit(file, accelerator_base=base, name=name, out=out)
    except TwinError as exc:
        fail(str(exc))
    typer.echo(f"{doc['name']} (base {doc['base'] or 'none: CPU'}, energy {doc['energy_source']})")
    for key in doc["fitted"]:
        typer.echo(f"  {key} = {fmt(doc[key])}")
    for note in doc["notes"]:
        typer.echo(f"  note: {note}")
    typer.echo(f"wrote {out or calibration_path(file)}")


#: Columns of ``twin follow --mirror``'s rows: heading, width, and the row's value.
_MIRROR_COLUMNS: tuple[tuple[str, int, Callable[[dict[str, Any]], str]], ...] = (
    ("t [s]", 11, lambda r: f"{float(r['time_s']):g}-{float(r['time_s']) + float(r['duration_s']):g}"),
    ("device W", 9, lambda r: fmt(r["device_power_w"])),
    ("dev tok/s", 10, lambda r: fmt(r["device_tokens_per_s"])),
    ("GPUs", 6, lambda r: f"{r['gpus']:.0f}"),
    ("facility kW", 12, lambda r: fmt(r["facility_power_w"] / 1e3)),
    ("IT kW", 8, lambda r: fmt(r["it_power_w"] / 1e3)),
    ("PUE", 6, lambda r: fmt(r["pue"])),
    ("tokens/s", 9, lambda r: fmt(r["tokens_per_s"])),
    ("J/token", 8, lambda r: fmt(r["j_per_token_facility"])),
    ("total kWh", 10, lambda r: fmt(r["facility_energy_total_j"] / 3.6e6)),
    ("total tokens", 13, lambda r: f"{r['tokens_total']:.0f}"),
)


def _row_flag(label: str) -> str:
    """What each row carries of the device source's label: ``ESTIMATED`` for estimated power."""
    return "ESTIMATED" if "ESTIMATED" in label else ""


def _echo_mirror_header(label: str) -> None:
    cells = " ".join(f"{name:>{width}}" for name, width, _ in _MIRROR_COLUMNS)
    typer.echo(f"{cells}  {label}  (facility J/token; * not an exact mirror)")


def _echo_mirror_rows(frame: Any, start: int, label: str) -> None:
    flag = _row_flag(label)
    for row in frame.iloc[start:].to_dict("records"):
        cells = " ".join(f"{get(row):>{width}}" for _, width, get in _MIRROR_COLUMNS)
        star = " " if row["mirror_exact"] else "*"
        typer.echo(f"{cells}{star} {flag}".rstrip())


def _echo_mirror_summary(result: Any, file: Path, scenario: str) -> None:
    k, label = result.kpis, result.source.label
    state = "finished run" if result.finished else "run not finished"
    typer.echo(
        f"mirror of {file} ({state}) on {scenario}: {fmt(k['duration_s'], 's')}; device "
        f"{fmt(k['device_energy_j'], 'J')}, {fmt(k['device_mean_power_w'], 'W')} mean, "
        f"{fmt(k['device_tokens'], 'tokens')} ({fmt(k['device_tokens_per_s'], 'tok/s')}) {label}"
    )
    typer.echo(
        f"  fleet of {k['gpus']:.0f} GPUs: facility {fmt(k['facility_energy_kwh'], 'kWh')} "
        f"({fmt(k['mean_facility_power_w'] / 1e3, 'kW')} mean), IT {fmt(k['it_energy_j'] / 3.6e6, 'kWh')}, "
        f"PUE {fmt(k['pue'])}; {fmt(k['tokens'], 'tokens')} (measured x {k['gpus']:.0f}), "
        f"{fmt(k['tokens_per_kwh'], 'tokens/kWh')}, {fmt(k['j_per_token_facility'], 'J/token')} facility, "
        f"{fmt(k['j_per_token_it'], 'J/token')} IT {label}"
    )
    for note in result.notes:
        typer.echo(f"  note: {note} {label}")
    if result.source.energy_source == "estimated" and result.source.note:
        typer.echo(f"  {label} {result.source.note}")
    if result.finished:
        from twin.harness.io import read_summary
        from twin.harness.mirror import reconcile

        try:
            summary = read_summary(file)  # the summary alone: the samples were read already
        except TwinError as exc:
            fail(str(exc))
        why = reconcile(k, summary, float(result.frame["duration_s"].iloc[0]))
        if why is not None:
            typer.echo(f"  {why} {label}")


def follow(
    file: Annotated[Path, typer.Argument(help="harness output file being written (or finished)")],
    poll: Annotated[float, typer.Option(help="seconds between looks")] = 0.5,
    mirror: Annotated[
        str | None,
        typer.Option(help="mirror the device on every GPU of this scenario (preset name or YAML, e.g. default)"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a field of the mirror scenario: --set fleet.rows=1")
    ] = None,
    gpus: Annotated[int | None, typer.Option(help="mirror: resize the facility to this many GPUs")] = None,
    interval: Annotated[float, typer.Option(help="mirror: report interval [s]")] = 1.0,
    wait: Annotated[
        float,
        typer.Option(
            help="seconds to wait for a FILE that does not exist yet (the harness may still be starting); "
            "0 refuses at once, inf waits until Ctrl-C"
        ),
    ] = DEFAULT_WAIT_S,
) -> None:
    """Print a running harness's samples as they arrive (or, with --mirror, the facility they imply).

    Ends when the harness writes its summary (at once for a finished file). A FILE that does not
    exist yet is waited for, up to --wait seconds (default 60: a harness loads its model before
    it creates the file), with a note on stderr; then the command exits 2.
    """
    if not (wait >= 0):  # NaN too
        fail(f"--wait must be >= 0 seconds, got {wait}")
    if not (math.isfinite(poll) and poll > 0):
        fail(f"--poll must be > 0 seconds, got {poll}")
    from twin.harness.io import live_csv_path

    live = live_csv_path(file)
    if not live.exists():
        if wait == 0:
            fail(f"{live} does not exist (use --wait SECONDS to wait for a harness to create it)")
        limit = "until Ctrl-C" if math.isinf(wait) else f"up to {wait:g} s"
        typer.echo(f"waiting {limit} for {live} to appear (Ctrl-C stops)", err=True)
    wait_s = None if math.isinf(wait) else wait
    if mirror is None:
        if set_ or gpus is not None:
            fail("--set and --gpus need --mirror SCENARIO")
        _follow_samples(file, poll, wait_s)
        return
    from twin.harness.mirror import follow_mirror
    from twin.scenario.loader import parse_sets

    if not (math.isfinite(interval) and interval > 0):
        fail(f"--interval must be > 0, got {interval}")
    shown = 0
    last = None
    try:
        for result in follow_mirror(
            file, mirror, overrides=parse_sets(set_), gpus=gpus, interval_s=interval, poll_s=poll, wait_s=wait_s
        ):
            if last is None:
                for note in result.notes[:1]:
                    typer.echo(f"mirroring {file} on {mirror}: {note} {result.source.label}")
                _echo_mirror_header(result.source.label)
            _echo_mirror_rows(result.frame, shown, result.source.label)
            shown = len(result.frame)
            last = result
    except (TwinError, ValueError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C: stop following, report what was mirrored
        typer.echo("stopped")
    if last is None:
        fail(f"{file}: no complete {interval:g} s interval to mirror")
    _echo_mirror_summary(last, file, mirror)


def _follow_samples(file: Path, poll: float, wait_s: float | None) -> None:
    from twin.harness.follow import follow as tail
    from twin.harness.mirror import device_source

    last_t = math.nan
    try:
        for frame in tail(file, poll_s=poll, wait_s=wait_s):
            label = device_source(file).label
            for row in frame.to_dict("records"):
                t = float(row["time_s"])
                rate = float(row["tokens"]) / (t - last_t) if t > last_t else math.nan
                last_t = t
                typer.echo(
                    f"t={t:8.2f} s  {row['phase']:7s}  P={fmt(row['power_w'], 'W')}  "
                    f"E={fmt(row['energy_j'], 'J')}  u={fmt(row['utilization'])}  "
                    f"tokens/s={fmt(rate)}  {label}"
                )
    except TwinError as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C: stop following
        typer.echo("stopped")


__all__ = ["calibrate_file", "follow", "harness"]
