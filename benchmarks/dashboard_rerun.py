"""How long the dashboard takes to answer a lever change (headless, through Streamlit's AppTest).

Run: ``python benchmarks/dashboard_rerun.py``. Wall times of whole script reruns, simulations
included; a setting seen before comes from ``st.cache_data``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "twin" / "dashboard" / "app.py"


def timed(step: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def main() -> None:
    at = AppTest.from_file(str(APP), default_timeout=300)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("first page (default pod, 6 h: one run)", at.run),
        ("cooling -> air (one new 6 h run)", lambda: at.selectbox(key="cooling_type").set_value("air").run()),
        ("cooling -> liquid (cached)", lambda: at.selectbox(key="cooling_type").set_value("liquid").run()),
        ("fault -> utility outage (one new run)", lambda: at.selectbox(key="fault").set_value("utility_loss").run()),
        ("fault -> none (cached)", lambda: at.selectbox(key="fault").set_value("scenario").run()),
        (
            "arrivals -> Azure conversation trace (one new run)",
            lambda: at.selectbox(key="arrivals").set_value("azure-llm-2023-conv").run(),
        ),
        ("arrivals -> as in the scenario (cached)", lambda: at.selectbox(key="arrivals").set_value("scenario").run()),
        ("24 h (two new runs)", lambda: at.slider(key="duration_h").set_value(24.0).run()),
        ("rows 16 = 4 096 GPUs, 24 h (one new run)", lambda: at.slider(key="rows").set_value(16).run()),
    ]
    for label, step in steps:
        seconds = timed(step)
        assert not at.exception, at.exception
        print(f"{label:<52} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
