"""Listening socket, connection tasks, signals and graceful shutdown.

On SIGINT/SIGTERM the listener closes, idle keep-alive connections close at once, in-flight
requests (streams included) may finish for `shutdown_grace` seconds, then are cancelled —
the same policy as uvicorn's `Server.shutdown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Callable

from continuum_cli.server.http import App, HTTPConnection, Limits

log = logging.getLogger("continuum.server")


class Server:
    def __init__(self, app: App, host: str, port: int, limits: Limits,
                 shutdown_grace: float = 10.0, tls: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.tls = tls  # set: HTTPS on the same h11 connection code (asyncio does the TLS)
        self.host = host
        self.port = port
        self.limits = limits
        self.shutdown_grace = shutdown_grace
        self.connections: dict[HTTPConnection, asyncio.Task[None]] = {}
        self._server: asyncio.base_events.Server | None = None
        self._stop = asyncio.Event()

    async def start(self, sock: socket.socket | None = None) -> None:
        if sock is not None:
            self._server = await asyncio.start_server(self._accept, sock=sock,
                                                      limit=self.limits.max_header_bytes,
                                                      ssl=self.tls)
        else:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, reuse_address=True,
                limit=self.limits.max_header_bytes, ssl=self.tls,
            )
        bound = self._server.sockets[0].getsockname()
        self.port = bound[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = HTTPConnection(reader, writer, self.app, self.limits)
        task = asyncio.current_task()
        assert task is not None
        self.connections[connection] = task
        try:
            await connection.serve()
        except asyncio.CancelledError:
            # cancelled at the end of a shutdown: this task is the connection's top level, so
            # it ends here quietly instead of surfacing in asyncio's connection_made callback
            pass
        finally:
            self.connections.pop(connection, None)

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        tasks = list(self.connections.values())
        if tasks:
            log.info("waiting up to %.0fs for %d in-flight connection(s)", self.shutdown_grace,
                     len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
            if pending:
                log.warning("grace period over: ending %d stream(s)", len(pending))
                for connection in list(self.connections):
                    connection.abort()
                _, pending = await asyncio.wait(pending, timeout=2.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)


def install_signal_handlers(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
