"""A lean HTTP/1.1 connection layer for the one shared httpx client: h11 on asyncio protocols.

Why (issue 2, speed budgets; figures in bench/README.md): httpx's default transport, httpcore
over anyio, costs about 1.3 ms of CPU per proxied request on the 2-core reference machine —
most of the router's latency budget — in anyio's stream and timeout wrappers, its readability
probe of pooled sockets and its pool bookkeeping. This module keeps httpx's API (requests,
responses, exceptions, timeouts, the pooled `AsyncClient`) and replaces only the connection
layer: one `asyncio.Protocol` per connection (`upstream/connection.py`), with the loop's own
flow control.

Behaviour kept from httpcore: keep-alive pooling per origin with an idle expiry, a connection
limit with a pool timeout, TLS for https origins, connect/read/write/pool timeouts from the
request's `timeout` extension, a connection reused only after a complete exchange, and an
abandoned response closing its connection (which is how a client disconnect stops a backend).
Errors are raised as the httpx exceptions httpcore's mapping produces, so
`upstream/errors.py` maps them unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.cookiejar
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpx

from continuum_cli.upstream.connection import Connection, Origin, wait_for_future

_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class _ResponseBody(httpx.AsyncByteStream):
    """The body of one response, read from its connection; closing it gives the connection
    back to the pool if the exchange completed, else closes it."""

    def __init__(self, pool: Http1Transport, conn: Connection, timeout: float | None) -> None:
        self._pool, self._conn, self._timeout = pool, conn, timeout
        self._complete = False
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._complete:
            event = await self._conn.next_event(self._timeout)
            kind = type(event)
            if kind is h11.Data:
                yield bytes(event.data)
            elif kind is h11.EndOfMessage:
                self._complete = True
            else:
                raise httpx.RemoteProtocolError("the backend closed the connection mid-response")

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._conn, reuse=self._complete)

    def __del__(self) -> None:
        # a response dropped without `aclose` (a task torn down mid-stream) would otherwise
        # hold its pool slot forever: with max_connections=1 the pool wedges
        if not self._released:
            self._released = True
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._pool.release(self._conn, reuse=False)


class NoDescriptors(httpx.ConnectError):
    """The router has no file descriptor left for a new upstream connection (EMFILE or
    ENFILE): the router's trouble, not the backend's (upstream/errors.py)."""


class Http1Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive pool over asyncio protocols (see the module docstring)."""

    def __init__(self, *, max_connections: int = 512, max_keepalive: int = 64,
                 keepalive_expiry: float = 5.0, verify: bool = True) -> None:
        self._max_connections = max_connections
        self._max_keepalive = max_keepalive
        self._expiry = keepalive_expiry
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_count = 0
        self._open = 0  # connections in use or connecting
        self._slots: deque[asyncio.Future[None]] = deque()
        self._active: set[Connection] = set()
        # origins no backend of the running config uses (a reload removed them): their
        # connections close when their last request ends instead of going back to the pool
        self._retired: set[Origin] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        origin = _origin(request.url)
        fresh = False
        while True:
            conn = await self._acquire(origin, timeouts, fresh=fresh)
            try:
                head = await self._exchange(conn, request, timeouts)
                break
            except _RETRYABLE:
                self.release(conn, reuse=False)
                if not _retry(conn, request):
                    raise
                fresh = True  # once, on a new connection: that one is never retried
            except BaseException:
                self.release(conn, reuse=False)
                raise
        return httpx.Response(
            head.status_code, headers=head.headers.raw_items(),
            stream=_ResponseBody(self, conn, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    async def _exchange(self, conn: Connection, request: httpx.Request,
                        timeouts: dict[str, float | None]) -> h11.Response:
        head = _head(request)
        conn.method = request.method
        if isinstance(request.stream, httpx.ByteStream):  # the usual case: one write
            body = request.content
            conn.send(head, *((h11.Data(data=body),) if body else ()), h11.EndOfMessage())
        else:
            conn.send(head)
            async for chunk in request.stream:  # type: ignore[union-attr]
                if chunk:
                    conn.send(h11.Data(data=chunk))
                    await conn.drain(timeouts.get("write"))
            conn.send(h11.EndOfMessage())
        while True:
            event = await conn.next_event(timeouts.get("read"))
            if type(event) is h11.Response:
                return event
            if type(event) is not h11.InformationalResponse:
                raise httpx.RemoteProtocolError("the backend answered out of turn")

    # -- the pool ---------------------------------------------------------------------------

    async def _acquire(self, origin: Origin, timeouts: dict[str, float | None], *,
                       fresh: bool = False) -> Connection:
        conn = None if fresh else self._pop_idle(origin)
        if conn is not None:
            return conn
        while self._open >= self._max_connections:
            await self._wait_for_slot(timeouts.get("pool"))
            conn = None if fresh else self._pop_idle(origin)
            if conn is not None:
                return conn
        self._open += 1
        try:
            conn = await self._connect(origin, timeouts.get("connect"))
        except BaseException:
            self._open -= 1
            self._wake_slot()
            raise
        self._active.add(conn)
        return conn

    async def _wait_for_slot(self, timeout: float | None) -> None:
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slots.append(slot)
        try:
            await wait_for_future(slot, timeout, httpx.PoolTimeout)
        except BaseException:
            # woken, then cancelled before it ran: the release that woke it wakes no one
            # else, so the slot goes to the next waiter (else it waits out its pool timeout)
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                self._wake_slot()
            raise

    def _pop_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if not conn.closed and now - conn.idle_since < self._expiry:
                conn.in_use = conn.reused = True
                self._open += 1
                self._active.add(conn)
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> Connection:
        scheme, host, port = origin
        tls = self._ssl_context() if scheme == b"https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(origin), host, port, ssl=tls,
                    server_hostname=host if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake (ssl.SSLError)
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise NoDescriptors(str(exc)) from None
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        return self._ssl

    def release(self, conn: Connection, *, reuse: bool) -> None:
        if conn not in self._active:
            return
        self._active.discard(conn)
        self._open -= 1
        if reuse and conn.reusable() and conn.origin not in self._retired \
                and self._room_to_keep():
            conn.next_cycle()
            conn.in_use = False
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.origin, []).append(conn)
            self._idle_count += 1
        else:
            conn.close()
        self._wake_slot()

    def _room_to_keep(self) -> bool:
        if self._idle_count >= self._max_keepalive:
            self._prune()
        return self._idle_count < self._max_keepalive

    def _prune(self) -> None:
        """Drop idle connections the backend closed or that expired. Idle ones are taken
        newest first, so old ones of a quiet origin would sit in the pool for ever and keep
        every other origin's connections out of it."""
        now = time.monotonic()
        for conns in self._idle.values():
            for conn in conns:
                if now - conn.idle_since >= self._expiry:
                    conn.close()
            conns[:] = [conn for conn in conns if not conn.closed]
        self._idle_count = sum(map(len, self._idle.values()))

    def _wake_slot(self) -> None:
        while self._slots:
            slot = self._slots.popleft()
            if not slot.done():
                slot.set_result(None)
                return

    def retire(self, urls: set[httpx.URL], keep: set[httpx.URL]) -> None:
        """Close idle connections to `urls` now and busy ones after their request (a reload
        removed the backends there); origins in `keep` are pooled as usual."""
        kept = {_origin(url) for url in keep}
        self._retired = ({_origin(url) for url in urls} | self._retired) - kept
        for origin in self._retired:
            for conn in self._idle.pop(origin, []):
                conn.close()
        self._idle_count = sum(map(len, self._idle.values()))

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        self._idle_count = 0
        for conn in list(self._active):
            conn.close()


_RETRYABLE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def _retry(conn: Connection, request: httpx.Request) -> bool:
    """A pooled connection the backend closed while the request was on its way (its
    keep-alive timeout raced our reuse; llama.cpp's is 5 s, as is our idle expiry) failed
    before any answer: the request never reached the application, so it is sent once more on
    a new connection, as browsers do. Only a body held in memory can be sent again."""
    return conn.reused and not conn.received and isinstance(request.stream, httpx.ByteStream)


def _head(request: httpx.Request) -> h11.Request:
    """h11 validates the request head; an invalid one is httpx's LocalProtocolError, as
    httpcore raises it (not an h11 exception that `upstream/errors.py` does not know)."""
    try:
        return h11.Request(method=request.method, target=request.url.raw_path,
                           headers=request.headers.raw)
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from None


def _origin(url: httpx.URL) -> Origin:
    scheme = url.raw_scheme
    if scheme not in _DEFAULT_PORTS:
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
    host = url.raw_host.decode("ascii")
    return scheme, host, url.port or _DEFAULT_PORTS[scheme]


class NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps nothing: the router serves many clients over one pooled client, so a
    `Set-Cookie` from a backend must not ride along on another client's requests."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None
