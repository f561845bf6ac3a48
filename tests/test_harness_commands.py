"""The CLI functions, registered on a throw-away typer app as the main CLI will do."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from twin.harness import commands
from twin.validation import commands as validation_commands

app = typer.Typer()
app.command()(commands.harness)
app.command()(validation_commands.calibrate)
app.command()(commands.follow)
runner = CliRunner()


def test_cuda_without_a_gpu_exits_2_with_a_clear_message(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = runner.invoke(app, ["harness", "--device", "cuda", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "CUDA not available on this machine; use --device cpu" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "tpu"], "unknown --device"),
        (["--sweep-batches", "1,x"], "bad --sweep-batches '1,x'"),
        (["--power-limits", "lots"], "bad --power-limits"),
        (["--batch", "0"], "batch=0"),
    ],
)
def test_bad_input_exits_2(tmp_path, args, message):
    pytest.importorskip("torch")
    result = runner.invoke(app, ["harness", "--out", str(tmp_path / "x.csv"), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_run_then_calibrate_then_follow(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "cli.csv"
    args = ["harness", "--seconds", "0.5", "--batch", "1", "--idle-seconds", "0.3"]
    result = runner.invoke(app, [*args, "--prompt-len", "16", "--gen-len", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "tokens/s" in result.output
    assert "J/token" in result.output
    if "energy_source: estimated" in result.output:
        assert "ENERGY IS ESTIMATED, NOT MEASURED" in result.output

    result = runner.invoke(app, ["calibrate", str(out), "--out", str(tmp_path / "cpu.yaml")])
    assert result.exit_code == 0, result.output
    assert "idle_power_w" in result.output
    assert (tmp_path / "cpu.yaml").exists()

    result = runner.invoke(app, ["follow", str(out), "--poll", "0.01"])
    assert result.exit_code == 0, result.output
    assert "decode" in result.output
    assert "tokens/s=" in result.output


def test_sweep_mode_writes_a_sweep_table(tmp_path):
    pytest.importorskip("torch")
    args = ["harness", "--seconds", "0.3", "--idle-seconds", "0", "--sweep-batches", "1,2"]
    args += ["--prompt-len", "8", "--gen-len", "8", "--power-limits", "250", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sweep.csv").exists()
    assert "not supported" in result.output  # no caps on a CPU meter


def test_calibrate_missing_file_exits_2(tmp_path):
    result = runner.invoke(app, ["calibrate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_core_modules_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import twin.harness.commands, twin.harness.calibrate, twin.harness.follow\n"
        "import twin.harness.meter, twin.harness.cpu, twin.harness.nvml, twin.harness.run\n"
        "import twin.harness.summary, twin.harness.sampler, twin.harness.io\n"
        "from twin.harness import HarnessError\n"
        "from twin.harness.run import require_device\n"
        "try:\n"
        "    require_device('cpu')\n"
        "except HarnessError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert "torch is not installed" in result.stdout
    assert "ai-factory-twin[harness]" in result.stdout
