"""Servers grouped into columns: the hashed grouping is numpy's exact one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.engine import columns
from twin.engine.columns import Columns, distinct_rows


def _partition(row: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(row == g).tolist()) for g in np.unique(row)}


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(1, 4), st.integers(1, 4), st.data())
def test_distinct_rows_group_as_numpy_sorts_them(n, m, spread, data):
    values = st.sampled_from([0.0, 1.0, 2.5, -1.0, 60.000000000000014, 60.0][: spread + 2])
    keys = [np.array(data.draw(st.lists(values, min_size=n, max_size=n))) for _ in range(m)]
    first, row = distinct_rows(keys)
    _, ref_first, ref_row = np.unique(np.column_stack(keys), axis=0, return_index=True, return_inverse=True)
    assert _partition(row) == _partition(ref_row.reshape(-1))  # the same groups (a 1-ulp difference splits)
    assert np.all(np.diff(first) > 0) and np.array_equal(row[first], np.arange(first.size))  # first rows, in order
    assert sorted(first.tolist()) == sorted(ref_first.tolist())


def test_a_hash_collision_falls_back_to_the_exact_sort(monkeypatch):
    """Two unequal rows given one hash are told apart by the check that follows the hash."""
    monkeypatch.setattr(columns.pd.util, "hash_array", lambda x: np.zeros(x.size, dtype=np.uint64))
    first, row = distinct_rows([np.array([1.0, 2.0, 1.0]), np.array([3.0, 3.0, 3.0])])
    assert first.tolist() == [0, 1] and row.tolist() == [0, 1, 0]


def test_grouped_columns_sum_as_the_servers_do():
    """Two racks of four servers in three kinds: the columns' weighted sums are the servers' sums."""
    kinds = np.array([0.0, 1.0, 0.0, 2.0, 0.0, 1.0, 0.0, 2.0])
    cols = Columns.group([kinds], [np.zeros(2)], servers_per_rack=4)
    assert cols.n == 3 and cols.rack_rep.size == 1  # both racks hold the same columns: one rack column
    x = np.array([10.0, 20.0, 30.0])
    assert cols.total(x) == 4 * 10.0 + 2 * 20.0 + 2 * 30.0
    assert np.array_equal(cols.expand(x), x[[0, 1, 0, 2, 0, 1, 0, 2]])
