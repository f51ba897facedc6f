"""The limit counters and the usage ledger in SQLite: functions on a connection, each run
inside one `BEGIN IMMEDIATE` transaction by `SQLiteStore.run`, which serializes every replica
that shares the file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from continuum_cli.state import sqlite_windows as windows
from continuum_cli.state.counters import (
    NEVER,
    OLDEST_PAGE,
    Admission,
    Check,
    CheckState,
    Settlement,
    counter_state,
    lease_state,
    window_state,
)

# Windows: sqlite_windows.py. Entry-per-request windows of earlier versions (`lim_window`,
# `lim_total`) held at most a minute of counts: dropped.
SCHEMA = """
DROP TABLE IF EXISTS lim_window;
DROP TABLE IF EXISTS lim_total;
""" + windows.SCHEMA + """
CREATE TABLE IF NOT EXISTS lim_lease (key TEXT NOT NULL, member TEXT NOT NULL,
  expires REAL NOT NULL, PRIMARY KEY (key, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lim_counter (key TEXT PRIMARY KEY, value REAL NOT NULL,
  expires REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY, ts REAL NOT NULL,
  record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
"""


def admit(db: sqlite3.Connection, checks: Sequence[Check], now: float,
          settlement: Settlement | None = None) -> Admission:
    """Settle, then check and add. A settlement's additions are written together with the
    admission's, and a check of the same key counts them; everything the call reads is one
    statement, and it writes one statement per table (a statement costs more to run from
    Python than the rows it reads or writes)."""
    adds = list(settlement.adds) if settlement else []
    if settlement:
        _settle_rest(db, settlement, now)
    read = _read(db, [*adds, *checks], now)
    found = windows.current(db, {c.key: c.span for c in (*adds, *checks)
                                 if c.kind in windows.WINDOW_KINDS}, read[0], now)
    counted = read[1]
    buckets: list[tuple[Any, ...]] = []
    for add in adds:
        if add.amount > 0 and add.kind in windows.WINDOW_KINDS:
            windows.put(found[add.key], _amount(add), now, buckets)
        elif add.amount > 0 and add.kind == "counter":
            counted[add.key] = counted.get(add.key, 0.0) + add.amount
    states = tuple(_state(db, check, now, found, counted, read[2]) for check in checks)
    admitted = all(s.ok for s in states)
    if admitted:
        for check in checks:
            if check.amount > 0 and check.kind in windows.WINDOW_KINDS:
                windows.put(found[check.key], _amount(check), now, buckets)
        adds += checks
    windows.write(db, found.values(), buckets)
    _add_others(db, adds, now)
    return Admission(admitted, states)


def _amount(check: Check) -> float:
    return 1 if check.kind == "count" else check.amount


# the parts of `_read`'s one statement: a window's total, a counter, a lease count
_PARTS = {
    "window": "SELECT 0, key, used, newest, first, first_amount, first_last FROM lim_windows "
              "WHERE key = ?",
    "counter": "SELECT 1, key, value, 0, 0, 0, 0 FROM lim_counter WHERE key = ? AND "
               "expires > ?",
    "lease": "SELECT 2, ?, COUNT(*), MIN(expires), 0, 0, 0 FROM lim_lease WHERE key = ? AND "
             "expires > ?",
}


def _read(db: sqlite3.Connection, checks: Sequence[Check], now: float
          ) -> tuple[dict[str, Any], dict[str, float], dict[str, tuple[int, float | None]]]:
    """Window rows, live counter values and live lease counts (with the first to expire) of
    every key `checks` name, in one UNION ALL statement (cheaper than one per key, or IN)."""
    parts: dict[str, str] = {}
    for check in checks:
        part = "window" if check.kind in windows.WINDOW_KINDS else check.kind
        parts.setdefault(check.key, part)
    out: tuple[dict[str, Any], dict[str, float], dict[str, tuple[int, float | None]]] = (
        {}, {}, {})
    if not parts:
        return out
    params: list[Any] = []
    for key, part in parts.items():
        params += (key,) if part == "window" else (key, now) if part == "counter" else (
            key, key, now)
    for which, key, *values in db.execute(_union(tuple(parts.values())), params):
        if which == 0:
            out[0][key] = (key, *values)
        elif which == 1:
            out[1][key] = float(values[0])
        else:
            out[2][key] = (values[0], values[1])
    return out


@lru_cache(maxsize=64)
def _union(parts: tuple[str, ...]) -> str:
    return " UNION ALL ".join(_PARTS[part] for part in parts)


def _state(db: sqlite3.Connection, check: Check, now: float,
           found: dict[str, windows.Window], counted: dict[str, float],
           leases: dict[str, tuple[int, float | None]]) -> CheckState:
    if check.kind in windows.WINDOW_KINDS:
        return _window(db, check, found[check.key], now)
    if check.kind == "lease":  # expired leases are swept by `purge`
        live, first = leases.get(check.key, (0, None))
        return lease_state(check, live, first, now)
    return counter_state(check, counted.get(check.key, 0.0), now)


def _window(db: sqlite3.Connection, check: Check, window: windows.Window, now: float
            ) -> CheckState:
    state = window_state(check, window.used, window.newest, (), now)
    if state.ok or state.free_at == NEVER:
        return state
    oldest = windows.page(db, window, now - check.span, OLDEST_PAGE)
    return window_state(check, window.used, window.newest, oldest, now)


def _add_others(db: sqlite3.Connection, checks: Sequence[Check], now: float) -> None:
    """Leases and counters of `checks` (windows: `windows.put`)."""
    leases = [(c.key, c.member, now + c.span) for c in checks
              if c.kind == "lease" and c.amount > 0]
    counted = [(c.key, c.amount, c.span) for c in checks
               if c.kind == "counter" and c.amount > 0]
    windows.insert_rows(db, "INSERT OR REPLACE INTO lim_lease (key, member, expires) "
                            "VALUES {}", leases, 3)
    windows.insert_rows(db, "INSERT INTO lim_counter (key, value, expires) VALUES {} "
                            "ON CONFLICT (key) DO UPDATE SET value = CASE WHEN expires > ? "
                            "THEN value + excluded.value ELSE excluded.value END, "
                            "expires = excluded.expires", counted, 3, now)


def settle(db: sqlite3.Connection, settlement: Settlement, now: float) -> None:
    admit(db, (), now, settlement)


def _settle_rest(db: sqlite3.Connection, settlement: Settlement, now: float) -> None:
    """What a settlement holds besides additions: lease releases and ledger records."""
    if settlement.releases:
        db.executemany("DELETE FROM lim_lease WHERE key = ? AND member = ?",
                       settlement.releases)
    if settlement.records:
        db.executemany("INSERT INTO usage (ts, record) VALUES (?, ?)",
                       [(float(r.get("ts", now)), json.dumps(r, separators=(",", ":")))
                        for r in settlement.records])


def counters(db: sqlite3.Connection, keys: Sequence[str], now: float) -> list[float]:
    found = _read(db, [Check("counter", key, 0, 0) for key in keys], now)[1]
    return [found.get(key, 0.0) for key in keys]


def usage_query(db: sqlite3.Connection, since: float, until: float | None
                ) -> list[dict[str, Any]]:
    rows = db.execute("SELECT record FROM usage WHERE ts >= ? AND ts < ? ORDER BY ts, id",
                      (since, until if until is not None else float("inf")))
    return [json.loads(r[0]) for r in rows]


BUCKET_RETENTION = 900.0  # seconds a bucket is kept (swept every few minutes)


def purge(db: sqlite3.Connection, now: float, usage_before: float) -> None:
    windows.purge(db, now - BUCKET_RETENTION)  # older than any window (windows are minutes)
    db.execute("DELETE FROM lim_lease WHERE expires <= ?", (now,))
    db.execute("DELETE FROM lim_counter WHERE expires <= ?", (now,))
    db.execute("DELETE FROM usage WHERE ts < ?", (usage_before,))
