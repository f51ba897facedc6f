"""One coroutine per HTTP/1.1 connection, on asyncio streams, with h11 doing all parsing.

The shape follows h11's `examples/trio-server.py` on asyncio streams (hypercorn's
`asyncio/tcp_server.py`): errors are sent only in IDLE/SEND_RESPONSE, `send_failed()` marks a
failed write, `start_next_cycle()` runs only when both sides are DONE, a `RemoteProtocolError`
is answered with its `error_status_hint` and `Connection: close`, and `100 Continue` is sent
when the client waits for it. This module knows nothing about Anthropic or OpenAI: it hands a
`Request` to the app and writes back what the app returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import h11

from continuum_cli.errors import ApiError, InvalidRequest, RequestTimeout, RequestTooLarge
from continuum_cli.server.head import (
    FRAMING,
    SERVER_LINE,
    BadHeader,
    date_header,
    field_line,
    field_value,
    framing_header,
    response_event,
)
from continuum_cli.server.types import Request, Response, StreamingResponse

log = logging.getLogger("continuum.server")
access_log = logging.getLogger("continuum.access")
_READ_SIZE = 65536
_CORK_LIMIT = 32 * 1024
_WATCH_AFTER = 0.02  # seconds an answer may take before the disconnect watcher starts
_LINGER_TOTAL = 30.0  # nginx's lingering_time: at most this long dropping an unread body
_LINGER_IDLE = 5.0  # ... and at most this long waiting for the next piece of it


class App(Protocol):
    async def handle(self, request: Request) -> Response | StreamingResponse: ...

    def error_response(self, exc: BaseException, path: str) -> Response: ...

    def abort_chunk(self, path: str) -> bytes: ...

    # optional: `streams_body(method, path) -> bool` names the routes whose body is handed
    # over as it arrives (`Request.body_stream`) instead of read whole under max_body_bytes
    # optional: called once per handled request, after its last byte (metrics, accounting);
    # `ttft` is the time to the first body byte of a streamed answer, else None
    # def observe(self, request, status, seconds, ttft, tags) -> None: ...


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 64 * 2**20
    header_timeout: float = 30.0
    keepalive_timeout: float = 75.0


class ClientGone(Exception):
    """The peer closed the connection or a write to it failed."""


class HTTPConnection:
    """Serves requests on one connection until it closes, errors, or the server shuts down."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, app: App,
                 limits: Limits) -> None:
        # per-connection state
        self.reader = reader
        self.writer = writer
        self.app = app
        self.limits = limits
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self._observe: Callable[..., None] | None = getattr(app, "observe", None)
        peer = writer.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        self.scheme = "https" if writer.get_extra_info("sslcontext") is not None else "http"
        self.busy = False
        self.closing = False
        self._eof = False
        self._aborted = False
        # per-request state
        self._stream_task: asyncio.Task[None] | None = None
        self._path = "/"
        self._watcher: asyncio.Future[None] | None = None
        self._handling: asyncio.Task[Any] | None = None  # cancelled if the client leaves
        self._left = False  # the watcher cancelled the handler (not a shutdown)
        self._body_streaming = False  # the handler is reading the body: no watcher yet
        self._watch_timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._ttft: float | None = None  # seconds to a stream's first body byte

    async def serve(self) -> None:
        try:
            while not self.closing:
                if not await self._serve_one():
                    break
        except ClientGone:
            pass
        except Exception:  # the last line of defence: never let a connection task die loudly
            log.exception("connection %s failed", self.client)
        finally:
            await self._close()

    async def _serve_one(self) -> bool:
        try:
            request = await self._read_request()
        except h11.RemoteProtocolError as exc:
            await self._send_error_safely(_protocol_error(exc), "/")
            return False
        except ApiError as exc:
            await self._send_error_safely(exc, getattr(exc, "path", "/"))
            return False
        if request is None:
            return False
        self.busy = True
        try:
            await self._respond(request)
            if self.conn.their_state is h11.SEND_BODY:
                await self._linger()  # the route answered before reading the whole body
        finally:
            self.busy = False
        return self._next_cycle()

    def _next_cycle(self) -> bool:
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
            return True
        return False

    # -- reading ---------------------------------------------------------------------------

    async def _next_event(self, deadline: float) -> h11.Event | type[h11.PAUSED]:
        """The next h11 event, reading as needed until the loop-time `deadline`: one bound for
        a whole head or body, so a client dripping bytes cannot hold a connection open."""
        loop = asyncio.get_running_loop()
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self._eof:
                self.conn.receive_data(b"")
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError()
            data = await self._read_within(remaining)
            self._eof = not data
            self.conn.receive_data(data)

    async def _read_within(self, seconds: float) -> bytes:
        """One read with a time limit. `asyncio.timeout` only arms a timer; 3.11's `wait_for`
        wraps the read in a new task, on every request."""
        async with asyncio.timeout(seconds):
            return await self.reader.read(_READ_SIZE)

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.limits.header_timeout

    async def _read_request(self) -> Request | None:
        self._started = time.perf_counter()
        event = self.conn.next_event()
        if event is h11.NEED_DATA:
            if not await self._await_first_bytes():
                return None  # idle keep-alive connection timed out or closed: close quietly
            self._started = time.perf_counter()  # the request began with its first bytes
            try:
                event = await self._next_event(self._deadline())
            except TimeoutError:
                raise _timeout() from None
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        assert isinstance(event, h11.Request)
        return await self._read_body(event)

    async def _await_first_bytes(self) -> bool:
        """Idle wait (keep-alive timeout) for the first bytes of the next request."""
        if self._eof:
            self.conn.receive_data(b"")
            return True
        while self._watcher is not None and not self._watcher.done():
            await asyncio.sleep(0)  # the last request's watcher still holds the reader
        try:
            data = await self._read_within(self.limits.keepalive_timeout)
        except TimeoutError:
            return False
        self._eof = not data
        self.conn.receive_data(data)
        return bool(data)

    async def _read_body(self, head: h11.Request) -> Request:
        target = head.target.decode("latin-1")
        path, _, query = target.partition("?")
        self._check_header_size(head)
        headers = _header_dict(head.headers)
        method = head.method.decode("ascii")
        streams = getattr(self.app, "streams_body", None)
        if streams is not None and streams(method, path):
            return Request(method, target, path, query, headers, b"", self.client,
                           self.scheme, body_stream=self._stream_body())
        self._check_length(headers, path)
        if self.conn.they_are_waiting_for_100_continue:
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        body = await self._collect_body(path)
        return Request(method, target, path, query, headers, body, self.client,
                       self.scheme)

    def _check_header_size(self, head: h11.Request) -> None:
        # h11 bounds only an *incomplete* head; one that arrives whole in a single read is
        # measured here so the limit holds however the bytes were split.
        size = len(head.target) + sum(len(k) + len(v) + 4 for k, v in head.headers)
        if size > self.limits.max_header_bytes:
            raise RequestTooLarge("request headers are larger than server.max_header_bytes",
                                  status=431)

    def _check_length(self, headers: dict[str, str], path: str) -> None:
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limits.max_body_bytes:
            raise _too_large(self.limits.max_body_bytes, path)

    async def _collect_body(self, path: str) -> bytes:
        parts: list[bytes] = []
        size = 0
        deadline = self._deadline()
        while True:
            try:
                event = await self._next_event(deadline)
            except TimeoutError:
                raise _timeout() from None
            if isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            if isinstance(event, h11.ConnectionClosed):
                raise ClientGone()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.limits.max_body_bytes:
                    raise _too_large(self.limits.max_body_bytes, path)
                parts.append(event.data)

    async def _stream_body(self) -> AsyncIterator[bytes]:
        """The body as it arrives, for a route that bounds it itself. `100 Continue` is sent
        only when the route starts reading, so a route that refuses at once (413 from the
        Content-Length, 401) spares the client the upload. The time limit is per read (an
        idle limit): a large upload may take longer than server.header_timeout in all."""
        if self.conn.they_are_waiting_for_100_continue:
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        while True:
            try:
                event = await self._next_event(self._deadline())
            except TimeoutError:
                raise _timeout() from None
            if isinstance(event, h11.EndOfMessage):
                return
            if isinstance(event, h11.ConnectionClosed):
                raise ClientGone()
            if isinstance(event, h11.Data):
                yield event.data

    async def _linger(self) -> None:
        """After answering a request whose body was not read to the end (an upload refused
        half-way): keep reading and dropping it until the client closes, for a bounded time.
        Closing at once while the client still sends makes the kernel answer with a reset,
        which can destroy the response before the client reads it (RFC 9112 §9.6)."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _LINGER_TOTAL
        with contextlib.suppress(Exception):
            if self.writer.can_write_eof():
                self.writer.write_eof()
            while loop.time() < deadline:
                if not await self._read_within(min(_LINGER_IDLE, deadline - loop.time())):
                    break

    # -- responding ------------------------------------------------------------------------

    async def _respond(self, request: Request) -> None:
        started = self._started = time.perf_counter()
        self._ttft = None
        self._path = request.path
        self._watcher = None
        self._body_streaming = request.body_stream is not None
        self._watch_timer = asyncio.get_running_loop().call_later(_WATCH_AFTER, self._watch)
        response: Response | StreamingResponse | None = None
        try:
            try:
                response = await self._handle(request)
            finally:
                self._body_streaming = False
                if request.body_stream is not None:
                    await _aclose_body(request.body_stream)
                    # answered before the whole body was read: this connection ends with it
                    self.closing = self.closing or self.conn.their_state is h11.SEND_BODY
            if response is None:
                raise ClientGone()
            try:
                await self._answer(response, request)
            except BadHeader as exc:  # nothing was written: answer 500 instead
                log.error("%s %s: the answer was not sent: %s", request.method, request.path,
                          exc)
                if isinstance(response, StreamingResponse):
                    await _aclose(response)
                response = self.app.error_response(exc, request.path)
                await self._send_response(response, head_only=request.method == "HEAD")
        finally:
            self._watch_timer.cancel()
            watcher = self._watcher
            if watcher is not None:
                watcher.cancel()
            gone = self._eof or (watcher is not None and watcher.done())
            status = _status(response, gone)
            if self._observe is not None:
                self._record(request, status, started, response)
            _access(request, response, started, status)

    async def _answer(self, response: Response | StreamingResponse, request: Request
                      ) -> None:
        if isinstance(response, StreamingResponse):
            await self._send_stream(response)
        else:
            await self._send_response(response, head_only=request.method == "HEAD")

    def _record(self, request: Request, status: int, started: float,
                response: Response | StreamingResponse | None) -> None:
        tags = response.log if response is not None else {}
        try:
            self._observe(request, status, time.perf_counter() - started,  # type: ignore[misc]
                          self._ttft, tags)
        except Exception:  # accounting must never break serving
            log.exception("recording %s %s failed", request.method, request.path)

    def _watch(self) -> asyncio.Future[None]:
        """The disconnect watcher, started when an answer takes longer than `_WATCH_AFTER`
        or is a stream: a quick answer needs none, and a task per request is a measurable
        part of what a request costs (bench/README.md). While a route reads its body itself,
        that reading is the watch (it sees the client leave)."""
        if self._body_streaming:
            self._watch_timer = asyncio.get_running_loop().call_later(_WATCH_AFTER, self._watch)
            return asyncio.get_running_loop().create_future()
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch_disconnect())
            if self._handling is not None:
                self._watcher.add_done_callback(self._client_left)
        return self._watcher

    async def _handle(self, request: Request) -> Response | StreamingResponse | None:
        """The app's answer, or None when the client left first: the app (and with it any
        upstream request) is cancelled as soon as the watcher sees it (checklist item 38).
        The app runs in this task; the watcher cancels it, which is cheaper than a task per
        request and a wait."""
        task = asyncio.current_task()
        assert task is not None
        self._handling, self._left = task, False
        response: Response | StreamingResponse | None = None
        try:
            response = await self.app.handle(request)
        except asyncio.CancelledError:
            if not self._left:
                raise
        except ClientGone:  # the client left while the route read its body
            self._left = True
        except Exception as exc:  # an ApiError, or an app bug: answer in the route's envelope
            if not isinstance(exc, ApiError):
                log.exception("unhandled error on %s %s", request.method, request.path)
            response = self.app.error_response(exc, request.path)
        finally:
            self._handling = None
            if self._watcher is not None:
                self._watcher.remove_done_callback(self._client_left)
        if self._left:
            if task.uncancel():  # also cancelled from outside (shutdown): that one stands
                raise asyncio.CancelledError()
            return None
        return response

    def _client_left(self, watcher: asyncio.Future[None]) -> None:
        if self._handling is not None and not watcher.cancelled():
            self._left = True
            self._handling.cancel()

    def _head(self, status: int, content_type: str, extra: dict[str, str],
              length: int | None) -> bytes:
        """The response head. h11 writes the status line and the framing headers (it keeps
        the connection's state from them); the others are checked here and written after
        them -- h11 runs two regular expressions per header, a measurable part of an answer
        that carries a dozen rate-limit headers."""
        framing = [] if length is None else [(b"content-length", str(length).encode())]
        lines = [b"content-type: ", field_value("content-type", content_type), b"\r\ndate: ",
                 date_header(), SERVER_LINE]
        for name, value in extra.items():
            if name.lower() in FRAMING:
                framing.append(framing_header(name, value))
            else:
                lines.append(field_line(name, value))
        if self.closing:
            framing.append((b"connection", b"close"))
        head = self.conn.send(response_event(status, framing))
        assert head is not None and head.endswith(b"\r\n\r\n")
        return head[:-2] + b"".join(lines) + b"\r\n"

    async def _send_response(self, response: Response, head_only: bool = False) -> None:
        # head, body and end in one write: one syscall and one drain per response
        parts = [self._head(response.status, response.content_type, response.headers,
                            len(response.body))]
        if response.body and not head_only:  # HEAD: the length is announced, no body sent
            parts.append(self.conn.send(h11.Data(data=response.body)))
        parts.append(self.conn.send(h11.EndOfMessage()))
        await self._write(b"".join(p for p in parts if p))

    async def _send_stream(self, response: StreamingResponse) -> None:
        head = self._head(response.status, response.content_type, response.headers, None)
        # the pump first: its first step (which writes the first event) then runs before
        # the watcher's in the next loop pass
        self._stream_task = asyncio.ensure_future(self._pump(response, head))
        watcher = self._watch()
        try:
            await asyncio.wait({self._stream_task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone = not self._stream_task.done()
            if gone:
                self._stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ClientGone):
                await self._stream_task
            await _aclose(response)
            if self._aborted and not gone:
                await self._end_aborted_stream(response)
        if gone or self._aborted or self.conn.our_state is h11.MUST_CLOSE:
            raise ClientGone()

    async def _end_aborted_stream(self, response: StreamingResponse) -> None:
        """Shutdown ran out of grace: say so in the stream's own protocol, end it cleanly."""
        with contextlib.suppress(ClientGone, h11.LocalProtocolError):
            frame = self.app.abort_chunk(self._path)
            await self._write(self.conn.send(h11.Data(data=frame)) if frame else None)
            await self._send(h11.EndOfMessage())

    async def _pump(self, response: StreamingResponse, head: bytes | None) -> None:
        cork = _Cork(self.conn, self.writer, head)
        try:
            async for chunk in response.chunks:
                if chunk:
                    if self._ttft is None:
                        self._ttft = time.perf_counter() - self._started
                    cork.add(chunk)
                    await self._drain()  # backpressure from what the cork already wrote
            cork.flush(end=True)
        finally:
            cork.flush()  # what was produced goes out, also when the source failed
        await self._drain()

    async def _watch_disconnect(self) -> None:
        """Reads while a request is handled and its answer written: EOF means the client left
        (cancel upstream now); any bytes are a pipelined request, kept in h11's buffer for the
        next cycle. A client that had already half-closed is not watched."""
        if self._eof:
            await asyncio.Event().wait()
        while True:
            data = await self.reader.read(_READ_SIZE)
            if not data:
                self._eof = True
                return
            self.conn.receive_data(data)

    async def _send(self, event: h11.Event) -> None:
        await self._write(self.conn.send(event))

    async def _write(self, data: bytes | None) -> None:
        try:
            if data:
                self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self.conn.send_failed()
            raise ClientGone() from exc

    async def _drain(self) -> None:
        await self._write(None)

    async def _send_error_safely(self, exc: BaseException, path: str) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        response = self.app.error_response(exc, path)
        self.closing = True
        with contextlib.suppress(ClientGone, h11.LocalProtocolError):
            await self._send_response(response)
        if self._observe is not None:  # refused before the app saw it (400, 408, 413, 431)
            request = Request("", path, path, "", {}, b"", self.client)
            self._record(request, response.status, self._started, response)

    def shutdown(self) -> None:
        """Graceful: finish the current response, then close. Idle connections close now."""
        self.closing = True
        if not self.busy:
            self.writer.close()

    def abort(self) -> None:
        """Grace period over: end a running stream now (with an error frame), or the
        connection if it is between requests."""
        self._aborted = True
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()
        elif not self.busy:
            self.writer.close()

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


class _Cork:
    """Stream bytes framed and written once per event-loop pass instead of once per chunk.

    A fast upstream hands the pump many chunks without the pump ever waiting (they are
    already in httpx's read buffer); a write per chunk is a syscall per SSE event, the largest
    per-event cost of a relay, and h11 framing per chunk the next (bench/README.md). The
    first chunk schedules a flush with `call_soon`, so the bytes leave as soon as the pump
    waits for more upstream data: no added latency for a stream that arrives event by event.
    `_CORK_LIMIT` bounds how much waits while the pump is busy.
    """

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter,
                 head: bytes | None) -> None:
        self.conn = conn
        self.writer = writer
        self.head = head or b""  # leaves with the first chunk if the app has one ready
        self.body: list[bytes] = []
        self.size = 0
        self.handle: asyncio.Handle | None = None
        self.first = True
        if self.head:
            self._schedule()

    def add(self, chunk: bytes) -> None:
        self.body.append(chunk)
        self.size += len(chunk)
        if self.first or self.size >= _CORK_LIMIT:
            # the first event leaves at once: when a fast backend's whole answer arrived in
            # one read, corking it would hold the first event until all of it is relayed
            self.first = False
            self.flush()
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self.handle is None:
            self.handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self, end: bool = False) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        parts, self.head = [self.head], b""
        if self.body:
            parts.append(self._frame(b"".join(self.body)))
            self.body.clear()
            self.size = 0
        if end:
            parts.append(self.conn.send(h11.EndOfMessage()))
        data = b"".join(p for p in parts if p)
        # a lost connection is reported by the next drain(), in the pump, as ClientGone
        with contextlib.suppress(ConnectionError, RuntimeError):
            if data:
                self.writer.write(data)

    def _frame(self, chunk: bytes) -> bytes | None:
        # after send_failed() h11 refuses more body: the pump is already ending with ClientGone
        with contextlib.suppress(h11.LocalProtocolError):
            return self.conn.send(h11.Data(data=chunk))
        return None


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _too_large(limit: int, path: str) -> RequestTooLarge:
    exc = RequestTooLarge(f"request body is larger than the {limit} byte limit "
                          "(server.max_body_bytes)")
    exc.path = path  # type: ignore[attr-defined]
    return exc


