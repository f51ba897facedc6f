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
from continuum_cli.server.listener import Listener, answer_exhausted
from continuum_cli.server.resources import raise_open_file_limit

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
        self._listeners: list[Listener] = []
        self._starting: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on `sock`, or on every address `host` resolves to (as asyncio's
        `start_server` does), with our own accept loop (server/listener.py)."""
        raise_open_file_limit()
        sockets = [sock] if sock is not None else await _bind(self.host, self.port)
        for listening in sockets:
            listener = Listener(listening, self._connection, self._refuse)
            listener.start()
            self._listeners.append(listener)
        self.port = sockets[0].getsockname()[1]

    def _connection(self, conn: socket.socket) -> None:
        task = asyncio.get_running_loop().create_task(self._open(conn))
        self._starting.add(task)  # until it registers itself in `connections`
        task.add_done_callback(self._starting.discard)

    async def _open(self, conn: socket.socket) -> None:
        """Streams over an accepted socket (TLS handshake included), then the connection."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.limits.max_header_bytes, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, conn,
                                                              ssl=self.tls)
        except (OSError, asyncio.CancelledError):  # a failed TLS handshake, a reset
            conn.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await self._accept(reader, writer)

    async def _refuse(self, conn: socket.socket) -> None:
        """A connection accepted on the reserve descriptor: 529 (Anthropic routes) or 503
        (OpenAI routes), then closed. TLS connections are closed unanswered (a handshake
        first would hold the last descriptor longer)."""
        if self.tls is None:
            await answer_exhausted(conn, self.app, self.limits.max_header_bytes)

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
        for listener in self._listeners:
            listener.close()
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
        for task in list(self._starting):
            task.cancel()


def install_signal_handlers(stop: Callable[[], None],
                            reload: Callable[[], None] | None = None) -> None:
    """SIGINT/SIGTERM stop gracefully; SIGHUP re-reads the config (where the OS has it)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    if reload is not None and hasattr(signal, "SIGHUP"):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, reload)


async def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address of `host` (IPv6 ones IPv6-only, so `::` and
    `0.0.0.0` can both be used), as asyncio's `start_server` makes them."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets

