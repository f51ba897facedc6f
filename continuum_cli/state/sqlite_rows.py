"""The `lim_state` rows one connection last read or wrote, so that an admission on a router
that is the only writer reads nothing.

The cache is valid while no other connection has written the file: SQLite's
`PRAGMA data_version` changes exactly when another connection (another replica, or this
store's own thread) commits, and `begin` drops everything then. A transaction's own writes are
staged and kept only once it commits. Reading is all-or-nothing per key: a row is cached with
its value, or as absent; a lease prefix is cached with every lease under it. Pure data: the
statements are in `Rows`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Row = tuple[Any, ...]  # (key, amount, at, first, first_amount, first_at)
LIMIT = 100_000  # rows kept; past it the cache starts over


class RowCache:
    def __init__(self) -> None:
        self.rows: dict[str, Row | None] = {}
        self.leases: dict[str, dict[str, Row]] = {}  # prefix -> every lease under it
        self.version: int | None = None
        self.staged: dict[str, Row | None] = {}

    def begin(self, version: int) -> None:
        """At the start of a write transaction, with the connection's data_version."""
        self.staged = {}
        if version != self.version or len(self.rows) > LIMIT:
            self.clear()
            self.version = version

    def clear(self) -> None:
        self.rows, self.leases, self.staged = {}, {}, {}
        self.version = None

    def get(self, key: str) -> Row | None | bool:
        """The row (None: absent), or False when unknown."""
        if key in self.staged:
            return self.staged[key]
        # unknown (a bucket of a new second included: read once, then known absent -- a rule
        # guessing its absence from the clock would trust every process's clock)
        return self.rows.get(key, False)

    def leases_under(self, prefix: str) -> list[Row] | None:
        found = self.leases.get(prefix)
        if found is None:
            return None
        merged = dict(found)
        for key, row in self.staged.items():
            if key.startswith(prefix):
                if row is None:
                    merged.pop(key, None)
                else:
                    merged[key] = row
        return list(merged.values())

    def stage(self, key: str, row: Row | None) -> None:
        self.staged[key] = row

    def commit(self) -> None:
        for key, row in self.staged.items():
            self.rows[key] = row
            if key.count("\x00") < 2:  # not a lease
                continue
            under = self.leases.get(key.rpartition("\x00")[0] + "\x00")
            if under is not None:
                if row is None:
                    under.pop(key, None)
                else:
                    under[key] = row
        self.staged = {}


class Rows:
    """Reads and writes of `lim_state` rows in one transaction, through the cache (None: the
    store's thread connection, which keeps none)."""

    def __init__(self, db: sqlite3.Connection, cache: RowCache | None,
                 later: Later | None = None) -> None:
        self.db, self.cache = db, cache
        self.later = later  # when given, writes are left there for the transaction's end
        if cache is not None:
            cache.begin(db.execute("PRAGMA data_version").fetchone()[0])

    def fetch(self, keys: Sequence[str], prefixes: Sequence[str] = ()
              ) -> tuple[dict[str, Row | None], dict[str, list[Row]]]:
        """The rows of `keys` (None: absent) and every row under each lease prefix."""
        rows: dict[str, Row | None] = {}
        under: dict[str, list[Row]] = {}
        missing = []
        for key in keys:
            hit = self.cache.get(key) if self.cache is not None else False
            if hit is False:
                missing.append(key)
            else:
                rows[key] = hit  # type: ignore[assignment]
        wanted = []
        for prefix in prefixes:
            hit_leases = self.cache.leases_under(prefix) if self.cache is not None else None
            if hit_leases is None:
                wanted.append(prefix)
            else:
                under[prefix] = hit_leases
        if missing or wanted:
            self._query(missing, wanted, rows, under)
        return rows, under

    def _query(self, keys: list[str], prefixes: list[str], rows: dict[str, Row | None],
               under: dict[str, list[Row]]) -> None:
        parts = ["SELECT 0, key, amount, at, first, first_amount, first_at FROM lim_state "
                 "WHERE key = ?"] * len(keys)
        parts += ["SELECT 1, key, amount, at, first, first_amount, first_at FROM lim_state "
                  "WHERE key > ? AND key < ?"] * len(prefixes)
        params: list[Any] = list(keys)
        for prefix in prefixes:
            params += (prefix, prefix[:-1] + "\x01")
        for key in keys:
            rows[key] = None
        for prefix in prefixes:
            under[prefix] = []
        for which, *row in self.db.execute(" UNION ALL ".join(parts), params):
            if which == 0:
                rows[row[0]] = tuple(row)
            else:
                under[row[0].rpartition("\x00")[0] + "\x00"].append(tuple(row))
        if self.cache is not None:  # what the file holds now: true whatever this call does
            for key in keys:
                self.cache.rows[key] = rows[key]
            for prefix in prefixes:
                self.cache.leases[prefix] = {row[0]: row for row in under[prefix]}

    def write(self, rows: Iterable[Row]) -> None:
        listed = list(rows)
        if self.cache is not None:
            self.cache.staged.update((row[0], row) for row in listed)
        self._run(write, listed)

    def delete(self, keys: Sequence[str]) -> None:
        if self.cache is not None:
            self.cache.staged.update((key, None) for key in keys)
        self._run(delete, keys)

    def _run(self, op: Op, arg: Any) -> None:
        if self.later is not None:
            self.later.append((op, arg))
        else:
            op(self.db, arg)


def write(db: sqlite3.Connection, rows: Sequence[Row], chunk: int = 256) -> None:
    """INSERT OR REPLACE every row, a few hundred per statement."""
    for at in range(0, len(rows), chunk):
        part = rows[at:at + chunk]
        db.execute("INSERT OR REPLACE INTO lim_state (key, amount, at, first, first_amount, "
                   "first_at) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part)),
                   [value for row in part for value in row])


def delete(db: sqlite3.Connection, keys: Sequence[str], chunk: int = 256) -> None:
    for at in range(0, len(keys), chunk):
        part = keys[at:at + chunk]
        db.execute("DELETE FROM lim_state WHERE key IN (" + ", ".join("?" * len(part)) + ")",
                   part)


Op = Callable[[sqlite3.Connection, Any], None]
Later = list[tuple[Op, Any]]  # writes left for the end of the transaction


def apply(db: sqlite3.Connection, later: Later) -> None:
    for op, arg in later:
        op(db, arg)
