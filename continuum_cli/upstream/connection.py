"""One upstream HTTP/1.1 connection as an asyncio protocol: bytes in, response events out.

h11 validates what is sent and parses the response head; a chunked body is decoded by
`upstream/chunked.py` (see its docstring for why). Parsing is lazy: bytes are buffered as
they arrive and parsed when the request that owns the connection asks for the next event,
so the response head is handed over before the body that came with it is parsed. Reading
pauses while more than `_HIGH_WATER` unparsed bytes wait (backpressure from a slow reader).
Errors are the httpx exceptions httpcore raises in the same situations.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import httpx

from continuum_cli.upstream.chunked import ChunkedDecoder, ChunkedError

_HIGH_WATER = 1 << 20  # unparsed response bytes after which reading from the socket pauses
Origin = tuple[bytes, str, int]


class Connection(asyncio.Protocol):
    """One upstream connection: bytes in → h11 events queued for the request that owns it."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.error: httpx.HTTPError | None = None  # from the socket
        self._broken: httpx.HTTPError | None = None  # from h11: the answer is not HTTP
        self.reused = False
        self.method = "GET"  # of the request in flight: a HEAD answer has no body
        self.body: ChunkedDecoder | None = None  # a chunked body, decoded without h11
        self.keep_alive = True  # for a body decoded here, what h11 would have decided
        self.closed = False
        self.in_use = True
        self.idle_since = 0.0
        self.received = 0  # response bytes of the current exchange
        self.eof = False
        self._unread = 0  # bytes given to h11 since it last ran out of data
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None

    # -- asyncio.Protocol callbacks ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.in_use:  # a server talking to a pooled, idle connection: not reusable
            self.close()
            return
        self.received += len(data)
        self._feed(data)

    def eof_received(self) -> bool:
        self.eof = True
        self._feed(b"")
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None and self.error is None:
            self.error = httpx.ReadError(str(exc) or type(exc).__name__)
        self._wake()
        self._wake_drain()

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_drain()

    # -- used by the transport ------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        """Buffer the bytes in h11; they are parsed when the owner asks for the next event,
        so the response head is handed over before the body that came with it is parsed."""
        if self.body is not None:
            self.body.feed(data)
        else:
            try:
                self.h11.receive_data(data)
            except RuntimeError:  # h11 refuses data after EOF or an error: nothing more
                pass
        self._unread += len(data)
        if self._unread > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_drain(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    async def next_event(self, timeout: float | None) -> Any:
        """The next h11 event of the response, waiting at most `timeout` for bytes."""
        while True:
            event = self._parse()
            if event is not None:
                return event
            if self.closed:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            self._waiter = asyncio.get_running_loop().create_future()
            await wait_for_future(self._waiter, timeout, httpx.ReadTimeout)

    def _parse(self) -> Any:
        if self._broken is not None:
            raise self._broken
        if self.body is not None:
            return self._parse_body(self.body)
        try:
            event = self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            self._broken = httpx.RemoteProtocolError(_why(exc, self))
            raise self._broken from None
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return self._need_data()
        if type(event) is h11.Response and _chunked(event, self.method):
            self.body = ChunkedDecoder()  # h11 parsed the head; the body is decoded here
            self.body.feed(self.h11.trailing_data[0])
            self.keep_alive = _keep_alive(event)
        return event

    def _parse_body(self, body: ChunkedDecoder) -> Any:
        try:
            piece = body.take()
        except ChunkedError as exc:
            self._broken = httpx.RemoteProtocolError(f"the backend sent a malformed answer "
                                                     f"({exc})")
            raise self._broken from None
        if piece:
            return h11.Data(data=piece)
        if body.done:
            return _END
        if self.eof:
            self._broken = httpx.RemoteProtocolError(
                "the backend closed the connection mid-response")
            raise self._broken
        return self._need_data()

    def _need_data(self) -> None:
        if self.error is not None:  # a reset: raised once what arrived before it is read
            raise self.error
        self._resume_reading()
        return None

    def _resume_reading(self) -> None:
        """Everything received is parsed: read from the socket again."""
        self._unread = 0
        if self._reading_paused and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()

    def send(self, *events: Any) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise self.error or httpx.WriteError("the connection to the backend was closed")
        try:
            data = b"".join(self.h11.send(event) or b"" for event in events)
        except h11.LocalProtocolError as exc:  # e.g. a newline in a header value
            raise httpx.LocalProtocolError(str(exc)) from None
        if data:
            self.transport.write(data)

    async def drain(self, timeout: float | None) -> None:
        if self._drain is not None:
            await wait_for_future(self._drain, timeout, httpx.WriteTimeout)

    def reusable(self) -> bool:
        if self.closed or self.error is not None or self._broken is not None:
            return False
        if self.body is not None:
            return (self.keep_alive and self.body.done and not self.body.leftover
                    and self.h11.our_state is h11.DONE)
        # bytes past the end of the answer (a second, unasked one) would be read as the
        # next request's answer
        return (self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE
                and not self.h11.trailing_data[0])

    def next_cycle(self) -> None:
        if self.body is not None:  # h11 still waits for the body it did not parse
            self.h11, self.body = h11.Connection(h11.CLIENT), None
        else:
            self.h11.start_next_cycle()
        self.received = 0
        # an answer that ended while reading was paused: an idle connection must read, or
        # the backend closing it is not seen before it is reused
        self._resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


_END = h11.EndOfMessage()


def _chunked(head: h11.Response, method: str) -> bool:
    """h11's choice of framing (RFC 9112 §6.3): chunked unless the answer has no body."""
    if method == "HEAD" or head.status_code in (204, 304):
        return False
    return any(name == b"transfer-encoding" and b"chunked" in value.lower()
               for name, value in head.headers)


def _keep_alive(head: h11.Response) -> bool:
    """RFC 9112 §9.3: HTTP/1.1 persists unless either side says `Connection: close`. A
    chunked answer that also has a Content-Length "ought to be handled as an error" (§6.3,
    a response-splitting attempt or a broken proxy): read as chunked, then not reused."""
    return head.http_version == b"1.1" and not any(
        (name == b"connection" and b"close" in value.lower()) or name == b"content-length"
        for name, value in head.headers)


def _why(exc: h11.RemoteProtocolError, conn: Connection) -> str:
    if not conn.eof:
        return f"the backend sent a malformed answer ({exc})"
    if not conn.received:
        return "Server disconnected without sending a response."
    return "the backend closed the connection mid-response"


async def wait_for_future(future: asyncio.Future[None], timeout: float | None,
                error: type[httpx.TimeoutException]) -> None:
    """`await future`, raising `error` after `timeout` seconds. A timer handle instead of
    `asyncio.wait_for`: this runs once per upstream read."""
    if timeout is None:
        await future
        return
    timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        await future
    except _Expired:
        raise error(f"{_WAITED_FOR.get(error, 'no answer from the backend')} "
                    f"within {timeout:g} s") from None
    finally:
        timer.cancel()


_WAITED_FOR: dict[type[httpx.TimeoutException], str] = {
    httpx.PoolTimeout: "no free connection to the backend",
    httpx.WriteTimeout: "the backend took no more of the request",
}


class _Expired(Exception):
    pass


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(_Expired())
