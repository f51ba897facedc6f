"""`RedisStore`: the state store shared by several replicas (`redis.asyncio`, the optional
extra `continuum[redis]`).

Layout under the `continuum:` prefix: `kv:<ns>:<key>` holds a value (TTL as the key's PX
expiry); `kvi:<ns>` is a sorted set of the namespace's keys (score 0, ordered by bytes) so
`kv_list` needs no SCAN over the whole database. Every multi-key change is one Lua script,
atomic on the server: two replicas never both take a single-use code.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from continuum_cli.errors import StoreUnavailable
from continuum_cli.state import redis_limits
from continuum_cli.state.redis_run import RUN
from continuum_cli.state.codec import decode, encode
from continuum_cli.state.counters import Admission, Check, Settlement
from continuum_cli.state.server_clock import ServerClock

T = TypeVar("T")
log = logging.getLogger("continuum.state")
PREFIX = "continuum:"
CLOCK_SLACK = 300.0  # seconds: replicas' clocks against Redis's, for ledger reads
MAX_CONNECTIONS = 64  # per router process

# KEYS: value key, index key. ARGV: value, ttl ms ('' = forever), member, only-if-absent
_PUT = """
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1])
else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
redis.call('ZADD', KEYS[2], 0, ARGV[3])
return 1
"""
# KEYS: value key, index key. ARGV: member
_TAKE = """
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return v
"""
# KEYS: value key, index key. ARGV: expected, value, ttl ms ('' = forever), member
_UPDATE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
redis.call('ZADD', KEYS[2], 0, ARGV[4])
return 1
"""


def _ttl_ms(ttl: float | None) -> str:
    return "" if ttl is None else str(max(1, math.ceil(ttl * 1000)))


