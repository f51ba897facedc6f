"""The accept loop, with what asyncio's lacks when file descriptors run out.

asyncio's `start_server` accept loop logs each EMFILE through the loop's exception handler
and stops accepting for a second. Here, as in libev and nginx, one descriptor is held in
reserve (`/dev/null`): when `accept()` fails for want of descriptors, the reserve is closed,
the waiting connection accepted with the descriptor that frees, answered 529/503 by
`on_refused` (which reads just its request head, to answer in the route's protocol), and
closed, and then the reserve is taken back. While the reserve is in use, accepting pauses
and resumes after a backoff that doubles from 10 ms to 1 s (reset by the next successful
accept): never a busy loop on a listening socket that stays readable. The log says so at
most once per second.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import h11

from continuum_cli.errors import ResourcesExhausted
from continuum_cli.server.resources import LogThrottle, is_exhausted

if TYPE_CHECKING:
    from continuum_cli.server.http import App

log = logging.getLogger("continuum.server")

_BATCH = 64  # connections accepted per readiness event before other work gets a turn
_BACKOFF_MIN, _BACKOFF_MAX = 0.01, 1.0
# the peer went away between SYN and accept: nothing to do, take the next one
_TRANSIENT = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR,
                        getattr(errno, "ENOBUFS", -1), getattr(errno, "ENOMEM", -1)})


class Listener:
    """Accepts on one listening socket; `serve(sock)` runs each accepted connection."""

    def __init__(self, sock: socket.socket, serve: Callable[[socket.socket], None],
                 on_refused: Callable[[socket.socket], Awaitable[None]]) -> None:
        self.sock = sock
        self._serve = serve
        self._on_refused = on_refused
        self._loop = asyncio.get_running_loop()
        self._reserve: int | None = None
        self._backoff = _BACKOFF_MIN
        self._paused: asyncio.TimerHandle | None = None
        self._closed = False
        self._throttle = LogThrottle()
        self._refusing: set[asyncio.Task[None]] = set()

    def start(self, backlog: int = 1024) -> None:
        self.sock.listen(backlog)  # also for a socket handed over bound but not listening
        self.sock.setblocking(False)
        self._take_reserve()
        self._loop.add_reader(self.sock.fileno(), self._on_readable)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._paused is not None:
            self._paused.cancel()
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self._drop_reserve()

    def _on_readable(self) -> None:
        for _ in range(_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if is_exhausted(exc):
                    self._exhausted(exc)
                    return
                if exc.errno not in _TRANSIENT:
                    self._log(f"accept() failed: {exc}")
                    self._pause()
                    return
                continue
            self._backoff = _BACKOFF_MIN
            self._serve(conn)

    def _exhausted(self, exc: OSError) -> None:
        self._log(f"out of file descriptors: accept() failed ({os.strerror(exc.errno or 0)}); "
                  "answering new connections 529/503 until some are free (raise the limit "
                  "with `ulimit -n`)")
        if self._reserve is None:
            self._pause()
            return
        self._drop_reserve()
        try:
            conn, _ = self.sock.accept()
        except OSError:
            self._take_reserve()
            self._pause()
            return
        task = self._loop.create_task(self._refuse(conn))
        self._refusing.add(task)
        task.add_done_callback(self._refusing.discard)

    async def _refuse(self, conn: socket.socket) -> None:
        try:
            await self._on_refused(conn)
        finally:
            conn.close()
            self._take_reserve()

    def _pause(self) -> None:
        """Stop watching the socket for a while: it stays readable, and retrying at once
        would spin."""
        if self._closed or self._paused is not None:
            return
        self._loop.remove_reader(self.sock.fileno())
        self._paused = self._loop.call_later(self._backoff, self._resume)
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)

    def _resume(self) -> None:
        self._paused = None
        if not self._closed:
            self._loop.add_reader(self.sock.fileno(), self._on_readable)

    def _take_reserve(self) -> None:
        if self._reserve is None and not self._closed:
            try:
                self._reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._reserve = None  # none free either: the next shortage pauses instead

    def _drop_reserve(self) -> None:
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    def _log(self, message: str) -> None:
        left_out = self._throttle.allow(time.monotonic())
        if left_out is not None:
            more = f" ({left_out} more in the last second)" if left_out else ""
            log.warning("%s%s", message, more)


async def answer_exhausted(conn: socket.socket, app: App, max_header_bytes: int,
                           timeout: float = 2.0) -> None:
    """Read the request head (to know the route), answer it in the route's protocol --
    `ResourcesExhausted`: 529 on Anthropic routes, 503 on OpenAI routes -- and leave the
    socket to the caller to close. A client that sends nothing in `timeout` gets nothing."""
    loop = asyncio.get_running_loop()
    conn.setblocking(False)
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)
    try:
        async with asyncio.timeout(timeout):
            head = await _read_head(loop, conn, parser)
            if head is None:
                return
            path = head.target.decode("latin-1").partition("?")[0]
            response = app.error_response(_EXHAUSTED, path)
            headers = [("content-type", response.content_type),
                       ("content-length", str(len(response.body))),
                       ("connection", "close"), ("retry-after", "1"),
                       *response.headers.items()]
            data = parser.send(h11.Response(status_code=response.status, headers=headers))
            data = (data or b"") + (parser.send(h11.Data(data=response.body)) or b"")
            await loop.sock_sendall(conn, data + (parser.send(h11.EndOfMessage()) or b""))
    except (TimeoutError, OSError, h11.ProtocolError):
        return


async def _read_head(loop: asyncio.AbstractEventLoop, conn: socket.socket,
                     parser: h11.Connection) -> h11.Request | None:
    while True:
        event = parser.next_event()
        if isinstance(event, h11.Request):
            return event
        if event is not h11.NEED_DATA:
            return None
        data = await loop.sock_recv(conn, 65536)
        parser.receive_data(data)
        if not data:
            return None


_EXHAUSTED = ResourcesExhausted(
    "the router is out of file descriptors and cannot take this connection now; retry "
    "shortly", hint="raise the router's open-file limit (`ulimit -n`)")
