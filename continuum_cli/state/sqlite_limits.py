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
    bucket_of,
    counter_state,
    lease_state,
    window_state,
)

# Every counter lives in one table, `lim_state`, so that an admission is one statement that
# reads and one that writes (a statement costs more to run from Python than the rows it
# touches, and every table written is one more page at COMMIT). Rows, by key:
#   t<group>\0<key>           a window's total (amount = used, at = newest addition, first,
#                             first_amount, first_at: its oldest live bucket), or a counter
#                             (amount = value, at = when it expires)
#   t<group>\0<key>\0<member>  a concurrency lease (at = when it expires)
#   s<second><group>\0<key>    a window's one-second bucket (amount, at = newest addition)
# where <group> is the caller's name: a caller's rows share a prefix, and so a page.
# Tables of earlier versions: their windows and leases last minutes and are dropped; budget
# counters are carried over (`migrate`).
SCHEMA = """
DROP TABLE IF EXISTS lim_window;
DROP TABLE IF EXISTS lim_total;
DROP TABLE IF EXISTS lim_windows;
DROP TABLE IF EXISTS lim_second;
DROP TABLE IF EXISTS lim_bucket;
DROP TABLE IF EXISTS lim_lease;
CREATE TABLE IF NOT EXISTS lim_state (key TEXT PRIMARY KEY, amount REAL NOT NULL,
  at REAL NOT NULL, first INTEGER, first_amount REAL, first_at REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY, ts REAL NOT NULL,
  record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
"""