class RedisStore:
    def __init__(self, url: str, *, timeout: float = 0.05,
                 usage_retention: float = 90 * 86400) -> None:
        self.url = url
        self.timeout = timeout
        self.usage_retention = usage_retention
        self.description = f"redis {_safe_url(url)}"
        self.redis: Any = None
        self._pipe: Any = None  # redis_pipe.ScriptPipe: the request path's script calls
        self._scripts: dict[str, Any] = {}
        self.clock = ServerClock()  # deadlines for RUN in Redis's time

    async def open(self) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise StoreUnavailable(
                "state.redis_url is set but the redis package is not installed",
                hint="pip install 'continuum[redis]'") from None
        # the socket timeouts bound a dead server; `run` bounds every call by `timeout`
        # a blocking pool: past MAX_CONNECTIONS busy connections a call waits for one (within
        # its timeout) instead of failing with "Too many connections" -- which would serve
        # the request unmetered; one Redis runs one command at a time anyway
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=MAX_CONNECTIONS, timeout=None, decode_responses=True,
            socket_timeout=max(self.timeout, 0.5),
            socket_connect_timeout=max(self.timeout, 0.5), retry_on_timeout=False,
            health_check_interval=0)
        self.redis = aioredis.Redis(connection_pool=pool)
        from continuum_cli.state.redis_pipe import ScriptPipe  # needs the redis package

        self._pipe = ScriptPipe.for_url(self.url, max(self.timeout, 0.5))
        for name, source in (("put", _PUT), ("take", _TAKE), ("update", _UPDATE),
                             ("run", RUN)):
            self.register(name, source)
        try:
            sent = time.monotonic()
            seconds, micros = await self.run(self.redis.time(), timeout=max(self.timeout, 2.0))
            self.clock.observe(sent, time.monotonic(), seconds * 1000 + micros / 1000)
        except StoreUnavailable as exc:  # replicas keep starting while Redis is away
            log.error("state store %s is unreachable at start-up: %s", self.description,
                      exc.message)

    def register(self, name: str, source: str) -> None:
        self._scripts[name] = self.redis.register_script(source)

    def script(self, name: str, keys: list[str], args: list[Any]) -> Awaitable[Any]:
        return self._scripts[name](keys=keys, args=args)

    async def close(self) -> None:
        client, self.redis = self.redis, None
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if client is not None:
            try:
                await asyncio.wait_for(client.aclose(), 2.0)
                await asyncio.wait_for(client.connection_pool.disconnect(), 2.0)
            except Exception as exc:  # closing a client whose server is gone
                log.debug("closing the redis client: %s", exc)

    async def run(self, call: Awaitable[T], *, timeout: float | None = None) -> T:
        """Await one Redis call within the store's timeout; every failure is StoreUnavailable."""
        from redis.exceptions import RedisError

        if self.redis is None:
            raise StoreUnavailable("the state store is not open")
        try:
            async with asyncio.timeout(timeout or self.timeout):
                return await call
        except TimeoutError:
            raise StoreUnavailable(f"redis did not answer within "
                                   f"{(timeout or self.timeout) * 1000:.0f} ms") from None
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis error: {exc}") from None

    # -- key/value -----------------------------------------------------------------------
    @staticmethod
    def _keys(ns: str, key: str) -> list[str]:
        return [f"{PREFIX}kv:{ns}:{key}", f"{PREFIX}kvi:{ns}"]

    async def kv_get(self, ns: str, key: str, timeout: float | None = None
                     ) -> dict[str, Any] | None:
        return decode(await self.run(self.redis.get(self._keys(ns, key)[0]), timeout=timeout))

    async def kv_put(self, ns: str, key: str, value: dict[str, Any],
                     ttl: float | None = None, timeout: float | None = None) -> None:
        await self.run(self.script("put", self._keys(ns, key),
                                   [encode(value), _ttl_ms(ttl), key, "0"]), timeout=timeout)

    async def kv_put_new(self, ns: str, key: str, value: dict[str, Any],
                         ttl: float | None = None) -> bool:
        stored = await self.run(self.script("put", self._keys(ns, key),
                                            [encode(value), _ttl_ms(ttl), key, "1"]))
        return bool(stored)

    async def kv_take(self, ns: str, key: str) -> dict[str, Any] | None:
        return decode(await self.run(self.script("take", self._keys(ns, key), [key])))

    async def kv_update(self, ns: str, key: str, expect: dict[str, Any], value: dict[str, Any],
                        ttl: float | None = None) -> bool:
        done = await self.run(self.script(
            "update", self._keys(ns, key), [encode(expect), encode(value), _ttl_ms(ttl), key]))
        return bool(done)

    async def kv_delete(self, ns: str, key: str, timeout: float | None = None) -> bool:
        value_key, index = self._keys(ns, key)

        async def delete() -> int:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(value_key).zrem(index, key)
                deleted, _ = await pipe.execute()
            return int(deleted)

        return bool(await self.run(delete(), timeout=timeout))

    async def kv_list(self, ns: str, prefix: str = "", timeout: float | None = None
                      ) -> list[tuple[str, dict[str, Any]]]:
        index = f"{PREFIX}kvi:{ns}"

        async def listing() -> list[tuple[str, dict[str, Any]]]:
            low = f"[{prefix}" if prefix else "-"
            high = f"[{prefix}\U0010ffff" if prefix else "+"
            keys = await self.redis.zrangebylex(index, low, high)
            if not keys:
                return []
            texts = await self.redis.mget([self._keys(ns, k)[0] for k in keys])
            gone = [k for k, t in zip(keys, texts, strict=True) if t is None]
            if gone:  # expired values leave their index entry behind; tidy it
                await self.redis.zrem(index, *gone)
            return [(k, v) for k, t in zip(keys, texts, strict=True)
                    if t is not None and (v := decode(t)) is not None]

        return await self.run(listing(), timeout=timeout)

    # -- limits and the usage ledger (see counters.py) ------------------------------------
    async def admit(self, checks: list[Check], now: float,
                    settlement: Settlement | None = None, alone: bool = False
                    ) -> Admission:
        reply = await self._run_script(settlement, checks, now, self.timeout)
        return redis_limits.parse_admission(reply, now)

    async def settle(self, settlement: Settlement, now: float,
                     timeout: float | None = None) -> None:
        await self._run_script(settlement, [], now, timeout or self.timeout)

    def admit_soon(self, checks: list[Check], now: float,
                   settlement: Settlement | None = None) -> Awaitable[Admission] | None:
        """`admit`, its call sent now: what awaits the answer, so that the request's other
        work is done while Redis runs the script. None when the pipelined connection is not
        up (then `admit`)."""
        if self._pipe is None or self.redis is None:
            return None
        sent = time.monotonic()
        keys, args = redis_limits.run_call(settlement, checks, now, self.usage_retention,
                                           self.clock.deadline_ms(sent, self.timeout))
        deadline = asyncio.get_running_loop().time() + self.timeout
        script = self._scripts["run"]
        try:
            waiter = self._pipe.submit("EVALSHA", script.sha, len(keys), *keys, *args,
                                       deadline=deadline)
        except (_redis_errors(), OSError) as exc:
            raise StoreUnavailable(f"redis error: {exc}") from None
        if waiter is None:
            return None
        return self._admission(waiter, keys, args, sent, now)

    async def _admission(self, waiter: Awaitable[Any], keys: list[str], args: list[str],
                         sent: float, now: float) -> Admission:
        no_script, _, checked = _redis_parts()
        try:
            reply = checked(await waiter)
        except no_script:  # Redis restarted or was flushed: load the script, call again
            left = self.timeout - (time.monotonic() - sent)
            reply = await self._piped("run", keys, args, max(left, 0.001))
        except TimeoutError:
            raise StoreUnavailable(f"redis did not answer within {self.timeout * 1000:.0f} ms"
                                   ) from None
        except (_redis_errors(), OSError) as exc:
            raise StoreUnavailable(f"redis error: {exc}") from None
        return redis_limits.parse_admission(self._observed(reply, sent), now)

    async def _run_script(self, settlement: Settlement | None, checks: list[Check], now: float,
                          timeout: float) -> list[str]:
        """RUN with a deadline: a call this router gave up on is never applied later."""
        sent = time.monotonic()
        keys, args = redis_limits.run_call(settlement, checks, now, self.usage_retention,
                                           self.clock.deadline_ms(sent, timeout))
        if self._pipe is not None:
            reply = await self._piped("run", keys, args, timeout)
        else:
            reply = await self.run(self._evalsha("run", keys, args), timeout=timeout)
        return self._observed(reply, sent)

    def _observed(self, reply: Any, sent: float) -> Any:
        """A RUN reply, its server time taken into the clock estimate; raises when Redis
        reached the call too late to apply it."""
        late = redis_limits.ran_late(reply)
        # a late reply its caller still heard: the estimate is off (the server's clock was
        # stepped) -- take this sample whatever its width
        self.clock.observe(sent, time.monotonic(), redis_limits.server_ms(reply), force=late)
        if late:
            raise StoreUnavailable("redis reached the call after its deadline (it was stalled) "
                                   "and applied nothing")
        return reply

    async def _piped(self, name: str, keys: list[str], args: list[str], timeout: float
                     ) -> Any:
        """A script on the pipelined connection, which keeps the deadline itself (`run`'s
        asyncio.timeout is a timer per call)."""
        if self.redis is None or self._pipe is None:
            raise StoreUnavailable("the state store is not open")
        script = self._scripts[name]
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            script.sha, reply = await self._pipe.script(script.sha, script.script, len(keys),
                                                        *keys, *args, deadline=deadline)
        except TimeoutError:
            raise StoreUnavailable(f"redis did not answer within {timeout * 1000:.0f} ms"
                                   ) from None
        except (_redis_errors(), OSError) as exc:
            raise StoreUnavailable(f"redis error: {exc}") from None
        return reply

    async def _evalsha(self, name: str, keys: list[str], args: list[str]) -> Any:
        """EVALSHA on a connection of the client's pool, without the client's command layer
        (retry wrapper, response callbacks, per-command telemetry hooks): on the request
        path, that layer cost more CPU than the script itself. The connection still encodes
        and parses RESP; one whose call fails or is cut off is dropped, not reused."""
        from redis.exceptions import NoScriptError

        script = self._scripts[name]
        try:
            return await self._call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # the server restarted (or was flushed): load it again
            script.sha = await self.redis.script_load(script.script)
            return await self._call("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _call(self, *args: Any) -> Any:
        from redis.exceptions import ResponseError

        pool = self.redis.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_command(*args)
            return await conn.read_response()
        except ResponseError:  # an answer: the connection is fine
            raise
        except BaseException:
            await asyncio.shield(conn.disconnect())
            raise
        finally:
            await pool.release(conn)

    async def counters(self, keys: list[str], now: float, group: str = "") -> list[float]:
        values = await self.run(self.redis.mget([redis_limits.PREFIX + k for k in keys]))
        return [float(v) if v is not None else 0.0 for v in values]

    async def usage_query(self, since: float, until: float | None = None,
                          timeout: float | None = None) -> list[dict[str, Any]]:
        return await self.run(self._usage_pages(since, until), timeout=timeout or 30.0)

    async def _usage_pages(self, since: float, until: float | None) -> list[dict[str, Any]]:
        # entry ids are Redis's clock, records carry the replica's: read with some slack,
        # then filter on the record's own time
        start = redis_limits.stream_id(since - CLOCK_SLACK)
        end = redis_limits.stream_id(until + CLOCK_SLACK) if until is not None else "+"
        records: list[dict[str, Any]] = []
        while True:
            page = await self.redis.xrange(redis_limits.USAGE_STREAM, start, end, count=5000)
            for _, fields in page:
                record = json.loads(fields["r"])
                if since <= record.get("ts", since) and (until is None or record["ts"] < until):
                    records.append(record)
            if len(page) < 5000:
                return records
            start = "(" + page[-1][0]


def _redis_errors() -> type[Exception]:
    return _redis_parts()[1]  # type: ignore[no-any-return]


@functools.cache
def _redis_parts() -> tuple[Any, ...]:
    """NoScriptError, RedisError and the pipe's reply check (the optional extra: imported
    once a store opens, never by the CLI)."""
    from redis.exceptions import NoScriptError, RedisError

    from continuum_cli.state.redis_pipe import checked

    return NoScriptError, RedisError, checked


def _safe_url(url: str) -> str:
    """The URL without a password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"
