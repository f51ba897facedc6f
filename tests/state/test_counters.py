"""Atomic admission counters and the usage ledger, against both stores (real Redis), plus the
pure window arithmetic they share."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from continuum_cli.state.counters import (
    Check,
    CheckState,
    Settlement,
    bucket_of,
    lease_state,
    window_state,
)
from continuum_cli.state.redis_store import RedisStore
from continuum_cli.state.sqlite_store import SQLiteStore

NOW = 1_800_000_000.0


@pytest.fixture
def store(each_store: object) -> object:
    return each_store  # tests/redis_server.py: once SQLite, once Redis


def exactly(value: float) -> object:
    return pytest.approx(value, abs=1e-6)


def rpm(limit: int, member: str) -> Check:
    return Check("count", "rpm:alice", limit, 60, 1, member)


@pytest.mark.anyio
async def test_count_window_admits_exactly_the_limit(store) -> None:
    results = [await store.admit([rpm(3, f"r{i}")], NOW + i) for i in range(5)]
    assert [r.admitted for r in results] == [True, True, True, False, False]
    assert [r.states[0].used for r in results] == [0, 1, 2, 3, 3]
    # the oldest entry (NOW) leaves the window at NOW + 60
    assert results[3].states[0].free_at == exactly(NOW + 60)
    assert results[3].states[0].newest == exactly(NOW + 2)
    early = await store.admit([rpm(3, "early")], NOW + 59.9)
    assert not early.admitted and early.states[0].used == 3
    later = await store.admit([rpm(3, "late")], NOW + 60.5)
    assert later.admitted and later.states[0].used == 2


@pytest.mark.anyio
async def test_a_bucket_counts_until_its_newest_addition_leaves(store) -> None:
    """Two requests in one second: the bucket holding both counts until the later one is
    60 s old, and retry-after (`free_at`) says exactly when that is."""
    assert (await store.admit([rpm(2, "a")], NOW + 0.1)).admitted
    assert (await store.admit([rpm(2, "b")], NOW + 0.8)).admitted
    refused = await store.admit([rpm(2, "c")], NOW + 1)
    assert not refused.admitted and refused.states[0].free_at == exactly(NOW + 60.8)
    assert refused.states[0].newest == exactly(NOW + 0.8)
    assert not (await store.admit([rpm(2, "d")], NOW + 60.7)).admitted
    later = await store.admit([rpm(2, "e")], NOW + 60.9)
    assert later.admitted and later.states[0].used == 0


@pytest.mark.anyio
async def test_no_more_than_the_limit_in_any_window_across_bucket_edges(store) -> None:
    """Requests late in one second and early in the next: whatever the buckets, no 60 s
    span ever holds more than the limit."""
    admitted: list[float] = []
    for i in range(400):
        at = NOW + i * 0.37
        if (await store.admit([rpm(5, f"e{i}")], at)).admitted:
            admitted.append(at)
    for i, start in enumerate(admitted):
        inside = [t for t in admitted[i:] if t - start < 60]
        assert len(inside) <= 5
    assert len(admitted) >= 5 * 2  # and the window does replenish


@pytest.mark.anyio
async def test_concurrent_admissions_never_exceed_the_limit(store) -> None:
    results = await asyncio.gather(*(store.admit([rpm(60, f"c{i}")], NOW) for i in range(100)))
    assert sum(r.admitted for r in results) == 60


@pytest.mark.anyio
async def test_more_concurrent_admissions_than_connections_all_get_an_answer(store) -> None:
    # Redis: more callers than the client's connection pool holds wait for a connection
    # (within the timeout) instead of failing -- a failure would serve them unmetered
    results = await asyncio.gather(*(store.admit([rpm(60, f"m{i}")], NOW) for i in range(200)))
    assert sum(r.admitted for r in results) == 60


@pytest.mark.anyio
async def test_redis_store_loads_its_script_again_after_a_flush(redis_server) -> None:
    store = RedisStore(redis_server.url, timeout=10.0)
    await store.open()
    try:
        assert (await store.admit([rpm(2, "a")], NOW)).admitted
        await store.redis.script_flush()  # as after a Redis restart
        second = await store.admit([rpm(2, "b")], NOW + 1)
        third = await store.admit([rpm(2, "c")], NOW + 2)
        assert second.admitted and second.states[0].used == 1
        assert not third.admitted and third.states[0].used == 2
    finally:
        await store.close()


@pytest.mark.anyio
async def test_sum_window_and_all_or_nothing(store) -> None:
    tokens = Check("sum", "itpm:alice", 1000, 60, 600, "a")
    assert (await store.admit([tokens], NOW)).admitted
    # 600 + 600 > 1000: refused, and the request-count check beside it adds nothing
    second = await store.admit([rpm(10, "b"), Check("sum", "itpm:alice", 1000, 60, 600, "b")],
                               NOW + 1)
    assert not second.admitted
    assert second.states[0].ok and not second.states[1].ok
    assert second.states[1].used == 600 and second.states[1].free_at == exactly(NOW + 60)
    again = await store.admit([rpm(10, "c")], NOW + 2)
    assert again.states[0].used == 0
    # a request alone larger than the limit can never pass
    huge = await store.admit([Check("sum", "itpm:alice", 1000, 60, 5000, "h")], NOW + 3)
    assert not huge.admitted and math.isinf(huge.states[0].free_at)


@pytest.mark.anyio
async def test_output_window_admits_while_room_is_left_and_settles_later(store) -> None:
    out = Check("sum", "otpm:alice", 100, 60, 0, "x")
    assert (await store.admit([out], NOW)).admitted
    await store.settle(Settlement([Check("sum", "otpm:alice", 100, 60, 100, "x")]), NOW + 1)
    refused = await store.admit([out], NOW + 2)
    assert not refused.admitted and refused.states[0].used == 100
    assert refused.states[0].free_at == exactly(NOW + 61)


@pytest.mark.anyio
async def test_leases_count_concurrency_and_release(store) -> None:
    def lease(member: str) -> Check:
        return Check("lease", "conc:alice", 2, 600, 1, member)

    assert (await store.admit([lease("a")], NOW)).admitted
    assert (await store.admit([lease("b")], NOW)).admitted
    third = await store.admit([lease("c")], NOW)
    assert not third.admitted and third.states[0].used == 2
    await store.settle(Settlement(releases=[("conc:alice", "a")]), NOW + 1)
    assert (await store.admit([lease("c")], NOW + 1)).admitted
    # a lease a crashed replica never released ends after its span
    assert (await store.admit([lease("d")], NOW + 601)).admitted


@pytest.mark.anyio
async def test_counters_add_until_the_cap_and_expire(store) -> None:
    end = NOW + 100
    budget = Check("counter", "budget:alice:daily", 1000, end, 400, "r1")
    assert (await store.admit([budget], NOW)).admitted
    await store.settle(Settlement([Check("counter", "budget:alice:daily", 1000, end, 700,
                                         "r1")]), NOW)
    assert await store.counters(["budget:alice:daily", "nothing"], NOW) == [1100, 0]
    refused = await store.admit([budget], NOW + 1)
    assert not refused.admitted and refused.states[0].free_at == end


@pytest.mark.anyio
async def test_fractional_counters(store) -> None:
    end = NOW + 1e6
    for _ in range(3):
        await store.settle(Settlement([Check("counter", "cost:alice", 50, end, 0.1, "")]), NOW)
    (value,) = await store.counters(["cost:alice"], NOW)
    assert value == pytest.approx(0.3)


@pytest.mark.anyio
async def test_usage_ledger_roundtrip(store) -> None:
    import time

    now = time.time()
    for i in range(3):
        await store.settle(Settlement(records=[{"ts": now - 100 + i, "key": "alice", "n": i}]),
                           now)
    await store.settle(Settlement(records=[{"ts": now - 10_000, "key": "bob", "n": 9}]), now)
    recent = await store.usage_query(now - 1000)
    assert [r["n"] for r in recent] == [0, 1, 2]
    assert len(await store.usage_query(0)) == 4


def test_window_state_table() -> None:
    c = Check("sum", "k", 100, 60, 30, "m")
    assert window_state(c, 0, 0, [], 10) == CheckState(True, 0, 10, 0)
    assert window_state(c, 70, 2, [], 10) == CheckState(True, 70, 10, 2)
    # 50 + 40 + 30 > 100: the first bucket must leave (its newest addition, 1.5, + 60)
    assert window_state(c, 90, 2, [(1.5, 50), (2, 40)], 10) == CheckState(False, 90, 61.5, 2)
    # the two oldest must leave to make room for 90
    big = Check("sum", "k", 100, 60, 90, "m")
    assert window_state(big, 30, 3, [(1, 10), (2, 10), (3, 10)], 10).free_at == 62
    # beyond the page of oldest buckets read: at most a whole window away
    assert window_state(big, 30, 3, [(1, 10)], 10).free_at == 70
    # a count window's buckets hold request counts
    count = Check("count", "k", 3, 60, 1, "m")
    assert window_state(count, 3, 7, [(5, 2), (7, 1)], 10) == CheckState(False, 3, 65, 7)
    assert math.isinf(window_state(Check("sum", "k", 10, 60, 11, "m"), 0, 0, [], 1).free_at)
    assert [bucket_of(now) for now in (100.0, 100.999)] == [100, 100]
    assert lease_state(Check("lease", "k", 1, 60, 1, "m"), 1, 70, 10) == CheckState(
        False, 1, 70)
    assert lease_state(Check("lease", "k", 2, 60, 1, "m"), 1, 70, 10) == CheckState(
        True, 1, 10)


@pytest.mark.anyio
async def test_busy_window_keeps_an_exact_running_total(store) -> None:
    """Buckets leave the window as time passes; the total follows exactly."""
    for i in range(50):
        await store.admit([Check("sum", "busy", 10_000, 60, 10, f"e{i}")], NOW + i)
    # at NOW + 80 the entries at NOW .. NOW + 20 have left: 29 remain (21 .. 49)
    state = (await store.admit([Check("sum", "busy", 10_000, 60, 0, "probe")],
                               NOW + 80)).states[0]
    assert state.used == 290 and state.newest == exactly(NOW + 49)
    full = (await store.admit([Check("sum", "busy", 300, 60, 20, "x")], NOW + 80)).states[0]
    # 290 + 20 > 300: the oldest live entry (NOW + 21) must leave first
    assert not full.ok and full.free_at == exactly(NOW + 81)
    # many admissions in one second share its bucket, and a later check still sees them all
    for i in range(30):
        await store.admit([Check("sum", "busy", 10_000, 60, 1, f"s{i}")], NOW + 90 + i / 40)
    state = (await store.admit([Check("sum", "busy", 10_000, 60, 0, "p")], NOW + 91)).states[0]
    assert state.used == 180 + 30  # the entries at NOW + 32 .. 49, and 30 in NOW + 90
    later = (await store.admit([Check("sum", "busy", 10_000, 60, 0, "y")],
                               NOW + 200)).states[0]
    assert later.used == 0 and later.newest == 0


@pytest.mark.anyio
async def test_settlement_travels_with_the_next_admission(store) -> None:
    import time

    NOW = time.time()  # noqa: N806 (ledger queries use real time)
    lease = Check("lease", "conc:carol", 1, 600, 1, "first")
    assert (await store.admit([lease], NOW)).admitted
    second = Check("lease", "conc:carol", 1, 600, 1, "second")
    assert not (await store.admit([second], NOW)).admitted
    # the release of the first and its ledger record arrive with the second's admission
    done = Settlement(releases=[("conc:carol", "first")],
                      records=[{"ts": NOW, "key": "carol"}, {"ts": NOW + 0.5, "key": "carol"}])
    assert (await store.admit([second], NOW + 1, done)).admitted
    assert [r["key"] for r in await store.usage_query(NOW - 1, NOW + 2)] == ["carol", "carol"]


@pytest.mark.anyio
async def test_large_settlement_after_an_outage(store) -> None:
    """A long backlog (thousands of adds and records) goes through in one settlement."""
    end = NOW + 1e6
    adds = [Check("sum", "otpm:dave", 10**9, 60, 3, f"m{i}") for i in range(3000)]
    adds += [Check("counter", "budget:dave", 10**9, end, 2) for _ in range(3000)]
    records = [{"ts": NOW, "key": "dave", "n": i} for i in range(3000)]
    await store.settle(Settlement(adds, [], records), NOW)
    assert await store.counters(["budget:dave"], NOW) == [6000]
    state = (await store.admit([Check("sum", "otpm:dave", 10**9, 60, 0, "p")], NOW)).states[0]
    assert state.used == 9000


@pytest.mark.anyio
async def test_a_replica_whose_clock_is_behind_leaves_no_count_behind(store) -> None:
    """An addition stamped earlier than the window's oldest bucket (another replica's clock
    is behind) still leaves the window: the total never drifts upward."""
    assert (await store.admit([rpm(10, "ahead")], NOW + 100)).admitted
    assert (await store.admit([rpm(10, "behind")], NOW + 50)).admitted
    later = await store.admit([rpm(10, "probe")], NOW + 161)
    assert later.admitted and later.states[0].used == 0
    assert (await store.admit([rpm(10, "next")], NOW + 162)).states[0].used == 1


@pytest.mark.anyio
async def test_budget_counters_of_the_previous_layout_are_carried_over(tmp_path: Path) -> None:
    """An upgrade must not give a key its budget back: counters kept in the earlier
    `lim_counter` table move to the new layout when the store opens."""
    import sqlite3

    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE lim_counter (key TEXT PRIMARY KEY, value REAL NOT NULL, "
                "expires REAL NOT NULL) WITHOUT ROWID")
    key = "budget:team:a:daily:tokens:1799971200"  # a name with a colon in it
    old.execute("INSERT INTO lim_counter VALUES (?, ?, ?)", (key, 900.0, NOW + 3600))
    old.commit()
    old.close()
    store = SQLiteStore(path, timeout=10.0)
    await store.open()
    try:
        assert await store.counters([key], NOW, "team:a") == [900.0]
        budget = Check("counter", key, 900, NOW + 3600, 200, "r", "team:a")  # spent: refused
        refused = await store.admit([budget], NOW)
        assert not refused.admitted and refused.states[0].used == 900
    finally:
        await store.close()


@pytest.mark.anyio
async def test_two_routers_on_one_sqlite_file_see_each_others_counts(tmp_path: Path) -> None:
    """Each SQLite store keeps the rows it last wrote and reads nothing while it is the only
    writer; the moment another connection commits, it reads again. Two stores on one file,
    taking turns: a limit of 5 admits exactly 5, the lease and the budget are shared too."""
    path = tmp_path / "shared.db"
    one, two = SQLiteStore(path, timeout=10.0), SQLiteStore(path, timeout=10.0)
    await one.open()
    await two.open()
    try:
        results = []
        for i in range(12):
            store = (one, two)[i % 3 == 2]  # runs of two on one store, then one on the other
            results.append(await store.admit([rpm(5, f"m{i}")], NOW + i * 0.1))
        assert sum(r.admitted for r in results) == 5
        assert [r.states[0].used for r in results][:6] == [0, 1, 2, 3, 4, 5]
        lease = Check("lease", "conc:zed", 1, 600, 1, "a", "zed")
        assert (await one.admit([lease], NOW)).admitted
        assert not (await two.admit([lease._replace(member="b")], NOW)).admitted
        await two.settle(Settlement(releases=[("conc:zed", "a", "zed")]), NOW)
        assert (await one.admit([lease._replace(member="c")], NOW + 1)).admitted
        budget = Check("counter", "budget:zed", 100, NOW + 3600, 60, "r", "zed")
        assert (await one.admit([budget], NOW)).admitted
        assert (await two.admit([budget], NOW)).admitted  # 60 < 100
        assert not (await one.admit([budget], NOW)).admitted  # 120: spent
        assert await two.counters(["budget:zed"], NOW, "zed") == [120]
    finally:
        await one.close()
        await two.close()


@pytest.mark.anyio
async def test_released_leases_do_not_pile_up(tmp_path: Path) -> None:
    """A released lease is written back expired in the admission's one write, and such rows
    are deleted in one go once DEAD_LEASES of them gather: a key with one slot admits one
    request after another for ever, and its rows stay few."""
    import sqlite3

    from continuum_cli.state.sqlite_limits import DEAD_LEASES

    store = SQLiteStore(tmp_path / "state.db", timeout=10.0)
    await store.open()
    try:
        previous: Settlement | None = None
        for i in range(3 * DEAD_LEASES + 7):
            lease = Check("lease", "conc:ann", 1, 600, 1, f"m{i}", "ann")
            result = await store.admit([lease], NOW + i, previous)
            assert result.admitted and result.states[0].used == 0, i
            previous = Settlement(releases=[("conc:ann", f"m{i}", "ann")])
        # the last lease is still held (and not released)
        blocked = await store.admit([Check("lease", "conc:ann", 1, 600, 1, "x", "ann")],
                                    NOW + 3 * DEAD_LEASES + 8)
        assert not blocked.admitted and blocked.states[0].used == 1
    finally:
        await store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    (count,) = db.execute("SELECT COUNT(*) FROM lim_state WHERE key LIKE 'tann%'").fetchone()
    db.close()
    assert count <= DEAD_LEASES + 2


@pytest.mark.anyio
async def test_an_admission_stamped_before_another_routers_write_sees_it(
        tmp_path: Path) -> None:
    """A router stamps an admission when the request arrives and reaches the store a little
    later; another router sharing the file may have written the next second's bucket in
    between. Its cache must not take that bucket for absent: a minute later the other
    router's requests still count."""
    path = tmp_path / "shared.db"
    a, b = SQLiteStore(path, timeout=10.0), SQLiteStore(path, timeout=10.0)
    await a.open()
    await b.open()
    try:
        admitted: list[float] = []

        async def go(store: SQLiteStore, at: float, name: str) -> None:
            if (await store.admit([rpm(5, name)], at)).admitted:
                admitted.append(at)

        await go(a, NOW + 0.5, "a0")
        for i in range(4):
            await go(b, NOW + 2.001 + i / 10_000, f"b{i}")
        await go(a, NOW + 1.999, "a1")  # stamped before b's requests, stored after
        for i in range(6):
            await go(a, NOW + 60.6 + i / 100, f"a{i + 2}")
        for i, start in enumerate(admitted):
            assert len([t for t in admitted[i:] if t - start < 60]) <= 5, admitted
    finally:
        await a.close()
        await b.close()