def _protocol_error(exc: h11.RemoteProtocolError) -> ApiError:
    """h11's verdict on a malformed request, with its `error_status_hint` (400, 431, ...)."""
    if exc.error_status_hint == 431:
        return RequestTooLarge("request headers are larger than server.max_header_bytes",
                               status=431)
    return InvalidRequest(f"malformed HTTP request: {exc}", status=exc.error_status_hint)


def _timeout() -> RequestTimeout:
    return RequestTimeout("timed out reading the request (server.header_timeout)")


async def _aclose_body(body: AsyncIterator[bytes]) -> None:
    close: Callable[[], Awaitable[None]] | None = getattr(body, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


async def _aclose(response: StreamingResponse) -> None:
    close: Callable[[], Awaitable[None]] | None = getattr(response.chunks, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
    if response.on_close is not None:
        with contextlib.suppress(Exception):
            await response.on_close()


def _status(response: Response | StreamingResponse | None, gone: bool) -> int:
    if response is None or (gone and isinstance(response, StreamingResponse)):
        return 499  # the client closed the connection first (nginx's convention)
    return response.status


def _access(request: Request, response: Response | StreamingResponse | None, started: float,
            status: int) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    ms = (time.perf_counter() - started) * 1000
    tags = response.log if response is not None else {}
    fmt = "%s %s %d %s %s %.1fms"
    if status == 499:
        fmt += " (client closed the connection)"
    backend, model = tags.get("backend"), tags.get("model")
    # the fields, for `--log-format json` and for anyone filtering records
    extra = {"method": request.method, "path": request.path, "status": status,
             "backend": backend, "model": model, "ms": round(ms, 1),
             "key_name": tags.get("key")}  # the caller's key name, never the key
    access_log.info(fmt, request.method, request.path, status, backend or "-", model or "-",
                    ms, extra=extra)
