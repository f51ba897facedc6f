"""A request cancelled while its admission is on the way (its client left) never keeps a
concurrency slot, and one dropped before its admission was sent counts nothing. The real
Meter, gate and stores (SQLite, a real redis-server)."""

from __future__ import annotations

import asyncio
import time
import types

import pytest

from continuum_cli.auth import Caller
from continuum_cli.config.models import KeyLimits
from continuum_cli.errors import RateLimited
from continuum_cli.limits import gate
from continuum_cli.state.counters import Check
from continuum_cli.state.redis_store import RedisStore
from continuum_cli.usage.meter import Meter
from continuum_cli.usage.observe import Counts

CALLER = Caller("alice", KeyLimits(concurrent_requests=1, requests_per_minute=100),
                authenticated=True)
ROUTE = types.SimpleNamespace(requested="sonnet", upstream_model="m",
                              backend=types.SimpleNamespace(name="b"))


@pytest.fixture
async def state(each_store: object) -> object:
    """The parts of the app state a meter uses, on each store (tests/redis_server.py)."""
    store = each_store
    await store.admit([], time.time())  # connected (Redis: the pipelined connection is up)
    settings = types.SimpleNamespace(pricing={}, state=types.SimpleNamespace(on_error="open"))
    return types.SimpleNamespace(settings=settings, store=store, usage_scale=lambda _: None)


async def _cancelled_while_admitting(state: object) -> Meter:
    meter = Meter(state, CALLER, "/anthropic/v1/messages", "anthropic")

    async def handler() -> None:  # messages.create_message: begin, translate, admitted
        meter.begin(ROUTE, 10)
        await meter.admitted()
        await asyncio.sleep(30)  # upstream

    task = asyncio.ensure_future(handler())
    await asyncio.sleep(0)  # begin ran; the answer is awaited
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    meter.abandoned()  # what the app does when its handler is cancelled
    return meter


async def _admitted_again(state: object) -> bool:
    await gate.settler_of(state).drain()  # the release travels to the store
    try:
        await Meter(state, CALLER, "/anthropic/v1/messages", "anthropic").admit(ROUTE, 10)
    except RateLimited:
        return False
    return True


@pytest.mark.anyio
async def test_a_request_cancelled_during_its_admission_frees_its_slot(state) -> None:
    await _cancelled_while_admitting(state)
    assert await _admitted_again(state)


@pytest.mark.anyio
async def test_a_request_dropped_before_its_answer_was_needed(state) -> None:
    """On SQLite the admission runs when awaited: a request dropped before that takes no slot
    and adds no request. On Redis its script was sent with `begin` and counts the request
    (it reached the router), and its slot is released."""
    meter = Meter(state, CALLER, "/anthropic/v1/messages", "anthropic")
    meter.begin(ROUTE, 10)
    meter.abandoned()
    assert await _admitted_again(state)
    probe = Check("count", "requests:alice", 100, 60, 0, "probe", "alice")
    (window,) = (await state.store.admit([probe], time.time())).states
    assert window.used == (2 if isinstance(state.store, RedisStore) else 1)


def _write_lock_free(store: object) -> bool:
    """SQLite: whether another connection could take the write lock now."""
    import sqlite3

    other = sqlite3.connect(store.path, timeout=0)  # type: ignore[attr-defined]
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def _lock_freed(store: object) -> bool:
    """The write lock is free within a second (the store's thread sweeps expired rows after
    the first write, and holds it meanwhile)."""
    await store.run(lambda db: None, inline=False)  # type: ignore[attr-defined]
    # ^ queued behind that sweep on the store's one thread: it has run
    for _ in range(100):
        if _write_lock_free(store):
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.anyio
async def test_the_router_counts_its_requests_under_way(state) -> None:
    """A request is under way from its admission to its settlement, whatever its end (served,
    refused, cancelled). Alone, its SQLite admission commits at the loop's next turn; with
    another under way, before it answers (the loop's turn may then be far off)."""
    settler = gate.settler_of(state)
    sqlite = not isinstance(state.store, RedisStore)
    if sqlite:
        assert await _lock_freed(state.store)
    first = Meter(state, CALLER, "/anthropic/v1/messages", "anthropic")
    await first.admit(ROUTE, 10)
    assert settler.active == 1
    if sqlite:
        assert not _write_lock_free(state.store)  # alone: its commit waits for the turn
        assert await _lock_freed(state.store)
    second = Meter(state, CALLER, "/anthropic/v1/messages", "anthropic")
    with pytest.raises(RateLimited) as refused:  # one concurrent request allowed
        await second.admit(ROUTE, 10)
    assert settler.active == 2
    if sqlite:
        assert _write_lock_free(state.store)  # not alone: committed before it answered
    await second.failed(refused.value)
    first.finish(200, Counts(output_tokens=3))
    assert settler.active == 0
    await _cancelled_while_admitting(state)
    assert settler.active == 0


@pytest.fixture
async def sqlite_state(tmp_path) -> object:
    from continuum_cli.state.sqlite_store import SQLiteStore

    store = SQLiteStore(tmp_path / "state.db", timeout=5.0)
    await store.open()
    settings = types.SimpleNamespace(pricing={}, state=types.SimpleNamespace(on_error="open"))
    yield types.SimpleNamespace(settings=settings, store=store, usage_scale=lambda _: None)
    await store.close()


@pytest.mark.anyio
async def test_a_large_request_commits_before_it_goes_upstream(sqlite_state) -> None:
    """Serialising a large request for its upload takes long enough that the SQLite lock is
    not held across it: its admission commits before it answers, alone or not."""
    state = sqlite_state
    await state.store.admit([], time.time())
    assert await _lock_freed(state.store)
    meter = Meter(state, CALLER, "/anthropic/v1/messages", "anthropic")
    await meter.admit(ROUTE, gate.ALONE_MAX_TOKENS + 1)
    assert _write_lock_free(state.store)
    meter.finish(200, Counts())
    assert gate.settler_of(state).active == 0


@pytest.mark.anyio
async def test_an_answer_whose_usage_cannot_be_read_is_still_settled(state) -> None:
    meter = Meter(state, CALLER, "/anthropic/v1/messages", "anthropic")
    await meter.admit(ROUTE, 10)
    response = types.SimpleNamespace(status=200, headers={}, log={},
                                     body=b'{"usage": {"prompt_tokens": 1e400, '
                                          b'"prompt_tokens_details": "x"}}')
    await meter.attach(response)
    await asyncio.sleep(0)  # counted at the loop's next turn
    assert gate.settler_of(state).active == 0
    assert await _admitted_again(state)  # its concurrency slot was released
