"""One pipelined connection to Redis for the request path's script calls.

Every admission is one EVALSHA. Through redis-py's client a call costs the router ~150 us of
CPU on this project's test machine (pool checkout, retry wrapper, telemetry hooks, stream
reader futures) -- more than Redis takes to run the script. Here, calls from every request
share one connection: each is packed by hiredis and written at once, and the replies, which
Redis sends in the order of the commands (RESP pipelining), are parsed by hiredis's reader
as they arrive and handed to the waiting calls in that order.

Only plain `redis://host:port/db` URLs (with an optional user and password) take this path;
`RedisStore` sends everything else -- and every other command -- through redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

MAX_PENDING = 10_000  # calls waiting for a reply; past it the connection is dropped


def checked(reply: Any) -> Any:
    """A reply, or the error it carries raised as redis-py's exception."""
    if isinstance(reply, ResponseError):
        if str(reply).startswith("NOSCRIPT"):
            raise NoScriptError(str(reply))
        raise reply
    return reply


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failed connection attempt's error as seen (its waiters may all have left)."""
    if not future.cancelled():
        future.exception()


class Target:
    """Where and who, from a `redis://` URL."""

    def __init__(self, host: str, port: int, db: int, username: str | None,
                 password: str | None) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password

    @classmethod
    def from_url(cls, url: str) -> Target | None:
        """None: a URL this path does not handle (TLS, unix socket, query options)."""
        parts = urlsplit(url)
        if parts.scheme != "redis" or parts.query or not parts.hostname:
            return None
        path = parts.path.strip("/")
        if path and not path.isdigit():
            return None
        return cls(parts.hostname, parts.port or 6379, int(path or 0),
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)

    def handshake(self) -> list[tuple[Any, ...]]:
        commands: list[tuple[Any, ...]] = []
        if self.password is not None:
            commands.append(("AUTH", self.username, self.password) if self.username
                            else ("AUTH", self.password))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


class _Protocol(asyncio.Protocol):
    def __init__(self, hiredis: Any) -> None:
        self.reader = hiredis.Reader(encoding="utf-8", replyError=ResponseError)
        self.pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.deadlines: dict[asyncio.Future[Any], float] = {}  # calls that have one
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None
        self._watch: asyncio.TimerHandle | None = None

    def expect(self, waiter: asyncio.Future[Any], deadline: float | None) -> None:
        """Queue a waiter for the next reply; past `deadline` (loop time) it fails with
        TimeoutError. One timer watches every deadline and stays armed between calls: a
        timer per call (asyncio.timeout) is a measurable part of what a call costs."""
        self.pending.append(waiter)
        if deadline is None:
            return
        self.deadlines[waiter] = deadline
        waiter.add_done_callback(self._forget)
        if self._watch is None or deadline < self._watch.when():  # the earliest one
            if self._watch is not None:
                self._watch.cancel()
            self._watch = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _forget(self, waiter: asyncio.Future[Any]) -> None:
        self.deadlines.pop(waiter, None)

    def _expire(self) -> None:
        self._watch = None
        now = asyncio.get_running_loop().time()
        for waiter, deadline in list(self.deadlines.items()):
            if deadline <= now:
                del self.deadlines[waiter]
                if not waiter.done():  # its reply, when it comes, is dropped in order
                    waiter.set_exception(TimeoutError())
        if self.deadlines:
            self._watch = asyncio.get_running_loop().call_at(min(self.deadlines.values()),
                                                             self._expire)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.pending:
            reply = self.reader.gets()
            if reply is False:
                return
            waiter = self.pending.popleft()
            if not waiter.done():  # a caller that gave up (timeout) leaves its reply here
                waiter.set_result(reply)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = RedisConnectionError(f"connection to redis lost: {exc or 'closed'}")
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        while self.pending:
            waiter = self.pending.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)


