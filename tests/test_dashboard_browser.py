"""The dashboard in a real browser: ``streamlit run`` on localhost driven by Debian's chromium.

Playwright drives ``/usr/bin/chromium`` (never ``playwright install``). A missing chromium is a
failure, not a skip: ``tests/run_all.sh`` installs it, so CI always runs this test. Only
``TWIN_SKIP_BROWSER=1`` skips it (for a machine where a browser cannot run; CI never sets it).
``TWIN_DASHBOARD_SCREENSHOT=path.png`` also saves the last screenshot (a utility outage, down to
the fault section) there; the README's ``docs/dashboard.png`` is made this way.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from twin.dashboard.launch import streamlit_command

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("TWIN_SKIP_BROWSER") == "1", reason="TWIN_SKIP_BROWSER=1"),
]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (tests/run_all.sh does this)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit not healthy after {timeout_s} s:\n{log.read_text()}")


def _kwh(text: str) -> float:
    match = re.search(r"([\d,]+(?:\.\d+)?)\s*kWh", text)
    assert match, f"no kWh figure in {text!r}"
    return float(match.group(1).replace(",", ""))


def test_cooling_type_and_a_utility_outage_in_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    port = _free_port()
    log = tmp_path / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            streamlit_command(port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path
        )
    try:
        _wait_healthy(proc, port, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                # A tall viewport: Streamlit scrolls inside its own container, so full_page does not help.
                page = browser.new_page(viewport={"width": 1500, "height": 2700})
                page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                energy = page.get_by_test_id("stMetric").filter(has_text="Energy in (grid)")
                value = energy.get_by_test_id("stMetricValue")
                value.wait_for(timeout=90_000)
                page.get_by_text("The what-if equals the baseline").wait_for(timeout=30_000)
                before = _kwh(value.inner_text())

                # The lever: liquid -> air cooling (every watt through CRAHs and chillers).
                sidebar = page.get_by_test_id("stSidebar")
                sidebar.get_by_role("combobox", name="Cooling type").click()
                page.get_by_role("option", name="air", exact=True).click()
                page.get_by_text("--set cooling.type=air").wait_for(timeout=90_000)
                energy.get_by_test_id("stMetricDelta").wait_for(timeout=90_000)
                after = _kwh(value.inner_text())
                delta_text = energy.get_by_test_id("stMetricDelta").inner_text()

                page.wait_for_timeout(1500)  # let the charts finish drawing before the screenshot
                shot = tmp_path / "dashboard.png"
                page.screenshot(path=str(shot))

                # Back to liquid cooling (the baseline, cached), then a utility outage with no
                # generator: the battery carries the IT, the cooling stops with the utility.
                sidebar.get_by_role("combobox", name="Cooling type").click()
                page.get_by_role("option", name="liquid", exact=True).click()
                page.get_by_text("The what-if equals the baseline").wait_for(timeout=90_000)
                sidebar.get_by_role("combobox", name="Fault", exact=True).click()
                page.get_by_role("option", name="utility outage (battery, generator)").click()
                page.get_by_role("heading", name="Faults and controls").last.wait_for(timeout=90_000)
                sidebar.get_by_text("Enable: Generator start delay").click()
                page.get_by_text("--set power.generator").wait_for(state="detached", timeout=90_000)
                lost = page.get_by_test_id("stMetric").filter(has_text="Tokens lost")
                lost.get_by_test_id("stMetricDelta").wait_for(timeout=90_000)
                lost_text = lost.get_by_test_id("stMetricValue").inner_text()
                page.wait_for_timeout(1500)  # the fault section is within the tall viewport
                fault_shot = tmp_path / "dashboard-fault.png"
                page.screenshot(path=str(fault_shot))

                extra = os.environ.get("TWIN_DASHBOARD_SCREENSHOT")
                if extra:
                    Path(extra).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(fault_shot, extra)
            finally:
                browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    # Air cooling moves all heat through fans and chillers: more grid energy for the same IT work.
    assert after > before * 1.02, (before, after)
    assert delta_text.startswith("+"), delta_text
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
    # Without a generator the outage costs tokens (the GPUs overheat or the battery runs out).
    assert float(lost_text.split()[0].replace(",", "")) > 0, lost_text
    assert fault_shot.stat().st_size > 50_000
