"""Shared fixtures: short scenarios built from the default preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def short_default() -> Scenario:
    """The default pod for one hour at 10 s ticks and 5-minute reports."""
    return load_scenario("default", {"duration_s": 3600, "step_s": 10, "report_interval_s": 300})


@pytest.fixture
def one_server() -> Scenario:
    """One 8-GPU server with a constant 8B load: small enough to check by hand."""
    return load_scenario(
        "default",
        {
            "fleet.rows": 1,
            "fleet.racks_per_row": 1,
            "fleet.servers_per_rack": 1,
            "duration_s": 600,
            "step_s": 1,
            "report_interval_s": 60,
            "site.other_facility_power_w": 0,
            "workloads": [
                {
                    "name": "chat",
                    "kind": "inference",
                    "model": "Llama-3.1-8B",
                    "servers": 1,
                    "tensor_parallel": 1,
                    "max_batch": 256,
                    "arrivals": {"kind": "constant", "requests_per_s": 20, "prompt_tokens": 500, "output_tokens": 200},
                }
            ],
        },
    )