def migrate(db: sqlite3.Connection) -> None:
    """Budget counters of the version before `lim_state` (`lim_counter`, keys
    `budget:<name>:<period>:<kind>:<start>`) move over, so an upgrade spends no budget twice."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'lim_counter'").fetchone():
        return
    rows = []
    for key, value, expires in db.execute("SELECT key, value, expires FROM lim_counter"):
        head, _, _, _ = (key.rsplit(":", 3) + ["", "", ""])[:4]
        if key.startswith("budget:") and head != "budget":
            rows.append((windows.total_key(head[len("budget:"):], key), value, expires, None,
                         None, None))
    windows.write_rows(db, rows)
    db.execute("DROP TABLE lim_counter")


def admit(db: sqlite3.Connection, checks: Sequence[Check], now: float,
          settlement: Settlement | None = None) -> Admission:
    """Settle, then check and add. A settlement's additions are folded in (a check of the
    same key counts them): one statement reads everything, one writes everything, and one
    more deletes released leases."""
    adds = list(settlement.adds) if settlement else []
    if settlement:
        _settle_rest(db, settlement, now)
    found, counted, leases = _read(db, [*adds, *checks], now)
    for add in adds:
        if add.amount > 0:
            _add(db, add, found, counted, now)
    states = tuple(_state(db, check, now, found, counted, leases) for check in checks)
    admitted = all(s.ok for s in states)
    rows: list[windows.Row] = []
    if admitted:
        for check in checks:
            if check.amount <= 0:
                continue
            if check.kind == "lease":
                rows.append((_lease_key(check.key, check.member, check.group), 1,
                             now + check.span, None, None, None))
            else:
                _add(db, check, found, counted, now)
    for window in found.values():
        if window.changed:
            rows += window.rows()
    rows += [(key, value, span, None, None, None) for key, (value, span) in counted.items()
             if span is not None]
    windows.write_rows(db, rows)
    return Admission(admitted, states)


def _add(db: sqlite3.Connection, check: Check, found: dict[str, windows.Window],
         counted: dict[str, tuple[float, float | None]], now: float) -> None:
    if check.kind in windows.WINDOW_KINDS:
        windows.put(db, found[check.key], 1 if check.kind == "count" else check.amount, now)
    elif check.kind == "counter":
        key = windows.total_key(check.group, check.key)
        counted[key] = (counted.get(key, (0.0, None))[0] + check.amount, check.span)


def _lease_key(key: str, member: str, group: str) -> str:
    return f"{windows.total_key(group, key)}\x00{member}"


# the parts of `_read`'s one statement: a window's total, the bucket it adds to, a counter,
# and a lease count
_PARTS = {
    "window": "SELECT 0, ?, amount, at, first, first_amount, first_at FROM lim_state "
              "WHERE key = ?",
    "bucket": "SELECT 1, ?, amount, at, 0, 0, 0 FROM lim_state WHERE key = ?",
    "counter": "SELECT 2, ?, amount, 0, 0, 0, 0 FROM lim_state WHERE key = ? AND at > ?",
    "lease": "SELECT 3, ?, COUNT(*), MIN(at), 0, 0, 0 FROM lim_state WHERE key > ? AND "
             "key < ? AND at > ?",
}


def _read(db: sqlite3.Connection, checks: Sequence[Check], now: float
          ) -> tuple[dict[str, windows.Window], dict[str, tuple[float, float | None]],
                     dict[str, tuple[int, float | None]]]:
    """The windows (by check key), live counter values (by row key: value and, once added
    to, the expiry to write) and live lease counts with the first to expire (by check key) of
    every key `checks` name, in one UNION ALL statement (cheaper than one per key, or IN)."""
    parts: list[str] = []
    params: list[Any] = []
    seen: dict[str, Check] = {}
    for check in checks:
        if check.key in seen:
            continue
        seen[check.key] = check
        total = windows.total_key(check.group, check.key)
        if check.kind in windows.WINDOW_KINDS:
            parts += ("window", "bucket")
            params += (check.key, total, check.key,
                       windows.bucket_key(bucket_of(now), check.group, check.key))
        elif check.kind == "counter":
            parts.append("counter")
            params += (total, total, now)
        else:
            parts.append("lease")
            params += (check.key, total + "\x00", total + "\x01", now)
    rows: dict[int, dict[str, Any]] = {0: {}, 1: {}, 2: {}, 3: {}}
    if parts:
        for which, key, *values in db.execute(_union(tuple(parts)), params):
            rows[which][key] = values
    found = {key: windows.current(db, windows.Window(
        check, (key, *rows[0][key]) if key in rows[0] else None,
        (key, *rows[1][key][:2]) if key in rows[1] else None, now), now)
        for key, check in seen.items() if check.kind in windows.WINDOW_KINDS}
    counted: dict[str, tuple[float, float | None]] = {
        key: (float(values[0]), None) for key, values in rows[2].items()}
    leases = {key: (int(values[0]), values[1]) for key, values in rows[3].items()}
    return found, counted, leases


@lru_cache(maxsize=64)
def _union(parts: tuple[str, ...]) -> str:
    return " UNION ALL ".join(_PARTS[part] for part in parts)


def _state(db: sqlite3.Connection, check: Check, now: float,
           found: dict[str, windows.Window], counted: dict[str, tuple[float, float | None]],
           leases: dict[str, tuple[int, float | None]]) -> CheckState:
    if check.kind in windows.WINDOW_KINDS:
        return _window(db, check, found[check.key], now)
    if check.kind == "lease":  # expired leases are swept by `purge`
        live, first = leases.get(check.key, (0, None))
        return lease_state(check, live, first, now)
    used = counted.get(windows.total_key(check.group, check.key), (0.0, None))[0]
    return counter_state(check, used, now)


def _window(db: sqlite3.Connection, check: Check, window: windows.Window, now: float
            ) -> CheckState:
    state = window_state(check, window.used, window.newest, (), now)
    if state.ok or state.free_at == NEVER:
        return state
    oldest = windows.page(db, window, now - check.span, OLDEST_PAGE)
    return window_state(check, window.used, window.newest, oldest, now)


def settle(db: sqlite3.Connection, settlement: Settlement, now: float) -> None:
    admit(db, (), now, settlement)


def _settle_rest(db: sqlite3.Connection, settlement: Settlement, now: float) -> None:
    """What a settlement holds besides additions: lease releases and ledger records."""
    if settlement.releases:
        keys = [_lease_key(r[0], r[1], r[2] if len(r) > 2 else "")
                for r in settlement.releases]
        for at in range(0, len(keys), 256):
            part = keys[at:at + 256]
            db.execute("DELETE FROM lim_state WHERE key IN "
                       f"({windows.placeholders(len(part))})", part)
    if settlement.records:
        db.executemany("INSERT INTO usage (ts, record) VALUES (?, ?)",
                       [(float(r.get("ts", now)), json.dumps(r, separators=(",", ":")))
                        for r in settlement.records])


def counters(db: sqlite3.Connection, keys: Sequence[str], now: float, group: str = ""
             ) -> list[float]:
    counted = _read(db, [Check("counter", key, 0, 0, group=group) for key in keys], now)[1]
    return [counted.get(windows.total_key(group, key), (0.0, None))[0] for key in keys]


def usage_query(db: sqlite3.Connection, since: float, until: float | None
                ) -> list[dict[str, Any]]:
    rows = db.execute("SELECT record FROM usage WHERE ts >= ? AND ts < ? ORDER BY ts, id",
                      (since, until if until is not None else float("inf")))
    return [json.loads(r[0]) for r in rows]


BUCKET_RETENTION = 900.0  # seconds a bucket is kept (swept every few minutes)


def purge(db: sqlite3.Connection, now: float, usage_before: float) -> None:
    windows.purge(db, now, now - BUCKET_RETENTION)  # older than any window (windows are minutes)
    db.execute("DELETE FROM usage WHERE ts < ?", (usage_before,))
