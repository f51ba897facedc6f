"""The response head on a real socket: h11 frames the body (and keeps the connection's state)
from the framing headers; the app's other headers are checked by the server and written after
them. Raw bytes are read, so what is asserted is what a client receives."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from continuum_cli.server.http import Limits
from continuum_cli.server.run import Server
from continuum_cli.server.types import Request, Response, StreamingResponse


class HeaderApp:
    """Answers with the headers a test put in `headers` (a stream on /stream)."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    async def handle(self, request: Request) -> Response | StreamingResponse:
        if request.path == "/stream":
            async def chunks() -> AsyncIterator[bytes]:
                yield b"data: one\n\n"
                yield b"data: two\n\n"

            return StreamingResponse(200, chunks(), headers=dict(self.headers))
        return Response(200, b'{"ok":true}', headers=dict(self.headers))

    def error_response(self, exc: BaseException, path: str) -> Response:
        return Response(500, b'{"error":"x"}')

    def abort_chunk(self, path: str) -> bytes:
        return b""


@pytest.fixture
def served() -> Iterator[tuple[HeaderApp, int]]:
    app = HeaderApp()
    loop = asyncio.new_event_loop()
    server = Server(app, "127.0.0.1", 0, Limits())
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield app, server.port
    asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _exchange(port: int, path: str, requests: int = 1) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode() * requests)
        data = b""
        while data.count(b"HTTP/1.1 ") < requests or not _complete(data, path):
            more = sock.recv(65536)
            if not more:
                break
            data += more
        return data


def _complete(data: bytes, path: str) -> bool:
    return data.endswith(b"0\r\n\r\n") or data.endswith(b"}")


def _head(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_the_apps_headers_follow_the_framing_once_each(served) -> None:
    app, port = served
    app.headers = {"anthropic-ratelimit-requests-limit": "60", "retry-after": "7"}
    lines = _head(_exchange(port, "/plain"))
    assert lines[0] == b"HTTP/1.1 200 "
    names = [line.split(b":", 1)[0].lower() for line in lines[1:]]
    assert sorted(names) == sorted([b"content-length", b"content-type", b"date", b"server",
                                    b"anthropic-ratelimit-requests-limit", b"retry-after"])
    assert b"content-length: 11" in lines and b"anthropic-ratelimit-requests-limit: 60" in lines


def test_a_stream_is_chunked_by_h11_and_keeps_the_headers(served) -> None:
    app, port = served
    app.headers = {"x-custom": "yes"}
    raw = _exchange(port, "/stream")
    lines = _head(raw)
    assert b"transfer-encoding: chunked" in [line.lower() for line in lines]
    assert b"x-custom: yes" in lines and b"content-type: text/event-stream" in lines
    assert raw.endswith(b"0\r\n\r\n") and b"data: two" in raw


def test_keep_alive_survives_answers_with_many_headers(served) -> None:
    app, port = served
    app.headers = {f"x-h{i}": str(i) for i in range(20)}
    raw = _exchange(port, "/plain", requests=3)
    assert raw.count(b"HTTP/1.1 200 ") == 3 and raw.count(b"x-h19: 19") == 3


@pytest.mark.parametrize("headers", [
    {"x-bad": "one\r\nset-cookie: injected"},
    {"x-bad\r\nset-cookie": "injected"},
    {"x-bad": "nul\x00"},
    {"bad name": "x"},
    {"x-emoji": "\u2603"},
])
@pytest.mark.parametrize("path", ["/plain", "/stream"])
def test_an_illegal_header_from_the_app_is_never_written(served, headers, path) -> None:
    """An app bug, answered 500 in the app's envelope; the connection keeps serving."""
    app, port = served
    app.headers = headers
    raw = _exchange(port, path)
    assert raw.startswith(b"HTTP/1.1 500 ") and raw.endswith(b'{"error":"x"}')
    assert b"injected" not in raw and b"set-cookie" not in raw.lower()
    assert b"nul\x00" not in raw
    app.headers = {}
    assert _exchange(port, "/plain").startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("headers", [
    {"content-length": "5"},  # the body is 11 bytes
    {"content-length": "abc"},
    {"transfer-encoding": "gzip"},
    {"connection": "\u2603"},
    {"x-bad": "vertical\x0btab"},
    {"x-bad": "delete\x7f"},
    {"x-bad": " leading space"},
])
def test_a_bad_framing_or_control_character_is_a_500_not_a_dropped_connection(
        served, headers) -> None:
    app, port = served
    app.headers = headers
    raw = _exchange(port, "/plain")
    assert raw.startswith(b"HTTP/1.1 500 ") and raw.endswith(b'{"error":"x"}')


def test_a_tab_inside_a_value_and_obs_text_are_legal(served) -> None:
    app, port = served
    app.headers = {"x-tab": "a\tb", "x-latin": "caf\u00e9"}
    lines = _head(_exchange(port, "/plain"))
    assert b"x-tab: a\tb" in lines and "x-latin: café".encode("latin-1") in lines
