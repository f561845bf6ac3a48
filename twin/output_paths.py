"""Output paths a command writes, checked before it does any work.

A command that computes for seconds or minutes (a validation, a fit, a latency replay) and then
fails to write its result loses that work and shows a traceback. These checks refuse such a path
up front with an :class:`~twin.errors.OutputPathError` (the CLI exits 2) that names the option and
the path. A run's folder has its own, stricter check (:func:`twin.results.check_output_dir`).
"""

from __future__ import annotations

import os
from pathlib import Path

from twin.errors import OutputPathError


def check_output_file(path: str | Path, option: str) -> None:
    """Refuse ``path`` as a file to write: an existing folder, or a file (or no access) on its way.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> check_output_file(os.path.join(folder, "new", "report.md"), "--out")  # made when written
    >>> check_output_file(folder, "--out")
    Traceback (most recent call last):
    ...
    twin.errors.OutputPathError: --out ... is a folder; give a file to write
    """
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{option} {p} is a folder; give a file to write")
    _check_on_the_way(p, option)


def check_output_folder(path: str | Path, option: str) -> None:
    """Refuse ``path`` as a folder to write into: an existing file, or a file (or no access) on its way."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{option} {p} is a file; give a folder")
    _check_on_the_way(p, option)


def _check_on_the_way(p: Path, option: str) -> None:
    """The nearest folder above ``p`` that exists must be a folder we may write in."""
    for above in p.absolute().parents:
        if not above.exists():
            continue
        if not above.is_dir():
            raise OutputPathError(f"{option} {p}: {above} is a file, not a folder")
        if not os.access(above, os.W_OK | os.X_OK):
            raise OutputPathError(f"{option} {p}: cannot write in {above}")
        return
