"""The engine's results are pinned: optimisations must not change them beyond float rounding.

The reference (``tests/data/engine_reference.json``, see ``tests/engine_reference.py``) was computed
before the engine was made faster (block spanning report intervals, grouped identical servers,
closed-form die steps). Each case reruns and compares every KPI, the sum of every time-series and
ledger column, the number of report rows and the event log.
"""

from __future__ import annotations

import json
import math

import pytest
from engine_reference import REFERENCE, cases, summarise

RTOL = 1e-12
REF = json.loads(REFERENCE.read_text())
CASES = cases()


def _close(a: float | None, b: float | None, abs_tol: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=abs_tol)


@pytest.mark.parametrize("name", sorted(REF))
def test_results_match_the_reference(name: str) -> None:
    got = summarise(CASES[name])
    ref = REF[name]
    assert got["rows"] == ref["rows"]
    # Ledger residuals are rounding (a few microjoules): held to the balance tolerance instead.
    residual_tol = 1e-9 * ref["kpis"]["facility_energy_j"]
    for part in ("kpis", "timeseries_sums", "ledger_sums"):
        assert set(got[part]) == set(ref[part]), part
        bad = {
            k: (got[part][k], v)
            for k, v in ref[part].items()
            if not _close(got[part][k], v, residual_tol if k.endswith("residual_j") else 1e-6)
        }
        assert not bad, f"{part} differ: {bad}"
    assert [e for _, e in got["events"]] == [e for _, e in ref["events"]]
    for (t, _), (t_ref, _) in zip(got["events"], ref["events"], strict=True):
        assert t == pytest.approx(t_ref, rel=1e-12, abs=1e-9)
    # Every joule is accounted for.
    assert abs(got["kpis"]["ledger_residual_j"]) <= 1e-9 * got["kpis"]["facility_energy_j"]
