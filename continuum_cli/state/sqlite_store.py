"""`SQLiteStore`: the default state store, one SQLite file in WAL mode.

Two connections. Small calls (an admission, a key) first run right on the event loop on a
connection that never waits for a lock: a transaction is a few tens of microseconds, far less
than handing it to a thread, whose Python work would also contend with the loop for the GIL.
If another process holds the write lock, or the call reads a lot (`kv_list`, the ledger), it
runs on the store's own thread instead, which waits at most `timeout`. Several processes may
share the file (WAL readers never block the writer; writers serialize with BEGIN IMMEDIATE).

An admission made `alone` (see `admit`) on the loop's connection decides under the write
lock and leaves its write and COMMIT for the loop's next turn, which comes while the admitted
request waits on its upstream: the lock is held until then, so the decision stays exact
across replicas, and the request does not wait for the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from continuum_cli.errors import StoreUnavailable
from continuum_cli.state import sqlite_limits
from continuum_cli.state.codec import decode, encode
from continuum_cli.state.counters import Admission, Check, Settlement
from continuum_cli.state.server_clock import GUARD
from continuum_cli.state.sqlite_rows import Later, RowCache, apply

T = TypeVar("T")
log = logging.getLogger("continuum.state")
_PURGE_EVERY = 600.0  # seconds between sweeps of expired rows
# the WAL is copied back into the database on the store's thread, at most this often, rather
# than by whichever commit crosses SQLite's page threshold (that one would pay the fsync)
_CHECKPOINT_EVERY = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
  ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires REAL,
  PRIMARY KEY (ns, key)) WITHOUT ROWID;
"""


