"""The Redis store's pipelined script connection (state/redis_pipe.py) against a real
redis-server: password and database from the URL, a server that pauses, dies and comes back,
and the redis-py path that URLs with options take instead."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from continuum_cli.errors import StoreUnavailable
from continuum_cli.state.counters import Check
from continuum_cli.state.redis_pipe import Target
from continuum_cli.state.redis_store import RedisStore
from tests.redis_server import RedisServer

NOW = 1_800_000_000.0


def rpm(limit: int, member: str) -> Check:
    return Check("count", "rpm:alice", limit, 60, 1, member)


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://127.0.0.1:6379/0", ("127.0.0.1", 6379, 0, None, None)),
    ("redis://localhost", ("localhost", 6379, 0, None, None)),
    ("redis://:s%40cret@10.0.0.5:7000/3", ("10.0.0.5", 7000, 3, None, "s@cret")),
    ("redis://ops:pw@h:1/", ("h", 1, 0, "ops", "pw")),
    ("rediss://h:6380/0", None),  # TLS: redis-py
    ("unix:///run/redis.sock", None),
    ("redis://h:6379/0?socket_keepalive=true", None),  # options: redis-py
    ("redis://h:6379/zero", None),
])
def test_which_urls_take_the_pipelined_path(url: str, expected: tuple | None) -> None:
    target = Target.from_url(url)
    if expected is None:
        assert target is None
        return
    assert target is not None
    assert (target.host, target.port, target.db, target.username,
            target.password) == expected


PASSWORD = "p@ss word"


@pytest.fixture
def locked_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that wants a password."""
    server = RedisServer(tmp_path / "r", extra=("--requirepass", PASSWORD)).start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def opened(url: str, timeout: float) -> AsyncIterator[RedisStore]:
    store = RedisStore(url, timeout=timeout)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.anyio
async def test_password_and_database_from_the_url(locked_server: RedisServer) -> None:
    url = f"redis://:p%40ss%20word@127.0.0.1:{locked_server.port}/3"
    async with opened(url, 5.0) as store:
        assert store._pipe is not None
        results = [await store.admit([rpm(2, f"r{i}")], NOW + i) for i in range(3)]
        assert [r.admitted for r in results] == [True, True, False]
    for db, count in ((3, 2), (0, 0)):
        client = aioredis.Redis(port=locked_server.port, password=PASSWORD, db=db)
        assert await client.zcard("continuum:lim:rpm:alice") == count
        await client.aclose()


@pytest.mark.anyio
async def test_a_wrong_password_is_unavailable_and_never_shown(
        locked_server: RedisServer) -> None:
    url = f"redis://:wrong-secret-9@127.0.0.1:{locked_server.port}/0"
    async with opened(url, 2.0) as store:
        with pytest.raises(StoreUnavailable) as caught:
            await store.admit([rpm(2, "a")], NOW)
        assert "wrong-secret-9" not in caught.value.message
        assert "WRONGPASS" in caught.value.message or "invalid" in caught.value.message


@pytest.mark.anyio
async def test_a_paused_redis_times_out_and_is_used_again_when_it_resumes(
        redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, timeout=0.2)
    await store.open()
    try:
        assert (await store.admit([rpm(10, "a")], NOW)).admitted
        assert redis_server.proc is not None
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(StoreUnavailable, match="did not answer"):
                await store.admit([rpm(10, "b")], NOW + 1)
            assert asyncio.get_running_loop().time() - started < 2.0
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        # the call that timed out still reached Redis; the reply it left is skipped
        later = await store.admit([rpm(10, "c")], NOW + 2)
        assert later.admitted and later.states[0].used == 2
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_killed_redis_is_unavailable_until_it_is_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "r").start()
    store = RedisStore(server.url, timeout=1.0)
    await store.open()
    try:
        assert (await store.admit([rpm(10, "a")], NOW)).admitted
        server.stop()
        for member in ("b", "c"):  # the lost connection, then a refused reconnect
            with pytest.raises(StoreUnavailable):
                await store.admit([rpm(10, member)], NOW + 1)
        server.start()  # same port, empty (no persistence): the script is loaded again
        back = await store.admit([rpm(10, "d")], NOW + 2)
        assert back.admitted and back.states[0].used == 0
    finally:
        await store.close()
        server.stop()


@pytest.mark.anyio
async def test_urls_with_options_go_through_redis_py(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url + "?socket_keepalive=true", timeout=5.0)
    await store.open()
    try:
        assert store._pipe is None
        results = await asyncio.gather(*(store.admit([rpm(5, f"m{i}")], NOW)
                                         for i in range(120)))
        assert sum(r.admitted for r in results) == 5
        await store.redis.script_flush()
        assert not (await store.admit([rpm(5, "late")], NOW + 1)).admitted
    finally:
        await store.close()
