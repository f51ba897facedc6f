"""The limit counters and the usage ledger in SQLite: functions on a connection, each run
inside one `BEGIN IMMEDIATE` transaction by `SQLiteStore.run`, which serializes every replica
that shares the file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

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

SCHEMA = """
CREATE TABLE IF NOT EXISTS lim_window (key TEXT NOT NULL, ts REAL NOT NULL,
  amount REAL NOT NULL, member TEXT NOT NULL);
DROP INDEX IF EXISTS lim_window_key_ts;
CREATE INDEX IF NOT EXISTS lim_window_key_ts_amount ON lim_window (key, ts, amount);
CREATE TABLE IF NOT EXISTS lim_total (key TEXT PRIMARY KEY, used REAL NOT NULL,
  newest REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lim_lease (key TEXT NOT NULL, member TEXT NOT NULL,
  expires REAL NOT NULL, PRIMARY KEY (key, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lim_counter (key TEXT PRIMARY KEY, value REAL NOT NULL,
  expires REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY, ts REAL NOT NULL,
  record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
"""


def admit(db: sqlite3.Connection, checks: Sequence[Check], now: float) -> Admission:
    states = tuple(_state(db, check, now) for check in checks)
    admitted = all(s.ok for s in states)
    if admitted:
        for check in checks:
            _add(db, check, now)
    return Admission(admitted, states)


def _state(db: sqlite3.Connection, check: Check, now: float) -> CheckState:
    if check.kind in ("count", "sum"):
        return _window(db, check, now)
    if check.kind == "lease":  # expired leases are swept by `purge`
        live, first = db.execute("SELECT COUNT(*), MIN(expires) FROM lim_lease "
                                 "WHERE key = ? AND expires > ?", (check.key, now)).fetchone()
        return lease_state(check, live, first, now)
    return counter_state(check, _counter(db, check.key, now), now)


# Entries that left a window are subtracted from its running total by a read (no page is
# written) and deleted in batches: a deletion dirties the pages at the old end of the key's
# index, and every dirty page is one more WAL frame to write at COMMIT, the largest part of
# what an admission costs. A batch goes once this many have left, or once the oldest of them
# left this many seconds ago.
SWEEP_ENTRIES = 128
SWEEP_AGE = 5.0


def _window(db: sqlite3.Connection, check: Check, now: float) -> CheckState:
    cutoff = now - check.span
    row = db.execute("SELECT used, newest FROM lim_total WHERE key = ?",
                     (check.key,)).fetchone()
    used, newest = (row[0], row[1]) if row else (0.0, 0.0)
    if row and row[0] > 0:
        used -= _leave(db, check.key, cutoff)
    used = max(0.0, used)
    if newest <= cutoff:
        newest = 0.0
    state = window_state(check, used, newest, (), now)
    if state.ok or state.free_at == NEVER:
        return state
    page = db.execute("SELECT ts, amount FROM lim_window WHERE key = ? AND ts > ? "
                      "ORDER BY ts LIMIT ?", (check.key, cutoff, OLDEST_PAGE)).fetchall()
    return window_state(check, used, newest, page, now)


def _leave(db: sqlite3.Connection, key: str, cutoff: float) -> float:
    """The amount of the entries that left the window (ts <= cutoff); deleted (and taken off
    the running total) in batches."""
    gone, count, oldest = db.execute(
        "SELECT COALESCE(SUM(amount), 0), COUNT(*), MIN(ts) FROM lim_window "
        "WHERE key = ? AND ts <= ?", (key, cutoff)).fetchone()
    if count and (count >= SWEEP_ENTRIES or oldest <= cutoff - SWEEP_AGE):
        db.execute("DELETE FROM lim_window WHERE key = ? AND ts <= ?", (key, cutoff))
        db.execute("UPDATE lim_total SET used = used - ? WHERE key = ?", (gone, key))
    return float(gone)


def _counter(db: sqlite3.Connection, key: str, now: float) -> float:
    row = db.execute("SELECT value FROM lim_counter WHERE key = ? AND expires > ?",
                     (key, now)).fetchone()
    return float(row[0]) if row else 0.0


def _add(db: sqlite3.Connection, check: Check, now: float) -> None:
    if check.amount <= 0:
        return
    if check.kind in ("count", "sum"):
        amount = 1 if check.kind == "count" else check.amount
        db.execute("INSERT INTO lim_window (key, ts, amount, member) VALUES (?, ?, ?, ?)",
                   (check.key, now, amount, check.member))
        db.execute("INSERT INTO lim_total (key, used, newest) VALUES (?, ?, ?) "
                   "ON CONFLICT (key) DO UPDATE SET used = used + excluded.used, "
                   "newest = max(newest, excluded.newest)", (check.key, amount, now))
    elif check.kind == "lease":
        db.execute("INSERT OR REPLACE INTO lim_lease (key, member, expires) VALUES (?, ?, ?)",
                   (check.key, check.member, now + check.span))
    else:
        db.execute("INSERT INTO lim_counter (key, value, expires) VALUES (?, ?, ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = CASE WHEN expires > ? "
                   "THEN value + excluded.value ELSE excluded.value END, "
                   "expires = excluded.expires", (check.key, check.amount, check.span, now))


def settle(db: sqlite3.Connection, settlement: Settlement, now: float) -> None:
    for check in settlement.adds:
        _add(db, check, now)
    if settlement.releases:
        db.executemany("DELETE FROM lim_lease WHERE key = ? AND member = ?",
                       settlement.releases)
    if settlement.records:
        db.executemany("INSERT INTO usage (ts, record) VALUES (?, ?)",
                       [(float(r.get("ts", now)), json.dumps(r, separators=(",", ":")))
                        for r in settlement.records])


def counters(db: sqlite3.Connection, keys: Sequence[str], now: float) -> list[float]:
    return [_counter(db, key, now) for key in keys]


def usage_query(db: sqlite3.Connection, since: float, until: float | None
                ) -> list[dict[str, Any]]:
    rows = db.execute("SELECT record FROM usage WHERE ts >= ? AND ts < ? ORDER BY ts, id",
                      (since, until if until is not None else float("inf")))
    return [json.loads(r[0]) for r in rows]


def purge(db: sqlite3.Connection, now: float, usage_before: float) -> None:
    # a window idle for an hour holds nothing live (windows are minutes): drop it whole, so
    # its running total never counts entries deleted behind its back
    idle = now - 3600
    db.execute("DELETE FROM lim_window WHERE key IN (SELECT key FROM lim_total "
               "WHERE newest <= ?)", (idle,))
    db.execute("DELETE FROM lim_total WHERE newest <= ?", (idle,))
    db.execute("DELETE FROM lim_lease WHERE expires <= ?", (now,))
    db.execute("DELETE FROM lim_counter WHERE expires <= ?", (now,))
    db.execute("DELETE FROM usage WHERE ts < ?", (usage_before,))