class ScriptPipe:
    """`call(*args)`: one command on the shared connection (connected on first use, and
    again after it is lost); a reply error is raised as redis-py's exception."""

    def __init__(self, target: Target, hiredis: Any, connect_timeout: float) -> None:
        self.target = target
        self._hiredis = hiredis
        self._connect_timeout = connect_timeout
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._closed = False

    @classmethod
    def for_url(cls, url: str, connect_timeout: float) -> ScriptPipe | None:
        try:
            import hiredis
        except ImportError:  # the redis extra brings it; without it, redis-py's path
            return None
        target = Target.from_url(url)
        return cls(target, hiredis, connect_timeout) if target is not None else None

    async def call(self, *args: Any, deadline: float | None = None) -> Any:
        """One command; past `deadline` (loop time) TimeoutError."""
        proto = self._proto
        if proto is None or proto.lost is not None:
            if deadline is None:
                proto = await self._connected()
            else:
                wait = deadline - asyncio.get_running_loop().time()
                proto = await asyncio.wait_for(self._connected(), max(wait, 0.0))
        return await self._send(proto, args, deadline)

    async def script(self, sha: str, source: str, *args: Any,
                     deadline: float | None = None) -> Any:
        """EVALSHA `sha`; after NOSCRIPT (Redis restarted or flushed) load `source` and call
        again. Returns the (possibly new) sha and the reply."""
        try:
            return sha, await self.call("EVALSHA", sha, *args, deadline=deadline)
        except NoScriptError:
            sha = await self.call("SCRIPT", "LOAD", source, deadline=deadline)
            return sha, await self.call("EVALSHA", sha, *args, deadline=deadline)

    def submit(self, *args: Any, deadline: float | None = None
               ) -> asyncio.Future[Any] | None:
        """Send one command now, without waiting: the future of its reply (`checked` turns
        an error reply into redis-py's exception), or None when the connection is not up
        (then `call`, which connects first)."""
        proto = self._proto
        if proto is None or proto.lost is not None or self._closed:
            return None
        waiter = self._queue(proto, args, deadline)
        waiter.add_done_callback(_retrieve)  # its caller may drop it (a client that left)
        return waiter

    async def _send(self, proto: _Protocol, args: tuple[Any, ...],
                    deadline: float | None = None) -> Any:
        return checked(await self._queue(proto, args, deadline))

    def _queue(self, proto: _Protocol, args: tuple[Any, ...], deadline: float | None
               ) -> asyncio.Future[Any]:
        # packed first: an argument hiredis cannot encode must fail before a waiter is queued,
        # or every later caller would be handed the reply meant for the one before it
        data = self._hiredis.pack_command(args)
        if proto.lost is not None:  # lost between connecting and sending: no reply will come
            raise proto.lost
        assert proto.transport is not None
        if len(proto.pending) >= MAX_PENDING:  # Redis stopped answering: start over
            proto.transport.abort()
            raise RedisConnectionError("redis is not answering (too many calls waiting)")
        waiter = asyncio.get_running_loop().create_future()
        proto.expect(waiter, deadline)
        proto.transport.write(data)
        return waiter

    async def _connected(self) -> _Protocol:
        # one connection attempt at a time: concurrent callers wait for the same one, and a
        # caller that gives up (its timeout) does not cancel it for the others
        if self._closed:
            raise RedisConnectionError("the redis connection is closed")
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(_retrieve)
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        proto: _Protocol | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, proto = await loop.create_connection(lambda: _Protocol(self._hiredis),
                                                        self.target.host, self.target.port)
                for command in self.target.handshake():  # AUTH, SELECT: raise on refusal
                    await self._send(proto, command)
        except BaseException as exc:
            if proto is not None and proto.transport is not None:
                proto.transport.abort()
            if isinstance(exc, TimeoutError):
                raise RedisConnectionError("timed out connecting to redis") from None
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"cannot connect to redis: {exc}") from None
            raise
        if self._closed:  # closed while connecting: this connection must not outlive it
            proto.transport.abort()
            raise RedisConnectionError("the redis connection is closed")
        self._proto = proto
        return proto

    def close(self) -> None:
        """Drop the connection now; calls still waiting fail, later ones are refused."""
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            with contextlib.suppress(Exception):
                proto.transport.abort()
