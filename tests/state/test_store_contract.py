"""The state store contract (`StateStore` in continuum_cli/state/base.py), run
against both implementations: SQLite in a temp dir and a real redis-server on a free port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from continuum_cli.config.models import StateSettings
from continuum_cli.errors import StoreUnavailable
from continuum_cli.state import open_store
from continuum_cli.state.redis_store import RedisStore
from continuum_cli.state.sqlite_store import SQLiteStore
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(each_store: object) -> object:
    return each_store  # tests/redis_server.py: once SQLite, once Redis


async def test_put_get_roundtrip(store) -> None:
    value = {"a": 1, "b": [1, 2.5, "x"], "nested": {"ü": None, "t": True}}
    assert await store.kv_get("files", "f1") is None
    await store.kv_put("files", "f1", value)
    assert await store.kv_get("files", "f1") == value
    await store.kv_put("files", "f1", {"a": 2})
    assert await store.kv_get("files", "f1") == {"a": 2}


async def test_namespaces_are_separate(store) -> None:
    await store.kv_put("a", "k", {"v": 1})
    await store.kv_put("b", "k", {"v": 2})
    assert await store.kv_get("a", "k") == {"v": 1}
    assert await store.kv_get("b", "k") == {"v": 2}
    assert await store.kv_list("a") == [("k", {"v": 1})]


async def test_ttl_expires(store) -> None:
    await store.kv_put("t", "short", {"v": 1}, ttl=0.3)
    await store.kv_put("t", "long", {"v": 2}, ttl=60)
    assert await store.kv_get("t", "short") == {"v": 1}
    await asyncio.sleep(0.5)
    assert await store.kv_get("t", "short") is None
    assert await store.kv_list("t") == [("long", {"v": 2})]
    assert await store.kv_take("t", "short") is None
    assert await store.kv_delete("t", "short") is False


async def test_put_new_only_when_absent_or_expired(store) -> None:
    assert await store.kv_put_new("d", "code", {"n": 1}) is True
    assert await store.kv_put_new("d", "code", {"n": 2}) is False
    assert await store.kv_get("d", "code") == {"n": 1}
    assert await store.kv_put_new("d", "brief", {"n": 1}, ttl=0.2) is True
    await asyncio.sleep(0.4)
    assert await store.kv_put_new("d", "brief", {"n": 3}) is True
    assert await store.kv_get("d", "brief") == {"n": 3}


async def test_take_is_single_use(store) -> None:
    await store.kv_put("codes", "c", {"user": "alice"})
    results = await asyncio.gather(*(store.kv_take("codes", "c") for _ in range(10)))
    assert [r for r in results if r is not None] == [{"user": "alice"}]
    assert await store.kv_get("codes", "c") is None


async def test_update_is_compare_and_set(store) -> None:
    await store.kv_put("tok", "t", {"gen": 1})
    assert await store.kv_update("tok", "t", {"gen": 2}, {"gen": 3}) is False
    assert await store.kv_update("tok", "t", {"gen": 1}, {"gen": 2}) is True
    assert await store.kv_get("tok", "t") == {"gen": 2}
    assert await store.kv_update("tok", "missing", {}, {"gen": 1}) is False
    # key order does not matter: values compare as dicts
    await store.kv_put("tok", "o", {"a": 1, "b": 2})
    assert await store.kv_update("tok", "o", {"b": 2, "a": 1}, {"a": 9}) is True


async def test_concurrent_updates_one_winner(store) -> None:
    await store.kv_put("tok", "race", {"gen": 0})
    wins = await asyncio.gather(*(store.kv_update("tok", "race", {"gen": 0}, {"gen": i})
                                  for i in range(1, 9)))
    assert sum(wins) == 1


async def test_update_ttl(store) -> None:
    await store.kv_put("tok", "t", {"gen": 1})
    assert await store.kv_update("tok", "t", {"gen": 1}, {"gen": 2}, ttl=0.2) is True
    await asyncio.sleep(0.4)
    assert await store.kv_get("tok", "t") is None


async def test_delete(store) -> None:
    await store.kv_put("x", "k", {"v": 1})
    assert await store.kv_delete("x", "k") is True
    assert await store.kv_delete("x", "k") is False
    assert await store.kv_get("x", "k") is None
    assert await store.kv_list("x") == []


async def test_list_prefix_and_order(store) -> None:
    for key in ["user:b", "user:a", "user:c", "other", "user%_x", "user"]:
        await store.kv_put("ns", key, {"k": key})
    listed = await store.kv_list("ns", "user:")
    assert [k for k, _ in listed] == ["user:a", "user:b", "user:c"]
    assert [v["k"] for _, v in listed] == ["user:a", "user:b", "user:c"]
    assert [k for k, _ in await store.kv_list("ns", "user%")] == ["user%_x"]
    everything = [k for k, _ in await store.kv_list("ns")]
    assert everything == sorted(everything) and len(everything) == 6


async def test_values_must_be_dicts(store) -> None:
    with pytest.raises(TypeError):
        await store.kv_put("x", "k", ["not", "a", "dict"])  # type: ignore[arg-type]


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "s.db")
    await first.open()
    await first.kv_put("files", "f", {"size": 3})
    await first.close()
    second = SQLiteStore(tmp_path / "s.db")
    await second.open()
    assert await second.kv_get("files", "f") == {"size": 3}
    await second.close()
    mode = (tmp_path / "s.db-wal").exists() or (tmp_path / "s.db").exists()
    assert mode


async def test_sqlite_is_wal(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    mode = await store.run(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0])
    await store.close()
    assert mode == "wal"


async def test_sqlite_unwritable_path_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = SQLiteStore(blocker / "sub" / "s.db")
    with pytest.raises(StoreUnavailable, match="cannot open the state database"):
        await store.open()


async def test_redis_unreachable_raises_store_unavailable(tmp_path: Path) -> None:
    from tests.redis_server import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    await store.open()  # start-up does not fail: replicas start while Redis is away
    with pytest.raises(StoreUnavailable):
        await store.kv_get("x", "k")
    await store.close()


async def test_redis_killed_then_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "r").start()
    store = RedisStore(server.url, timeout=1.0)
    await store.open()
    try:
        await store.kv_put("x", "k", {"v": 1})
        server.stop()
        with pytest.raises(StoreUnavailable):
            await store.kv_get("x", "k")
        server.start()
        await store.kv_put("x", "k", {"v": 2})
        assert await store.kv_get("x", "k") == {"v": 2}
    finally:
        await store.close()
        server.stop()


async def test_redis_slow_call_times_out(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, timeout=0.05)
    await store.open()
    try:
        with pytest.raises(StoreUnavailable, match="within 50 ms"):
            await store.run(store.redis.execute_command("DEBUG", "SLEEP", "0.3"))
        await asyncio.sleep(0.4)
        await store.kv_put("x", "k", {"v": 1})  # the client recovers
        assert await store.kv_get("x", "k") == {"v": 1}
    finally:
        await store.close()


def test_open_store_picks_the_implementation(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store(StateSettings(redis_url="redis://127.0.0.1:1/0")), RedisStore)
    chosen = open_store(StateSettings(path=str(tmp_path / "a.db")))
    assert isinstance(chosen, SQLiteStore) and chosen.path == tmp_path / "a.db"
    default = open_store(StateSettings())
    assert isinstance(default, SQLiteStore)
    assert default.path.name == "continuum.db" and "continuum" in default.path.parts
    monkeypatch.setenv("CONTINUUM_STATE_PATH", str(tmp_path / "env.db"))
    assert open_store(StateSettings()).path == tmp_path / "env.db"


async def test_sqlite_waits_for_another_process_lock_off_the_loop(tmp_path: Path) -> None:
    """Another writer holds the lock: the call moves to the store's thread and waits there
    (the event loop keeps running), then succeeds once the lock is free."""
    import sqlite3
    import threading

    store = SQLiteStore(tmp_path / "shared.db", timeout=5.0)
    await store.open()
    other = sqlite3.connect(tmp_path / "shared.db", isolation_level=None,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(ticker())
    await store.kv_put("x", "k", {"v": 1})
    task.cancel()
    assert ticks >= 10  # the loop ran while the write waited
    assert await store.kv_get("x", "k") == {"v": 1}
    await store.close()
    other.close()


async def test_sqlite_lock_held_past_the_timeout_is_store_unavailable(tmp_path: Path) -> None:
    import sqlite3

    store = SQLiteStore(tmp_path / "locked.db", timeout=0.1)
    await store.open()
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable):
            await store.kv_put("x", "k", {"v": 1})
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.close()


async def test_sqlite_call_reached_after_its_caller_left_applies_nothing(tmp_path: Path) -> None:
    """The store's thread is busy (a long ledger query) and another process holds the write
    lock: the admission goes to the thread's queue, its caller times out, and when the thread
    is free again it must not count the request that was never admitted."""
    import sqlite3
    import threading
    import time

    from continuum_cli.state.counters import Check

    store = SQLiteStore(tmp_path / "late.db", timeout=0.1)
    await store.open()
    rpm = [Check("count", "rpm:alice", 10, 60, 1, "r1")]
    busy = asyncio.ensure_future(store.run(lambda db: time.sleep(0.5), inline=False,
                                           timeout=5.0))
    await asyncio.sleep(0.05)
    other = sqlite3.connect(tmp_path / "late.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.2, lambda: other.execute("ROLLBACK")).start()
    try:
        with pytest.raises(StoreUnavailable, match="did not answer"):
            await store.admit(rpm, 1_800_000_000.0)
        await busy
        await asyncio.sleep(0.1)
        after = await store.admit([Check("count", "rpm:alice", 10, 60, 1, "r2")],
                                  1_800_000_001.0)
        assert after.admitted and after.states[0].used == 0
    finally:
        other.close()
        await store.close()
