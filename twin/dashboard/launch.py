"""Starting the dashboard: the ``streamlit run`` command line that ``twin dashboard`` executes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

#: The Streamlit script.
APP_PATH = Path(__file__).resolve().parent / "app.py"


def streamlit_available() -> bool:
    """Whether Streamlit is installed (the ``dashboard`` extra)."""
    return importlib.util.find_spec("streamlit") is not None


def streamlit_command(port: int = 8501, address: str = "127.0.0.1", headless: bool = True) -> list[str]:
    """Arguments that run the app with this interpreter's Streamlit on ``address:port``.

    ``-P`` keeps the working folder off ``sys.path``: started next to a clone (a ``twin/`` folder
    in the working folder), ``import twin`` in the app still gets the installed package, not the
    folder. The working folder stays the user's, so relative scenario paths typed in the page
    resolve as in ``twin run``.
    ``headless`` stops Streamlit from opening a browser and from asking for an e-mail; usage
    statistics, the file watcher (the app is not edited while it runs) and the developer toolbar
    are off.
    """
    return [
        sys.executable,
        "-P",
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.port",
        str(int(port)),
        "--server.address",
        address,
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
    ]
