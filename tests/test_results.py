import pandas as pd

from twin import simulate
from twin.results import Result


def test_parquet_round_trip(short_default, tmp_path):
    r = simulate(short_default)
    r.save(tmp_path)
    back = Result.load(tmp_path)
    pd.testing.assert_frame_equal(back.timeseries, r.timeseries)
    pd.testing.assert_frame_equal(back.ledger, r.ledger)
    assert back.kpis == r.kpis and back.seed == r.seed
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_unit_suffixed_columns(short_default):
    r = simulate(short_default)
    for col in r.ledger.columns:
        assert col == "time_s" or col.endswith("_j")
    power_cols = [c for c in r.timeseries.columns if "power" in c]
    assert all(c.endswith("_w") for c in power_cols)
