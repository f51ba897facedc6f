"""Sliding windows in SQLite: one-second buckets and a running total per window.

A check reads one row per window (`lim_windows`: the total, the newest addition, and the
oldest live bucket with its amount and newest addition) instead of summing the window's
buckets; an addition writes its bucket and the total. Once the oldest bucket's newest
addition has left the window, the next buckets are read once (at most `span + 2` rows) to
find the new oldest -- on a busy key, once a second. The arithmetic is counters.py's; the
Redis script (redis_run.py) keeps the same total in a hash.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from continuum_cli.state.counters import Check, bucket_of

WINDOW_KINDS = ("count", "sum")

SCHEMA = """
DROP TABLE IF EXISTS lim_bucket;
CREATE TABLE IF NOT EXISTS lim_second (sec INTEGER NOT NULL, key TEXT NOT NULL,
  amount REAL NOT NULL, last REAL NOT NULL, PRIMARY KEY (sec, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lim_windows (key TEXT PRIMARY KEY, used REAL NOT NULL,
  newest REAL NOT NULL, first INTEGER NOT NULL, first_amount REAL NOT NULL,
  first_last REAL NOT NULL) WITHOUT ROWID;
"""


class Window:
    """A window's running total as this call sees it; `changed`: to be written back."""

    __slots__ = ("key", "used", "newest", "first", "first_amount", "first_last", "changed")

    def __init__(self, key: str, used: float = 0.0, newest: float = 0.0,
                 first: int | None = None, first_amount: float = 0.0,
                 first_last: float = 0.0) -> None:
        self.key, self.used, self.newest = key, used, newest
        self.first, self.first_amount, self.first_last = first, first_amount, first_last
        self.changed = False

    def row(self) -> tuple[Any, ...]:
        return (self.key, self.used, self.newest, self.first, self.first_amount,
                self.first_last)


@lru_cache(maxsize=32)
def placeholders(count: int, width: int = 1) -> str:
    one = "?" if width == 1 else "(" + ", ".join("?" * width) + ")"
    return ", ".join([one] * count)


def current(db: sqlite3.Connection, spans: dict[str, float], rows: dict[str, Sequence[Any]],
            now: float) -> dict[str, Window]:
    """The windows of `spans` (key: span) as of `now`, from their `lim_windows` rows (buckets
    that have left are taken off the totals)."""
    return {key: _current(db, Window(*rows[key]) if key in rows else None, key, now - span)
            for key, span in spans.items()}


def _current(db: sqlite3.Connection, window: Window | None, key: str, cutoff: float
             ) -> Window:
    if window is None or window.newest <= cutoff:  # new, or all of it has left
        return Window(key)
    if window.first_last > cutoff:  # the oldest bucket still counts: so do the others
        return window
    # the oldest bucket has left: find the new oldest (a second's worth on a busy key)
    window.used -= window.first_amount
    for sec, amount, last in _buckets(db, key, window.first + 1, window.newest):
        if last > cutoff:
            window.first, window.first_amount, window.first_last = sec, amount, last
            window.used, window.changed = max(0.0, window.used), True
            return window
        window.used -= amount
    return Window(key)


def put(window: Window, amount: float, now: float, buckets: list[tuple[Any, ...]]) -> None:
    """Add `amount` at `now`: to the total, and to this second's bucket (never one older than
    the window's oldest: another replica's clock may be behind, and a bucket below `first`
    would never be taken off the total)."""
    second = bucket_of(now)
    if window.first is None:
        window.first, window.first_amount, window.first_last = second, 0.0, now
    second = max(second, window.first)
    if second == window.first:
        window.first_amount += amount
        window.first_last = max(window.first_last, now)
    window.used += amount
    window.newest = max(window.newest, now)
    window.changed = True
    buckets.append((second, window.key, amount, now))


def page(db: sqlite3.Connection, window: Window, cutoff: float, limit: int
         ) -> list[tuple[float, float]]:
    """(newest addition, amount) of the window's oldest live buckets, oldest first."""
    if window.first is None:
        return []
    live = [(last, amount) for _, amount, last in
            _buckets(db, window.key, window.first, window.newest) if last > cutoff]
    return live[:limit]


def _buckets(db: sqlite3.Connection, key: str, start: int, end: float
             ) -> list[tuple[int, float, float]]:
    """(second, amount, newest addition) of `key`'s buckets from second `start` to `end`,
    oldest first: point lookups, since buckets are ordered by second, then key (the
    buckets an admission writes, one per window, then share a page)."""
    seconds = list(range(start, math.floor(end) + 1))
    found: list[tuple[int, float, float]] = []
    for at in range(0, len(seconds), _ROWS):
        part = seconds[at:at + _ROWS]
        found += db.execute(f"SELECT sec, amount, last FROM lim_second WHERE sec IN "
                            f"({placeholders(len(part))}) AND key = ? ORDER BY sec",
                            (*part, key)).fetchall()
    return found


_ROWS = 256  # rows per multi-row statement (SQLite allows 32 766 parameters)


def write(db: sqlite3.Connection, windows: Iterable[Window],
          buckets: Sequence[tuple[Any, ...]]) -> None:
    insert_rows(db, "INSERT INTO lim_second (sec, key, amount, last) VALUES {} ON CONFLICT "
                    "(sec, key) DO UPDATE SET amount = amount + excluded.amount, "
                    "last = max(last, excluded.last)", buckets, 4)
    insert_rows(db, "INSERT OR REPLACE INTO lim_windows (key, used, newest, first, "
                    "first_amount, first_last) VALUES {}",
                [w.row() for w in windows if w.changed], 6)


def insert_rows(db: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]],
                width: int, *tail: Any) -> None:
    """`sql` (its `{}` the VALUES list) for every row, a few hundred rows per statement."""
    for at in range(0, len(rows), _ROWS):
        chunk = rows[at:at + _ROWS]
        params = [value for row in chunk for value in row]
        db.execute(_sql(sql, len(chunk), width), (*params, *tail))


@lru_cache(maxsize=64)
def _sql(template: str, count: int, width: int) -> str:
    return template.format(placeholders(count, width))


def purge(db: sqlite3.Connection, before: float) -> None:
    db.execute("DELETE FROM lim_second WHERE sec < ?", (before,))
    db.execute("DELETE FROM lim_windows WHERE newest < ?", (before,))