class SQLiteStore:
    def __init__(self, path: Path, *, timeout: float = 0.05,
                 usage_retention: float = 90 * 86400) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.usage_retention = usage_retention
        self.description = f"sqlite {self.path}"
        self._db: sqlite3.Connection | None = None
        self._fast: sqlite3.Connection | None = None  # the event loop's, never waits
        self._pool: ThreadPoolExecutor | None = None
        self._next_purge = 0.0
        self._next_checkpoint = 0.0
        self._cache = RowCache()  # limit rows as the event loop's connection last saw them
        self._open = False  # the event loop's connection has an admission to finish
        self._later: Later = []  # its writes

    # -- life cycle ----------------------------------------------------------------------
    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="continuum-sqlite")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self._connect)
        except (OSError, sqlite3.Error) as exc:
            self._pool.shutdown(wait=False)
            self._pool = None
            raise StoreUnavailable(f"cannot open the state database {self.path}: {exc}",
                                   hint="set state.path to a writable file") from None

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # busy timeout: how long a write waits for another process's lock before failing
        db = sqlite3.connect(self.path, timeout=max(self.timeout, 1.0), isolation_level=None,
                             check_same_thread=False)
        # small pages for a new file: a commit writes every page it dirtied to the WAL, and an
        # admission dirties a few pages of small rows (4 KiB pages cost ~10 us each, 1 KiB ~5)
        db.execute("PRAGMA page_size=1024")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
        db.executescript(SCHEMA + sqlite_limits.SCHEMA + self.extra_schema())
        db.execute("BEGIN IMMEDIATE")
        sqlite_limits.migrate(db)
        db.execute("COMMIT")
        db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000) or 1}")
        self._db = db
        fast = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                               check_same_thread=False)
        fast.execute("PRAGMA synchronous=NORMAL")
        fast.execute("PRAGMA busy_timeout=0")
        for conn in (db, fast):
            conn.execute("PRAGMA wal_autocheckpoint=0")
        self._fast = fast

    def extra_schema(self) -> str:
        return ""

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self._finish()
        await asyncio.get_running_loop().run_in_executor(pool, self._checkpoint)
        db, self._db = self._db, None
        fast, self._fast = self._fast, None
        for conn in (fast, db):
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(pool, conn.close)
        pool.shutdown(wait=True)

    # -- the one way in: a function run in a transaction on the store's thread ------------
    async def run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = False,
                  timeout: float | None = None, inline: bool = True, defer: bool = False) -> T:
        if self._pool is None or self._db is None:
            raise StoreUnavailable("the state store is not open")
        if inline and self._fast is not None:
            try:
                return self._txn(self._fast, fn, write, defer=defer)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise StoreUnavailable(f"state database error: {exc}") from None
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"state database error: {exc}") from None
        wait = timeout or self.timeout
        # the thread may reach the call after its caller left (a long purge ahead of it, a
        # lock held elsewhere): past the deadline it applies nothing (as in server_clock.py)
        deadline = time.monotonic() + wait * GUARD
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._txn, self._db,
                                                            fn, write, timeout, deadline)
        try:
            async with asyncio.timeout(wait):
                return await future
        except TimeoutError:
            raise StoreUnavailable(f"the state database did not answer within "
                                   f"{(timeout or self.timeout) * 1000:.0f} ms") from None
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"state database error: {exc}") from None

    def _txn(self, db: sqlite3.Connection | None, fn: Callable[[sqlite3.Connection], T],
             write: bool, busy: float | None = None, deadline: float | None = None,
             defer: bool = False) -> T:
        assert db is not None
        if db is self._fast:
            self._finish()  # an admission's transaction still open (see `admit`)
        if busy is not None and db is self._db:  # a caller that may wait longer on a lock
            db.execute(f"PRAGMA busy_timeout={int(busy * 1000) or 1}")
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        finally:
            if busy is not None and db is self._db:
                db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000) or 1}")
        try:
            if deadline is not None and time.monotonic() > deadline:
                raise StoreUnavailable("the state database was reached after the call's "
                                       "deadline; nothing was applied")
            result = fn(db)
        except BaseException:
            if db is self._fast:  # the thread's connection keeps no cache and defers nothing
                self._cache.clear()  # what the transaction staged is gone
                self._later = []
            db.execute("ROLLBACK")
            raise
        if defer and db is self._fast:
            self._open = True
            asyncio.get_running_loop().call_soon(self._finish)
            return result
        try:
            db.execute("COMMIT")
        except BaseException:
            if db is self._fast:
                self._cache.clear()
            raise
        if db is self._fast:
            self._cache.commit()
        if write:
            self._wrote()
        return result

    def _finish(self) -> None:
        """Write and commit what an admission left open: its decision was taken under the
        write lock, which the transaction holds until now, so nothing can have changed what it
        read. Runs at the loop's next turn -- while the request it admitted waits on its
        upstream -- or before the next use of the connection."""
        if not self._open:
            return
        self._open = False
        later, self._later = self._later, []
        fast = self._fast
        assert fast is not None
        try:
            apply(fast, later)
            fast.execute("COMMIT")
        except BaseException as exc:  # never leave the transaction, and the lock, open
            self._cache.clear()
            with contextlib.suppress(sqlite3.Error):
                fast.execute("ROLLBACK")
            # the request it admitted is already on its way: it goes uncounted
            log.error("state database: an admission could not be recorded: %s", exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._cache.commit()
        self._wrote()

    def _wrote(self) -> None:
        """After a write: the periodic checkpoint and sweep, on the store's thread."""
        if self._pool is not None:
            now = time.time()
            if now >= self._next_checkpoint:
                self._next_checkpoint = now + _CHECKPOINT_EVERY
                self._pool.submit(self._checkpoint)
            if now >= self._next_purge:
                self._next_purge = now + _PURGE_EVERY
                self._pool.submit(self._purge_all)

    def _checkpoint(self) -> None:
        if self._db is not None:
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.debug("state database checkpoint: %s", exc)

    def _purge_all(self) -> None:
        """Drop expired rows (on the store's thread: it may delete many)."""
        db, now = self._db, time.time()
        if db is None:
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?", (now,))
            sqlite_limits.purge(db, now, now - self.usage_retention)
            self.purge(db, now)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            log.warning("state database: sweeping expired rows failed: %s", exc)

    def purge(self, db: sqlite3.Connection, now: float) -> None:
        """Extension point: drop other expired rows."""

    # -- key/value -----------------------------------------------------------------------
    async def kv_get(self, ns: str, key: str, timeout: float | None = None
                     ) -> dict[str, Any] | None:
        return decode(await self.run(lambda db: _get(db, ns, key, time.time()),
                                     timeout=timeout))

    async def kv_put(self, ns: str, key: str, value: dict[str, Any],
                     ttl: float | None = None, timeout: float | None = None) -> None:
        text, expires = encode(value), _expires(ttl)
        await self.run(lambda db: _put(db, ns, key, text, expires), write=True,
                       timeout=timeout)

    async def kv_put_new(self, ns: str, key: str, value: dict[str, Any],
                         ttl: float | None = None) -> bool:
        text, expires = encode(value), _expires(ttl)

        def put_new(db: sqlite3.Connection) -> bool:
            if _get(db, ns, key, time.time()) is not None:
                return False
            _put(db, ns, key, text, expires)
            return True

        return await self.run(put_new, write=True)

    async def kv_take(self, ns: str, key: str) -> dict[str, Any] | None:
        def take(db: sqlite3.Connection) -> str | None:
            found = _get(db, ns, key, time.time())
            db.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (ns, key))
            return found

        return decode(await self.run(take, write=True))

    async def kv_update(self, ns: str, key: str, expect: dict[str, Any], value: dict[str, Any],
                        ttl: float | None = None) -> bool:
        old, text, expires = encode(expect), encode(value), _expires(ttl)

        def update(db: sqlite3.Connection) -> bool:
            if _get(db, ns, key, time.time()) != old:
                return False
            _put(db, ns, key, text, expires)
            return True

        return await self.run(update, write=True)

    async def kv_delete(self, ns: str, key: str, timeout: float | None = None) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            live = _get(db, ns, key, time.time()) is not None
            db.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (ns, key))
            return live

        return await self.run(delete, write=True, timeout=timeout)

    async def kv_list(self, ns: str, prefix: str = "", timeout: float | None = None
                      ) -> list[tuple[str, dict[str, Any]]]:
        def listing(db: sqlite3.Connection) -> list[tuple[str, str]]:
            # substr instead of LIKE: prefixes may contain % and _
            return db.execute(
                "SELECT key, value FROM kv WHERE ns = ? AND substr(key, 1, ?) = ? "
                "AND (expires IS NULL OR expires > ?) ORDER BY key",
                (ns, len(prefix), prefix, time.time())).fetchall()

        rows = await self.run(listing, inline=False, timeout=timeout)
        return [(key, value) for key, text in rows if (value := decode(text)) is not None]


    # -- limits and the usage ledger (see counters.py) ------------------------------------
    async def admit(self, checks: list[Check], now: float,
                    settlement: Settlement | None = None, alone: bool = False
                    ) -> Admission:
        # alone, on the event loop's connection, the writes and COMMIT wait for the loop's
        # next turn (`_finish`), off the request's path. Not when other requests are under
        # way: the loop's turn may then be far, and the lock, which other replicas sharing
        # the file wait for, is held until it comes
        return await self.run(lambda db: sqlite_limits.admit(
            db, checks, now, settlement, self._cache_for(db),
            self._later if alone and db is self._fast else None), write=True, defer=alone)

    async def settle(self, settlement: Settlement, now: float,
                     timeout: float | None = None) -> None:
        # inline like an admission: on the store's thread, a batch would hold the write lock
        # that concurrent admissions then wait for (measured: more CPU per request at c=16)
        await self.run(lambda db: sqlite_limits.settle(db, settlement, now,
                                                       self._cache_for(db)),
                       write=True, timeout=timeout)

    def _cache_for(self, db: sqlite3.Connection) -> RowCache | None:
        """The row cache belongs to the event loop's connection (the thread's keeps none:
        its commits change the other's data_version, which drops the cache)."""
        return self._cache if db is self._fast else None

    async def counters(self, keys: list[str], now: float, group: str = "") -> list[float]:
        return await self.run(lambda db: sqlite_limits.counters(db, keys, now, group))

    async def usage_query(self, since: float, until: float | None = None,
                          timeout: float | None = None) -> list[dict[str, Any]]:
        return await self.run(lambda db: sqlite_limits.usage_query(db, since, until),
                              timeout=timeout, inline=False)


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _expires(ttl: float | None) -> float | None:
    return None if ttl is None else time.time() + ttl


def _get(db: sqlite3.Connection, ns: str, key: str, now: float) -> str | None:
    row = db.execute("SELECT value FROM kv WHERE ns = ? AND key = ? AND "
                     "(expires IS NULL OR expires > ?)", (ns, key, now)).fetchone()
    return row[0] if row else None


def _put(db: sqlite3.Connection, ns: str, key: str, text: str, expires: float | None) -> None:
    db.execute("INSERT OR REPLACE INTO kv (ns, key, value, expires) VALUES (?, ?, ?, ?)",
               (ns, key, text, expires))
