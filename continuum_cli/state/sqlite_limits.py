"""The limit counters and the usage ledger in SQLite: functions on a connection, each run
inside one `BEGIN IMMEDIATE` transaction by `SQLiteStore.run`, which serializes every replica
that shares the file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from continuum_cli.state import sqlite_windows as windows
from continuum_cli.state.sqlite_rows import Later, Row, RowCache, Rows
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
        head = key.rsplit(":", 3)[0]
        if key.startswith("budget:") and head != "budget" and key.count(":") >= 4:
            rows.append((windows.total_key(head[len("budget:"):], key), value, expires, None,
                         None, None))
    Rows(db, None).write(rows)
    db.execute("DROP TABLE lim_counter")


def admit(db: sqlite3.Connection, checks: Sequence[Check], now: float,
          settlement: Settlement | None = None, cache: RowCache | None = None,
          later: Later | None = None) -> Admission:
    """Settle, then check and add. A settlement's additions are folded in (a check of the
    same key counts them): one statement reads what the cache does not hold, and one writes
    everything (left in `later` when given: see SQLiteStore.admit)."""
    rows = Rows(db, cache, later)
    adds = list(settlement.adds) if settlement else []
    released = _settle_rest(rows, settlement, now) if settlement else []
    found, counted, leases = _read(rows, [*adds, *checks], now, {r[0] for r in released})
    for add in adds:
        if add.amount > 0:
            _add(rows, add, found, counted, now)
    states = tuple(_state(rows, check, now, found, counted, leases) for check in checks)
    admitted = all(s.ok for s in states)
    written: list[Row] = released
    if admitted:
        for check in checks:
            if check.amount <= 0:
                continue
            if check.kind == "lease":
                written.append((_lease_key(check.key, check.member, check.group), 1,
                                now + check.span, None, None, None))
            else:
                _add(rows, check, found, counted, now)
    for window in found.values():
        if window.changed:
            written += window.rows()
    written += [(key, value, span, None, None, None)
                for key, (value, span) in counted.items() if span is not None]
    rows.write(written)
    return Admission(admitted, states)


def _add(rows: Rows, check: Check, found: dict[str, windows.Window],
         counted: dict[str, tuple[float, float | None]], now: float) -> None:
    if check.kind in windows.WINDOW_KINDS:
        windows.put(rows, found[check.key], 1 if check.kind == "count" else check.amount, now)
    elif check.kind == "counter":
        key = windows.total_key(check.group, check.key)
        counted[key] = (counted.get(key, (0.0, None))[0] + check.amount, check.span)


def _lease_key(key: str, member: str, group: str) -> str:
    return f"{windows.total_key(group, key)}\x00{member}"


def _read(rows: Rows, checks: Sequence[Check], now: float, released: set[str]
          ) -> tuple[dict[str, windows.Window], dict[str, tuple[float, float | None]],
                     dict[str, tuple[int, float | None]]]:
    """The windows (by check key), live counter values (by row key: value and, once added
    to, the expiry to write) and live lease counts with the first to expire (by check key) of
    every key `checks` name: one UNION ALL statement for what the cache does not hold."""
    seen: dict[str, Check] = {}
    keys: list[str] = []
    prefixes: list[str] = []
    second = bucket_of(now)
    for check in checks:
        if check.key in seen:
            continue
        seen[check.key] = check
        total = windows.total_key(check.group, check.key)
        if check.kind in windows.WINDOW_KINDS:
            keys += (total, windows.bucket_key(second, check.group, check.key))
        elif check.kind == "counter":
            keys.append(total)
        else:
            prefixes.append(total + "\x00")
    found_rows, under = rows.fetch(keys, prefixes)
    found: dict[str, windows.Window] = {}
    counted: dict[str, tuple[float, float | None]] = {}
    leases: dict[str, tuple[int, float | None]] = {}
    for key, check in seen.items():
        total = windows.total_key(check.group, key)
        if check.kind in windows.WINDOW_KINDS:
            bucket = found_rows[windows.bucket_key(second, check.group, key)]
            found[key] = windows.current(rows, windows.Window(check, found_rows[total], bucket,
                                                              now), now)
        elif check.kind == "counter":
            row = found_rows[total]
            counted[total] = (row[1] if row is not None and row[2] > now else 0.0, None)
        else:
            listed = under[total + "\x00"]
            live = [row[2] for row in listed if row[2] > now and row[0] not in released]
            leases[key] = (len(live), min(live) if live else None)
            if len(listed) - len(live) >= DEAD_LEASES:
                rows.delete([row[0] for row in listed if row[2] <= now])
    return found, counted, leases


def _state(rows: Rows, check: Check, now: float,
           found: dict[str, windows.Window], counted: dict[str, tuple[float, float | None]],
           leases: dict[str, tuple[int, float | None]]) -> CheckState:
    if check.kind in windows.WINDOW_KINDS:
        return _window(rows, check, found[check.key], now)
    if check.kind == "lease":  # expired leases are swept by `purge`
        live, first = leases.get(check.key, (0, None))
        return lease_state(check, live, first, now)
    used = counted.get(windows.total_key(check.group, check.key), (0.0, None))[0]
    return counter_state(check, used, now)


def _window(rows: Rows, check: Check, window: windows.Window, now: float) -> CheckState:
    state = window_state(check, window.used, window.newest, (), now)
    if state.ok or state.free_at == NEVER:
        return state
    oldest = windows.page(rows, window, now - check.span, OLDEST_PAGE)
    return window_state(check, window.used, window.newest, oldest, now)


def settle(db: sqlite3.Connection, settlement: Settlement, now: float,
           cache: RowCache | None = None) -> None:
    admit(db, (), now, settlement, cache)


# A released lease's row is written back expired (part of the call's one write) rather than
# deleted (a statement of its own); they are deleted in one go once this many have gathered
# under a key, and by `purge`. Every admission reads them all: few enough to be cheap, enough
# that the delete is rare.
DEAD_LEASES = 16


def _settle_rest(rows: Rows, settlement: Settlement, now: float) -> list[Row]:
    """What a settlement holds besides additions: lease releases (the rows to write back
    expired) and ledger records."""
    released: list[Row] = [(_lease_key(r[0], r[1], r[2] if len(r) > 2 else ""), 0, 0.0, None,
                            None, None) for r in settlement.releases]
    if rows.cache is not None:
        for row in released:  # the lease counts below see them as the file soon will
            rows.cache.stage(row[0], row)
    if settlement.records:
        rows.db.executemany("INSERT INTO usage (ts, record) VALUES (?, ?)",
                            [(float(r.get("ts", now)), json.dumps(r, separators=(",", ":")))
                             for r in settlement.records])
    return released


def counters(db: sqlite3.Connection, keys: Sequence[str], now: float, group: str = ""
             ) -> list[float]:
    checks = [Check("counter", key, 0, 0, group=group) for key in keys]
    counted = _read(Rows(db, None), checks, now, set())[1]
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
