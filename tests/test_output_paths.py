"""Output paths a command cannot write are refused before any work, naming the option and the path (exit 2)."""

from __future__ import annotations

import doctest
import os

import pytest
from typer.testing import CliRunner

import twin.output_paths as output_paths
from twin.cli import app
from twin.errors import OutputPathError
from twin.output_paths import check_output_file, check_output_folder


def test_a_folder_is_not_a_file_and_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "a.md").mkdir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match=r"--out .*a\.md is a folder; give a file to write"):
        check_output_file(tmp_path / "a.md", "--out")
    with pytest.raises(OutputPathError, match=r"--out .*f is a file; give a folder"):
        check_output_folder(tmp_path / "f", "--out")
    with pytest.raises(OutputPathError, match=r"f is a file, not a folder"):
        check_output_file(tmp_path / "f" / "deeper" / "r.md", "--out")
    check_output_file(tmp_path / "new" / "deeper" / "r.md", "--out")  # made when written
    check_output_file(tmp_path / "f", "--out")  # an existing file is replaced
    check_output_folder(tmp_path / "a.md", "--out")  # an existing folder is written into


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_folder_without_write_access_is_named(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="cannot write in"):
            check_output_file(ro / "r.md", "--out")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate-serving", "--out", "{dir}.md"], "--out {dir}.md is a folder"),
        (["validate-serving", "--accuracy-table", "{dir}.csv"], "--accuracy-table {dir}.csv is a folder"),
        (["validate-serving", "--out", "{file}/r.md"], "{file} is a file, not a folder"),
        (["validate-anchors", "--out", "{dir}.md"], "--out {dir}.md is a folder"),
        (["validate-latency", "--out", "{dir}.md"], "--out {dir}.md is a folder"),
        (["calibrate", "twin/data/mlenergy-v3", "--out", "{file}"], "--out {file} is a file; give a folder"),
        (["latency", "default", "--out", "{file}"], "--out {file} is a file; give a folder"),
        (["harness", "--seconds", "1", "--out", "{dir}.md"], "--out {dir}.md is a folder"),
        (["sweep", "scenarios/sweeps/power-cap-slo.yaml", "--out", "{file}/sub"], "{file} is a file, not a folder"),
    ],
)
def test_commands_refuse_an_output_they_cannot_write_before_working(tmp_path, monkeypatch, args, message):
    for d in ("{dir}.md", "{dir}.csv"):
        (tmp_path / d.replace("{dir}", "out")).mkdir()
    (tmp_path / "afile").write_text("x")

    def fill(text: str) -> str:
        return text.replace("{dir}", str(tmp_path / "out")).replace("{file}", str(tmp_path / "afile"))

    def no_work(*_a, **_k):
        raise AssertionError("worked before checking its output")

    for target in (
        "twin.simulation.simulate",
        "twin.validation.serving.predict",
        "twin.validation.anchors.run_anchors",
    ):
        monkeypatch.setattr(target, no_work)
    res = CliRunner().invoke(app, [fill(a) for a in args])
    assert res.exit_code == 2, res.output
    assert fill(message) in " ".join(res.output.split())


def test_docstring_examples():
    result = doctest.testmod(output_paths, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
