"""Sliding windows in SQLite: one-second buckets and a running total per window.

A check reads one row per window (its total, the newest addition, and the oldest live bucket
with its amount and newest addition) and the bucket of the current second, instead of summing
the window's buckets; an addition writes both back. Once the oldest bucket's newest addition
has left the window, the next buckets are read once (at most `span + 2` rows) to find the new
oldest -- on a busy key, once a second. The arithmetic is counters.py's; the Redis script
(redis_run.py) keeps the same total in a hash.

Rows live in `lim_state` (sqlite_limits.py): a window's total at `total_key`, a bucket at
`bucket_key` (ordered by second first, so the buckets one admission writes share a page).
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache

from continuum_cli.state.counters import Check, bucket_of
from continuum_cli.state.sqlite_rows import Row, Rows

WINDOW_KINDS = ("count", "sum")


@lru_cache(maxsize=4096)
def total_key(group: str, key: str) -> str:
    """A window's total, a counter, and (with a member after it) a lease: a caller's rows
    share a prefix, so the ones an admission writes share a page."""
    return f"t{group}\x00{key}"


@lru_cache(maxsize=4096)
def bucket_key(second: int, group: str, key: str) -> str:
    return f"s{second:011d}{group}\x00{key}"


class Window:
    """A window's running total as this call sees it, with the bucket it adds to."""

    __slots__ = ("check", "used", "newest", "first", "first_amount", "first_at", "second",
                 "amount", "at", "changed")

    def __init__(self, check: Check, row: Row | None, bucket: Row | None, now: float
                 ) -> None:
        self.check = check
        self.used, self.newest, self.first, self.first_amount, self.first_at = (
            row[1:] if row is not None else (0.0, 0.0, None, 0.0, 0.0))
        self.second = bucket_of(now)
        self.amount, self.at = (bucket[1], bucket[2]) if bucket is not None else (0.0, 0.0)
        self.changed = False

    def rows(self) -> list[Row]:
        key, group = self.check.key, self.check.group
        return [(total_key(group, key), self.used, self.newest, self.first, self.first_amount,
                 self.first_at),
                (bucket_key(self.second, group, key), self.amount, self.at, None, None, None)]


def current(rows: Rows, window: Window, now: float) -> Window:
    """`window` as of `now`: buckets that have left are taken off its total."""
    cutoff = now - window.check.span
    if window.first is None or window.newest <= cutoff:  # new, or all of it has left
        return _empty(window)
    if window.first_at > cutoff:  # the oldest bucket still counts: so do the others
        return window
    # the oldest bucket has left: find the new oldest (a second's worth on a busy key)
    window.used -= window.first_amount
    for second, amount, at in buckets(rows, window.check, window.first + 1, window.newest):
        if at > cutoff:
            window.first, window.first_amount, window.first_at = second, amount, at
            window.used, window.changed = max(0.0, window.used), True
            return window
        window.used -= amount
    return _empty(window)


def _empty(window: Window) -> Window:
    window.used, window.newest, window.first = 0.0, 0.0, None
    return window


def put(rows: Rows, window: Window, amount: float, now: float) -> None:
    """Add `amount` at `now`: to the total, and to this second's bucket (never one older than
    the window's oldest: another replica's clock may be behind, and a bucket below `first`
    would never be taken off the total)."""
    if window.first is None:
        window.first, window.first_amount, window.first_at = window.second, 0.0, now
    if window.second < window.first:
        window.second = window.first
        key = bucket_key(window.first, window.check.group, window.check.key)
        row = rows.fetch([key])[0][key]
        window.amount, window.at = (row[1], row[2]) if row is not None else (0.0, 0.0)
    if window.second == window.first:
        window.first_amount += amount
        window.first_at = max(window.first_at, now)
    window.amount += amount
    window.at = max(window.at, now)
    window.used += amount
    window.newest = max(window.newest, now)
    window.changed = True


def page(rows: Rows, window: Window, cutoff: float, limit: int
         ) -> list[tuple[float, float]]:
    """(newest addition, amount) of the window's oldest live buckets, oldest first."""
    if window.first is None:
        return []
    found = buckets(rows, window.check, window.first, window.newest)
    return [(at, amount) for _, amount, at in found if at > cutoff][:limit]


def buckets(rows: Rows, check: Check, start: int, end: float
            ) -> list[tuple[int, float, float]]:
    """(second, amount, newest addition) of the window's buckets from second `start` to
    `end`, oldest first: point lookups, since buckets are ordered by second first."""
    keys = [bucket_key(s, check.group, check.key) for s in range(start, int(end) + 1)]
    found = rows.fetch(keys)[0]
    return [(int(key[1:12]), row[1], row[2]) for key in keys
            if (row := found[key]) is not None]


def purge(db: sqlite3.Connection, now: float, before: float) -> None:
    """Buckets older than `before`, windows idle since then, counters and leases that
    expired."""
    db.execute("DELETE FROM lim_state WHERE key >= 's' AND key < ?",
               (f"s{int(before):011d}",))
    db.execute("DELETE FROM lim_state WHERE key >= 't' AND key < 'u' AND ("
               "(first IS NULL AND at <= ?) OR (first IS NOT NULL AND at < ?))", (now, before))
