"""Servers as columns: identical servers are computed once, with a count.

Servers of a pool that receive identical inputs over a block (a fluid or unshifted source; a job
trace's servers in jobs, or idle, throughout it), in identical state (die temperature, queues,
GPUs and power units up, cap, paused) evolve identically, so the engine
computes one *column* per group of them and weights every sum over servers by the group's count
(ARCHITECTURE: "identical accelerators under identical load may be simulated as groups with a
count; per-device state only where it differs"). Racks likewise: racks holding the same columns
with the same PDUs up are one rack column. The state stays per server; a block reads its
columns' representatives and writes each server's value back from its column, so a fault that
touches some servers of a group simply splits it at the next block, and so does a job starting or
ending on some of them (the engine regroups before each block where the demand's classes split a
group, and afresh every few dozen blocks to merge servers whose state has come together again).

When grouping would save little (more than half as many columns as servers) the mapping is the
identity and every operation is the plain per-server one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin._types import BoolArray, FloatArray, IntArray

#: Group only when it at least halves the columns.
GROUP_WHEN_BELOW = 0.5
#: Odd 64-bit multiplier that mixes each key's hash into a row's (the golden ratio's, as in Fibonacci hashing).
_MIX = np.uint64(0x9E3779B97F4A7C15)


def distinct_rows(keys: Sequence[FloatArray]) -> tuple[IntArray, IntArray]:
    """The distinct rows of equal-length key arrays: the first row of each, and each row's distinct row.

    Distinct rows are numbered in order of first appearance, so their first rows ascend. Rows are
    told apart by a 64-bit hash of their values (``pandas.util.hash_array``, mixed key by key) and
    factorised in one pass; the grouping is then checked value by value, and a hash that two
    unequal rows share (or a NaN, never equal to itself) falls back to numpy's sort of the rows.
    A large fleet regroups in milliseconds, where sorting its rows took a tenth of a second.

    >>> first, row = distinct_rows([np.array([1.0, 2.0, 1.0, 3.0]), np.array([5.0, 5.0, 5.0, 5.0])])
    >>> first.tolist(), row.tolist()
    ([0, 1, 3], [0, 1, 0, 2])
    """
    h = np.zeros(keys[0].size, dtype=np.uint64)
    for x in keys:
        h = (h ^ pd.util.hash_array(np.ascontiguousarray(x, dtype=np.float64))) * _MIX
    row = np.asarray(pd.factorize(h)[0], dtype=np.int64)
    first = np.flatnonzero(np.diff(np.maximum.accumulate(row), prepend=-1) > 0)
    if all(np.array_equal(x, x[first][row]) for x in keys):
        return first, row
    _, first, row = np.unique(np.column_stack(keys), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order].astype(np.int64), rank[row.reshape(-1)].astype(np.int64)


@dataclass(frozen=True)
class Columns:
    """Mapping between servers and computed columns (and racks and rack columns).

    Attributes
    ----------
    rep : ndarray of int (G,)
        A representative server of each column.
    col : ndarray of int (S,)
        Column of each server.
    weight : ndarray (G,)
        Servers in each column.
    identity : bool
        One column per server, in order (no grouping).
    rack_cols : ndarray of int (R_u, servers_per_rack)
        Columns of the servers of each rack column.
    rack_rep : ndarray of int (R_u,)
        A representative rack of each rack column.
    rack_weight : ndarray (R_u,)
        Racks in each rack column.
    rack_col : ndarray of int (R,)
        Rack column of each rack.
    """

    rep: IntArray
    col: IntArray
    weight: FloatArray
    identity: bool
    rack_cols: IntArray
    rack_rep: IntArray
    rack_weight: FloatArray
    rack_col: IntArray

    @classmethod
    def single(cls, n_servers: int, servers_per_rack: int) -> Columns:
        """One column per server."""
        idx = np.arange(n_servers, dtype=np.int64)
        n_racks = n_servers // servers_per_rack
        racks = np.arange(n_racks, dtype=np.int64)
        by_rack = idx.reshape(n_racks, servers_per_rack)
        return cls(idx, idx, np.ones(n_servers), True, by_rack, racks, np.ones(n_racks), racks)

    @staticmethod
    def may_group(classes: FloatArray) -> bool:
        """Whether servers of these demand classes could share few enough columns to group them."""
        return bool(np.unique(classes).size <= GROUP_WHEN_BELOW * classes.size)

    @classmethod
    def group(
        cls, server_keys: Sequence[FloatArray], rack_keys: Sequence[FloatArray], servers_per_rack: int
    ) -> Columns:
        """Group servers with equal values in every array of ``server_keys`` (each ``(S,)``), racks likewise."""
        n_servers = server_keys[0].size
        rep, col = distinct_rows(server_keys)
        if rep.size > GROUP_WHEN_BELOW * n_servers:
            return cls.single(n_servers, servers_per_rack)
        weight = np.bincount(col, minlength=rep.size).astype(np.float64)
        by_rack = col.reshape(-1, servers_per_rack)
        rack_rep, rack_col = distinct_rows([*by_rack.T.astype(np.float64), *rack_keys])
        rack_weight = np.bincount(rack_col, minlength=rack_rep.size).astype(np.float64)
        return cls(rep, col, weight, False, by_rack[rack_rep], rack_rep, rack_weight, rack_col)

    @property
    def n(self) -> int:
        """Number of columns."""
        return int(self.rep.size)

    def take(self, per_server: np.ndarray) -> np.ndarray:
        """Per-column values of a per-server array (last axis)."""
        return per_server if self.identity else per_server[..., self.rep]

    def take_rack(self, per_rack: np.ndarray) -> np.ndarray:
        """Per-rack-column values of a per-rack array (last axis)."""
        return per_rack if self.identity else per_rack[..., self.rack_rep]

    def expand(self, per_column: np.ndarray) -> np.ndarray:
        """Per-server values of a per-column array (last axis)."""
        return per_column if self.identity else per_column[..., self.col]

    def is_current(self, server_keys: Sequence[FloatArray], rack_keys: Sequence[FloatArray]) -> bool:
        """True when every server still has its column's keys (nothing split the groups)."""
        if self.identity:
            return False
        return all(np.array_equal(x, x[self.rep][self.col]) for x in server_keys) and all(
            np.array_equal(x, x[self.rack_rep][self.rack_col]) for x in rack_keys
        )

    def pool_columns(self, servers: IntArray, n_servers: int) -> BoolArray | slice:
        """The columns of a pool's ``servers`` (ascending): a slice (views) where contiguous, else a mask.

        Groups never span pools (their servers' classes differ), so the columns of contiguous
        servers are those whose representative lies among them.
        """
        if servers.size and int(servers[-1]) - int(servers[0]) + 1 == servers.size:
            if self.identity:
                return slice(int(servers[0]), int(servers[-1]) + 1)
            # Columns are in server order and a group never spans two pools (their classes differ).
            a, b = np.searchsorted(self.rep, [int(servers[0]), int(servers[-1]) + 1])
            return slice(int(a), int(b))
        mask = np.zeros(n_servers, dtype=bool)
        mask[servers] = True
        return self.take(mask)

    def total(self, x: FloatArray, mask: BoolArray | slice | None = None, by: FloatArray | None = None) -> FloatArray:
        """Sum over servers (last axis) of per-column values, optionally of the columns in ``mask``.

        ``by`` (per column, or per tick and column) multiplies the values on those columns only.
        """
        if mask is not None:
            x = x[..., mask]
            by = None if by is None else by[..., mask]
        if by is not None:
            x = x * by
        if self.identity:
            return np.asarray(x.sum(axis=-1))
        w = self.weight if mask is None else self.weight[mask]
        return np.asarray((x * w).sum(axis=-1))

    def count(self, mask: BoolArray) -> float:
        """Servers in the columns of ``mask``."""
        return float(self.weight[mask].sum())

    def rack_in(self, x: FloatArray) -> FloatArray:
        """Sum of per-column values over the servers of each rack column: ``(K, G) -> (K, R_u)``."""
        return np.asarray(x[..., self.rack_cols].sum(axis=-1))

    def rack_total(self, x: FloatArray) -> FloatArray:
        """Sum over racks (last axis) of per-rack-column values."""
        if self.identity:
            return np.asarray(x.sum(axis=-1))
        return np.asarray((x * self.rack_weight).sum(axis=-1))
