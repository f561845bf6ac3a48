"""What the dashboard's fault and workload-trace levers give on the default pod (README table).

Run: ``python benchmarks/dashboard_whatifs.py``. Each row is the lever values the page would send,
turned into overrides by :func:`twin.dashboard.levers.what_if_overrides` and simulated for the
dashboard's default 6 h, from the scenario's midnight start (the page's own window is 6 h around
the 14:00 peak: :func:`twin.dashboard.levers.window_start`); ``--verbose`` also prints each run's
events and ``twin run`` line.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import twin
from twin.dashboard import levers as lv

CASES: list[tuple[str, dict[str, Any]]] = [
    ("none (baseline)", {}),
    ("utility outage (5 min battery, generator 10 s)", {"fault": "utility_loss"}),
    (
        "... generator 900 s, cooling plant on the UPS",
        {"fault": "utility_loss", "generator_delay_s": 900.0, "cooling_on_ups": True},
    ),
    ("... generator off", {"fault": "utility_loss", "generator_delay_s": None}),
    ("CDU pump failure, 4 of 4", {"fault": "cdu_pump_fail", "fault_count": 4}),
    ("feed A loss", {"fault": "feed_loss"}),
    ("server failures, 8", {"fault": "server_fail", "fault_count": 8}),
    ("Azure code trace on code-8b", {"arrivals": "azure-llm-2023-code", "arrivals_pool": "code-8b"}),
    ("Azure conversation trace on both pools", {"arrivals": "azure-llm-2023-conv"}),
]


def main(verbose: bool = False) -> None:
    base = twin.load_scenario("default")
    run = {k: v for k, v in lv.run_overrides(base, lv.DEFAULT_DURATION_H).items() if k != "start"}
    print(
        "| what-if levers | facility kWh | tokens out [1e6] | tokens lost [1e6] | load shed kWh | "
        "battery min | fault to shutdown [s] | code-8b TTFT p50/p99 [ms] |"
    )
    for label, values in CASES:
        overrides = {**run, **lv.what_if_overrides(base, values)}
        result = twin.simulate(twin.load_scenario("default", overrides))
        k = result.kpis
        soc = k.get("battery_min_soc", math.nan)
        shutdown = k.get("time_to_thermal_shutdown_s", math.nan)
        print(
            f"| {label} | {k['facility_energy_kwh']:,.0f} | {k['tokens_out'] / 1e6:,.0f} | "
            f"{k['tokens_lost'] / 1e6:,.1f} | {k['load_shed_j'] / 3.6e6:,.1f} | {soc:.3f} | {shutdown:,.0f} | "
            f"{k['code-8b_ttft_p50_s'] * 1e3:,.0f} / {k['code-8b_ttft_p99_s'] * 1e3:,.0f} |"
        )
        if verbose:
            print("    " + lv.cli_command("default", overrides))
            for row in result.events.itertuples(index=False):
                print(f"    {row.time_s:10.1f} s  {row.event} {row.detail}")


if __name__ == "__main__":
    main(verbose="--verbose" in sys.argv[1:])
