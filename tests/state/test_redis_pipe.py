"""The Redis store's pipelined script connection (state/redis_pipe.py) against a real
redis-server: password and database from the URL, a server that pauses, dies and comes back,
and the redis-py path that URLs with options take instead."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from continuum_cli.errors import StoreUnavailable
from continuum_cli.state.counters import Check, Settlement
from continuum_cli.state.redis_pipe import ScriptPipe, Target
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
    for db, count in ((3, b"2"), (0, None)):  # the window's running total, in database 3
        client = aioredis.Redis(port=locked_server.port, password=PASSWORD, db=db)
        assert await client.hget("continuum:lim:w:rpm:alice", "u") == count
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


def lease(limit: int, member: str) -> Check:
    return Check("lease", "concurrent:alice", limit, 900, 1, member)


@pytest.fixture
def paused(redis_server: RedisServer) -> Iterator[Callable[[], contextlib.AbstractContextManager]]:
    """`with paused():` Redis is stopped (SIGSTOP) inside, running again after."""
    @contextlib.contextmanager
    def pause() -> Iterator[None]:
        assert redis_server.proc is not None
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
    yield pause


@pytest.mark.anyio
@pytest.mark.parametrize("options", ["", "?socket_keepalive=true"], ids=["pipe", "redis-py"])
async def test_a_call_given_up_during_a_pause_is_not_applied_when_redis_resumes(
        redis_server: RedisServer, paused: Callable[[], contextlib.AbstractContextManager],
        options: str) -> None:
    """A stalled Redis still holds the timed-out call in its socket buffer and runs it when it
    resumes; the call's deadline makes it do nothing then: no window entry, no concurrency
    lease that no request holds, and a settlement the router keeps to send again is not
    applied twice."""
    store = RedisStore(redis_server.url + options, timeout=0.2)
    await store.open()
    try:
        assert (store._pipe is None) == bool(options)
        assert (await store.admit([rpm(10, "a")], NOW)).admitted
        carried = Settlement(adds=[Check("sum", "otpm:alice", 1000, 60, 7, "a")])
        with paused():
            started = asyncio.get_running_loop().time()
            with pytest.raises(StoreUnavailable, match="did not answer"):
                await store.admit([rpm(10, "b"), lease(1, "b")], NOW + 1, carried)
            assert asyncio.get_running_loop().time() - started < 2.0
        await asyncio.sleep(0.3)  # Redis works through what it buffered
        later = await store.admit([rpm(10, "c"), lease(1, "c"),
                                   Check("sum", "otpm:alice", 1000, 60, 0, "c")], NOW + 2)
        assert later.admitted, later
        assert [s.used for s in later.states] == [1, 0, 0]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_call_that_outlives_its_deadline_is_refused_and_the_clock_catches_up(
        redis_server: RedisServer) -> None:
    """The deadline is in Redis's time, from an estimate of its clock. If the estimate is
    wrong (the server's clock was stepped), the call that finds out is refused -- nothing
    applied -- and the next one uses the corrected estimate."""
    store = RedisStore(redis_server.url, timeout=1.0)
    await store.open()
    try:
        assert store.clock.offset is not None
        store.clock.offset -= 5.0  # as if Redis's clock had jumped 5 s ahead
        with pytest.raises(StoreUnavailable, match="after its deadline"):
            await store.admit([rpm(10, "a")], NOW)
        after = await store.admit([rpm(10, "b")], NOW + 1)
        assert after.admitted and after.states[0].used == 0
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


@pytest.mark.anyio
async def test_an_argument_that_cannot_be_sent_fails_alone(redis_server: RedisServer) -> None:
    """Replies are matched to calls by order: a call whose command cannot be packed must not
    queue a waiter, or every later caller would get the reply meant for the one before."""
    pipe = ScriptPipe.for_url(redis_server.url, 1.0)
    assert pipe is not None
    try:
        assert await pipe.call("PING") == "PONG"
        with pytest.raises(Exception):  # noqa: B017 -- hiredis's own error for the argument
            await pipe.call("ECHO", "\ud800")
        replies = await asyncio.wait_for(asyncio.gather(
            pipe.call("ECHO", "for-a"), pipe.call("ECHO", "for-b")), 2.0)
        assert replies == ["for-a", "for-b"]
    finally:
        pipe.close()


@contextlib.asynccontextmanager
async def fake_redis(handler: Callable[..., Any], userinfo: str,
                     timeout: float) -> AsyncIterator[ScriptPipe]:
    """A pipe to a scripted server on a free port (`handler` plays Redis)."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = ScriptPipe.for_url(f"redis://{userinfo}127.0.0.1:{port}/0", timeout)
    assert pipe is not None
    try:
        yield pipe
    finally:
        pipe.close()
        server.close()


@pytest.mark.anyio
async def test_a_connection_dropped_by_the_server_fails_calls_at_once() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with fake_redis(hang_up, "", 1.0) as pipe:
        started = asyncio.get_running_loop().time()
        for _ in range(3):
            with pytest.raises(RedisConnectionError):
                await asyncio.wait_for(pipe.call("PING"), 5.0)
        assert asyncio.get_running_loop().time() - started < 2.0  # none waits for a reply


@pytest.mark.anyio
async def test_closing_while_connecting_leaves_no_connection_behind() -> None:
    """close() during the AUTH handshake: the waiting call fails, the connection is dropped
    (the server sees it end) and later calls are refused rather than connecting again."""
    ended = asyncio.Event()
    accepted = 0

    async def slow_auth(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.read(100)
        await asyncio.sleep(0.2)
        writer.write(b"+OK\r\n")
        await reader.read(100)  # b"" once the client has dropped the connection
        ended.set()

    async with fake_redis(slow_auth, ":pw@", 2.0) as pipe:
        waiting = asyncio.ensure_future(pipe.call("PING"))
        await asyncio.sleep(0.05)
        pipe.close()
        with pytest.raises((RedisConnectionError, asyncio.CancelledError)):
            await asyncio.wait_for(waiting, 2.0)
        await asyncio.wait_for(ended.wait(), 2.0)
        with pytest.raises(RedisConnectionError, match="closed"):
            await pipe.call("PING")
        assert accepted == 1


@pytest.mark.anyio
async def test_each_call_fails_at_its_own_deadline_and_replies_keep_their_order(
        redis_server: RedisServer,
        paused: Callable[[], contextlib.AbstractContextManager]) -> None:
    """One timer watches every pending call's deadline (no timer per call): with Redis
    paused, a call with a short deadline fails then, one with a longer deadline later, one
    without a deadline waits; after Redis resumes, the late replies are dropped in order and
    every later call gets its own reply."""
    pipe = ScriptPipe.for_url(redis_server.url, 1.0)
    assert pipe is not None
    loop = asyncio.get_running_loop()
    try:
        assert await pipe.call("PING") == "PONG"
        with paused():
            start = loop.time()
            calls = [asyncio.ensure_future(pipe.call("ECHO", name, deadline=start + wait))
                     for name, wait in (("long", 0.6), ("short", 0.2))]
            patient = asyncio.ensure_future(pipe.call("ECHO", "patient"))
            done: list[tuple[str, float]] = []
            for name, call in zip(("long", "short"), calls, strict=True):
                call.add_done_callback(lambda _, n=name: done.append((n, loop.time() - start)))
            with pytest.raises(TimeoutError):
                await calls[1]
            with pytest.raises(TimeoutError):
                await calls[0]
            assert [n for n, _ in done] == ["short", "long"]
            assert 0.15 <= done[0][1] < 0.5 and 0.55 <= done[1][1] < 1.5
            assert not patient.done()
        assert await asyncio.wait_for(patient, 5.0) == "patient"
        replies = await asyncio.gather(*(pipe.call("ECHO", f"r{i}", deadline=loop.time() + 5)
                                         for i in range(5)))
        assert replies == [f"r{i}" for i in range(5)]
    finally:
        pipe.close()
