"""SQLite: an admission on the event loop's connection made while no other request of the
router is under way (`alone`) decides under the write lock and leaves its write and COMMIT
for the loop's next turn (while the request waits on its upstream). The
lock is held until then, so nothing another replica does can slip in between; anything else
on the connection commits it first; closing the store commits it; a write that fails then is
logged and leaves nothing half-done."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from continuum_cli.state.counters import Admission, Check
from continuum_cli.state.sqlite_store import SQLiteStore

NOW = 1_800_000_000.0


def rpm(limit: int, member: str) -> Check:
    return Check("count", "rpm:alice", limit, 60, 1, member, "alice")


def rows_on_disk(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM lim_state").fetchone()[0]
    finally:
        db.close()


async def opened(path: Path) -> SQLiteStore:
    store = SQLiteStore(path, timeout=10.0)
    await store.open()
    return store


async def reopened_and_asked(path: Path, limit: int) -> Admission:
    """What a store opened afresh on `path` answers one more request."""
    again = await opened(path)
    try:
        return await again.admit([rpm(limit, "later")], NOW + 1)
    finally:
        await again.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """An open store on tmp_path/state.db, closed after the test."""
    opened_store = await opened(tmp_path / "state.db")
    yield opened_store
    await opened_store.close()


@pytest.mark.anyio
async def test_the_write_lands_by_the_next_turn_of_the_loop(store: SQLiteStore) -> None:
    assert (await store.admit([rpm(5, "a")], NOW, alone=True)).admitted
    await asyncio.sleep(0)
    assert rows_on_disk(store.path) == 2  # the window's total and its bucket


@pytest.mark.anyio
async def test_not_alone_an_admission_commits_before_it_answers(store: SQLiteStore) -> None:
    assert (await store.admit([rpm(5, "a")], NOW)).admitted
    assert rows_on_disk(store.path) == 2  # no turn of the loop needed
    other = sqlite3.connect(store.path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # and the lock is free
    other.execute("ROLLBACK")
    other.close()


@pytest.mark.anyio
async def test_another_replica_waits_for_the_open_admission_and_sees_it(tmp_path: Path
                                                                         ) -> None:
    """Replica B (its own thread and loop, as another process would be) asks while A's
    admission is still open: B waits for the lock A holds, then counts A's request, so a limit
    of 1 admits exactly one of them."""
    path = tmp_path / "shared.db"
    a = await opened(path)
    result: dict[str, object] = {}

    def replica_b() -> None:
        async def ask() -> None:
            b = await opened(path)
            try:
                result["b"] = await b.admit([rpm(1, "b")], NOW + 0.001)
            finally:
                await b.close()
        asyncio.run(ask())

    try:
        assert (await a.admit([rpm(1, "a")], NOW, alone=True)).admitted
        other = sqlite3.connect(path, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")  # A's transaction holds the write lock
        other.close()
        thread = threading.Thread(target=replica_b)
        thread.start()
        time.sleep(0.3)  # this loop does not turn: B waits on A's lock all along
        assert "b" not in result
        await asyncio.to_thread(thread.join, 30)
        refused = result["b"]
        assert isinstance(refused, Admission)
        assert not refused.admitted and refused.states[0].used == 1
    finally:
        await a.close()


@pytest.mark.anyio
async def test_back_to_back_admissions_on_one_store_count_each_other(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await opened(path)
    try:
        # no turn of the loop between them: each commits the one before it first
        results = [await store.admit([rpm(2, f"m{i}")], NOW + i / 10, alone=True)
                   for i in range(4)]
        assert [r.admitted for r in results] == [True, True, False, False]
        assert [r.states[0].used for r in results] == [0, 1, 2, 2]
        assert await store.counters(["budget:none"], NOW) == [0]  # a read commits it too
    finally:
        await store.close()
    assert not (await reopened_and_asked(path, 2)).admitted


@pytest.mark.anyio
async def test_closing_the_store_commits_the_open_admission(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await opened(path)
    assert (await store.admit([rpm(1, "a")], NOW, alone=True)).admitted
    await store.close()  # no turn of the loop before it
    refused = await reopened_and_asked(path, 1)
    assert not refused.admitted and refused.states[0].used == 1


@pytest.mark.anyio
async def test_a_write_that_fails_at_the_commit_is_logged_and_rolled_back(
        store: SQLiteStore, caplog: pytest.LogCaptureFixture) -> None:
    assert (await store.admit([rpm(1, "a")], NOW, alone=True)).admitted
    store._later.append((lambda db, _: db.execute("INSERT INTO nowhere VALUES (1)"), None))
    with caplog.at_level(logging.ERROR, logger="continuum.state"):
        await asyncio.sleep(0)
    assert "an admission could not be recorded" in caplog.text
    assert rows_on_disk(store.path) == 0  # nothing half-written
    # the connection is usable, and its cache was dropped with the transaction
    again = await store.admit([rpm(1, "b")], NOW + 1, alone=True)
    assert again.admitted and again.states[0].used == 0
    await asyncio.sleep(0)
    assert rows_on_disk(store.path) == 2


@pytest.mark.anyio
async def test_a_read_failing_on_the_stores_thread_leaves_the_open_admission_alone(
        store: SQLiteStore) -> None:
    """A read on the store's thread runs while the loop's connection has an admission open
    (readers never wait for the write lock); its failure must not drop that admission."""
    assert (await store.admit([rpm(1, "a")], NOW, alone=True)).admitted

    def fails(db: sqlite3.Connection) -> None:
        db.execute("SELECT COUNT(*) FROM lim_state").fetchone()
        raise ValueError("a read that fails")

    with pytest.raises(ValueError):
        await store.run(fails, inline=False)
    await asyncio.sleep(0)
    assert rows_on_disk(store.path) == 2
    assert not (await store.admit([rpm(1, "b")], NOW + 1)).admitted


@pytest.mark.anyio
async def test_any_error_at_the_commit_releases_the_lock(
        store: SQLiteStore, caplog: pytest.LogCaptureFixture) -> None:
    assert (await store.admit([rpm(1, "a")], NOW, alone=True)).admitted

    def overflow(db: sqlite3.Connection, _: object) -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    store._later.append((overflow, None))
    with caplog.at_level(logging.ERROR, logger="continuum.state"):
        await asyncio.sleep(0)
    assert "an admission could not be recorded" in caplog.text
    other = sqlite3.connect(store.path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another replica can write again
    other.execute("ROLLBACK")
    other.close()
    assert (await store.admit([rpm(1, "b")], NOW + 1, alone=True)).admitted
