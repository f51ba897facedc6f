"""The upstream connection layer (`upstream/transport.py`) against real sockets: small raw
asyncio servers that answer with exactly the bytes each case needs."""

from __future__ import annotations

import asyncio
import gc
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import h11
import httpx
import pytest

from continuum_cli.upstream.connection import Connection
from continuum_cli.upstream.transport import Http1Transport, NoCookies

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


class RawServer:
    """A TCP server running `handler` per connection; counts connections and records every
    request head it reads."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed = asyncio.Event()
        self.heads: list[bytes] = []

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()


async def read_request(reader: asyncio.StreamReader, heads: list[bytes] | None = None) -> bytes:
    """One request (Content-Length or chunked body); returns its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    if heads is not None:
        heads.append(head)
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += (await reader.readexactly(size + 2))[:-2]
            if size == 0:
                return body
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    return b""


def client(**kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=Http1Transport(**kwargs), trust_env=False,  # type: ignore[arg-type]
                             cookies=NoCookies(), timeout=httpx.Timeout(5.0))


def in_turn(*answers: bytes) -> Handler:
    """Answers the requests of a connection with `answers`, one each, in order."""
    queue = iter(answers)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(next(queue))
            await writer.drain()
    return handler


def gated_server(release: asyncio.Event) -> Handler:
    """Answers each request once `release` is set."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await release.wait()
            writer.write(OK)
            await writer.drain()
    return handler


def keepalive_server(answer: bytes = OK) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
    return handler


async def test_keep_alive_reuses_one_connection() -> None:
    async with RawServer(keepalive_server()) as server, client() as http:
        texts = [(await http.post(server.url + "/x", content=b"{}")).text for _ in range(5)]
    assert texts == ["ok"] * 5
    assert server.connections == 1


async def test_chunked_and_close_delimited_responses() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")

    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()

    async with RawServer(keepalive_server(chunked)) as a, RawServer(close_delimited) as b:
        async with client() as http:
            assert (await http.get(a.url)).text == "abcde"
            assert (await http.get(b.url)).text == "until the end"
            assert (await http.get(b.url)).text == "until the end"
    assert b.connections == 2  # a closed connection is never reused


async def test_server_closing_an_idle_connection_is_not_an_error() -> None:
    async def one_per_connection(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()

    async with RawServer(one_per_connection) as server, client() as http:
        for _ in range(3):
            assert (await http.get(server.url)).text == "ok"
            await asyncio.sleep(0.05)  # the FIN reaches the pooled connection
    assert server.connections == 3


async def test_idle_connections_expire() -> None:
    async with RawServer(keepalive_server()) as server, client(keepalive_expiry=0.1) as http:
        await http.get(server.url)
        await asyncio.sleep(0.25)
        await http.get(server.url)
    assert server.connections == 2


async def test_refused_connection_is_a_connect_error() -> None:
    async with RawServer(keepalive_server()) as server:
        url = server.url
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(url)


async def test_read_timeout_and_the_connection_is_dropped() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the client gives up

    async with RawServer(silent) as server, client() as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url, timeout=0.2)
        await asyncio.wait_for(server.closed.wait(), 2)


async def test_abandoned_stream_closes_its_connection() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"5\r\nhello\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)

    async with RawServer(endless) as server, client() as http:
        async with http.stream("GET", server.url) as resp:
            async for part in resp.aiter_raw():
                assert part.startswith(b"hello")
                break
        await asyncio.wait_for(server.closed.wait(), 1)
        async with http.stream("GET", server.url) as resp:
            assert resp.status_code == 200
    assert server.connections == 2


@pytest.mark.parametrize("answer", [
    b"this is not http\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
])
async def test_broken_answers_are_protocol_errors(answer: bytes) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async with RawServer(broken) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(server.url)


async def test_pool_limit_queues_then_times_out() -> None:
    release = asyncio.Event()

    async with RawServer(gated_server(release)) as server, client(max_connections=1) as http:
        first = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(server.url, timeout=httpx.Timeout(5.0, pool=0.1))
        queued = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.05)
        release.set()
        assert [r.text for r in await asyncio.gather(first, queued)] == ["ok", "ok"]
    assert server.connections == 1


async def test_streamed_request_body_is_sent_chunked() -> None:
    bodies: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bodies.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two"):
            yield part

    async with RawServer(echo) as server, client() as http:
        assert (await http.post(server.url, content=parts())).text == "ok"
    assert bodies == [b"one two"]


async def test_informational_answer_is_skipped_and_headers_kept() -> None:
    answer = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nX-Request-Id: 7\r\n"
              b"content-length: 0\r\n\r\n")
    async with RawServer(keepalive_server(answer)) as server, client() as http:
        resp = await http.post(server.url + "/q?a=1", content=b"{}")
    assert (resp.status_code, resp.headers["x-request-id"], resp.http_version) == (
        201, "7", "HTTP/1.1")


async def test_cookies_from_a_backend_are_never_sent_back() -> None:
    answer = (b"HTTP/1.1 200 OK\r\nset-cookie: session=secret; Path=/\r\n"
              b"content-length: 0\r\n\r\n")
    heads: list[bytes] = []

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader, heads)
            writer.write(answer)
            await writer.drain()

    async with RawServer(recording) as server, client() as http:
        await http.get(server.url + "/a")
        await http.get(server.url + "/b")
    assert len(heads) == 2
    assert b"session=secret" not in heads[1]
    assert heads[1].startswith(b"GET /b HTTP/1.1\r\n")


async def test_large_answer_to_a_slow_reader_is_complete() -> None:
    payload = bytes(range(256)) * 40_000  # ~10 MB: past the pause threshold many times

    async with RawServer(keepalive_server(
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload)
    ) as server, client() as http:
        received = bytearray()
        async with http.stream("GET", server.url) as resp:
            async for part in resp.aiter_raw():
                received += part
                if len(received) < 3_000_000:
                    await asyncio.sleep(0.001)
    assert bytes(received) == payload


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


async def test_https_origin(tls_files: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    server = await asyncio.start_server(keepalive_server(), "127.0.0.1", 0, ssl=context)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with client() as http:  # verified against the system store: refused
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(url)
        async with client(verify=False) as http:
            assert (await http.get(url)).text == "ok"
    finally:
        server.close()


async def test_a_pooled_connection_closed_under_the_request_is_retried_once() -> None:
    """The backend's keep-alive timeout races our reuse: it reads the next request and
    closes without answering. That request is sent again on a new connection."""
    bodies: list[bytes] = []

    async def one_then_hang_up(reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        bodies.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()
        await read_request(reader)

    async with RawServer(one_then_hang_up) as server, client() as http:
        assert (await http.post(server.url, content=b"first")).text == "ok"
        assert (await http.post(server.url, content=b"second")).text == "ok"
    assert bodies == [b"first", b"second"]
    assert server.connections == 2


async def test_a_new_connection_hanging_up_is_not_retried() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with RawServer(hang_up) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="disconnected without"):
            await http.post(server.url, content=b"{}")
    assert server.connections == 1


async def test_an_answer_that_arrived_before_a_reset_is_still_read() -> None:
    """A backend that answers (413) and resets the connection while the request is still
    being written: the answer that arrived first wins over the reset."""
    conn = Connection((b"http", "127.0.0.1", 80))
    conn.h11.send(h11.Request(method="POST", target="/", headers=[("host", "x"),
                                                               ("content-length", "9")]))
    conn.data_received(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig")
    conn.connection_lost(ConnectionResetError("reset by peer"))
    head = await conn.next_event(1.0)
    assert (type(head), head.status_code) == (h11.Response, 413)
    assert bytes((await conn.next_event(1.0)).data) == b"big"
    assert type(await conn.next_event(1.0)) is h11.EndOfMessage
    with pytest.raises(httpx.ReadError, match="reset by peer"):
        await conn.next_event(1.0)


async def test_chunked_body_in_pieces_then_the_connection_is_reused() -> None:
    """A streamed answer written a few bytes at a time, chunk boundaries falling anywhere,
    then a second request on the same connection."""
    wire = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in
                       (b"data: {\"n\":%d}\n\n" % n for n in range(50)))
            + b"0\r\n\r\n")

    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            for start in range(0, len(wire), 7):
                writer.write(wire[start:start + 7])
                await writer.drain()
                await asyncio.sleep(0)

    async with RawServer(dribble) as server, client() as http:
        for _ in range(2):
            async with http.stream("POST", server.url, content=b"{}") as resp:
                body = b"".join([part async for part in resp.aiter_raw()])
            assert body == b"".join(b"data: {\"n\":%d}\n\n" % n for n in range(50))
    assert server.connections == 1


@pytest.mark.parametrize(("answer", "message"), [
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello world\r\n",
     "malformed answer"),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", "mid-response"),
])
async def test_broken_chunked_bodies(answer: bytes, message: str) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async with RawServer(broken) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await http.get(server.url)


async def test_head_and_204_answers_have_no_body_even_if_chunked_is_announced() -> None:
    handler = in_turn(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                      b"HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n", OK)

    async with RawServer(handler) as server, client() as http:
        assert (await http.head(server.url)).content == b""
        assert (await http.get(server.url)).status_code == 204
        assert (await http.get(server.url)).text == "ok"
    assert server.connections == 1


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
])
async def test_a_chunked_answer_that_ends_the_connection_is_not_reused(head: bytes) -> None:
    """The backend says the connection ends (but leaves the socket open): not pooled."""
    async with RawServer(keepalive_server(head + b"2\r\nok\r\n0\r\n\r\n")) as server:
        async with client() as http:
            assert [(await http.get(server.url)).text for _ in range(2)] == ["ok", "ok"]
    assert server.connections == 2


# -- adversarial cases: cancellation, pool accounting, reuse, retry -----------------------


def pool_of(http: httpx.AsyncClient) -> Http1Transport:
    return http._transport  # type: ignore[return-value]


async def test_cancelled_while_waiting_for_the_head_frees_the_slot() -> None:
    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # never answers the first request on this connection

    async with RawServer(slow_first) as server, client(max_connections=1) as http:
        task = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.closed.wait(), 2)  # the connection was closed
        assert pool_of(http)._open == 0


async def test_cancelled_while_connecting_frees_the_slot() -> None:
    """A TLS handshake that never completes: the task is cancelled while connecting."""
    hold: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hold.append(writer)
        await reader.read()

    async with RawServer(mute) as server, client(max_connections=1) as http:
        url = server.url.replace("http://", "https://")
        task = asyncio.create_task(http.get(url))
        while not hold:  # the handshake has started
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool_of(http)._open == 0
        with pytest.raises(httpx.ConnectTimeout):  # the slot is free: connecting again
            await http.get(url, timeout=httpx.Timeout(5.0, connect=0.1))
        assert pool_of(http)._open == 0


async def test_a_woken_waiter_cancelled_passes_the_slot_on() -> None:
    """max_connections=1: the waiter woken by a release is cancelled before it runs; the
    next waiter must get the slot, not wait for its pool timeout."""
    release = asyncio.Event()

    async with RawServer(gated_server(release)) as server, client(max_connections=1) as http:
        first = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.05)
        woken = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.01)
        other = asyncio.create_task(http.get(server.url, timeout=httpx.Timeout(5.0, pool=1.0)))
        await asyncio.sleep(0.01)
        pool = pool_of(http)
        wake = pool._wake_slot

        def wake_then_cancel() -> None:  # the waiter's slot is granted, then it is cancelled
            wake()
            if not woken.done():
                woken.cancel()
        pool._wake_slot = wake_then_cancel  # type: ignore[method-assign]
        release.set()
        assert (await first).text == "ok"
        with pytest.raises(asyncio.CancelledError):
            await woken
        assert (await other).text == "ok"
        assert pool._open == 0


async def test_cancelled_waiters_leave_no_accounting_behind() -> None:
    release = asyncio.Event()

    async with RawServer(gated_server(release)) as server, client(max_connections=1) as http:
        first = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.05)
        waiters = [asyncio.create_task(http.get(server.url)) for _ in range(3)]
        await asyncio.sleep(0.01)
        for waiter in waiters:
            waiter.cancel()
        release.set()
        assert (await first).text == "ok"
        assert [(await http.get(server.url)).text for _ in range(2)] == ["ok", "ok"]
        assert pool_of(http)._open == 0
    assert server.connections == 1


async def test_a_stream_dropped_without_aclose_closes_its_connection() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(endless) as server:
        transport = Http1Transport(max_connections=1)
        resp = await transport.handle_async_request(httpx.Request("GET", server.url))
        assert resp.status_code == 200
        del resp
        gc.collect()
        assert transport._open == 0
        await asyncio.wait_for(server.closed.wait(), 2)
        await transport.aclose()


async def test_bytes_after_the_answer_keep_the_connection_out_of_the_pool() -> None:
    """More bytes than Content-Length (a second, unasked answer): reusing the connection
    would hand them to the next request as its answer."""
    smuggled = OK + b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged"
    handler = in_turn(smuggled, OK, OK)

    async with RawServer(handler) as server, client() as http:
        async with http.stream("GET", server.url) as resp:
            assert await resp.aread() == b"ok"
            await asyncio.sleep(0.05)  # the extra bytes arrive while the response is open
        assert (await http.get(server.url)).text == "ok"
    assert server.connections == 2


async def test_a_request_is_resent_at_most_once() -> None:
    """Two pooled connections the backend hangs up on when the next request arrives: the
    request is sent once more, on a new connection, not once per pooled connection."""
    bodies: list[bytes] = []

    async def once_per_connection(reader: asyncio.StreamReader,
                                  writer: asyncio.StreamWriter) -> None:
        bodies.append(await read_request(reader))
        await asyncio.sleep(0.05)  # both first requests open their own connection
        writer.write(OK)
        await writer.drain()
        bodies.append(await read_request(reader))

    async with RawServer(once_per_connection) as server, client() as http:
        await asyncio.gather(*(http.post(server.url, content=b"warm") for _ in range(2)))
        assert (await http.post(server.url, content=b"again")).text == "ok"
    assert bodies.count(b"again") == 2


async def test_an_invalid_request_header_is_an_httpx_error() -> None:
    async with RawServer(keepalive_server()) as server, client() as http:
        with pytest.raises(httpx.LocalProtocolError):
            await http.get(server.url, headers={"x-bad": "a\nb"})
        assert pool_of(http)._open == 0


async def test_dead_idle_connections_do_not_keep_another_origin_out_of_the_pool() -> None:
    async def answer_then_close(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.05)
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)  # then the backend's keep-alive timeout closes it

    async with RawServer(answer_then_close) as a, RawServer(keepalive_server()) as b:
        async with client(max_keepalive=2) as http:
            await asyncio.gather(http.get(a.url), http.get(a.url))
            await asyncio.sleep(0.2)  # both pooled connections to a are now closed
            assert [(await http.get(b.url)).text for _ in range(3)] == ["ok"] * 3
    assert b.connections == 1


async def test_a_pooled_connection_still_reads_after_a_big_answer() -> None:
    """A big answer pauses reading; once it is read to the end the pooled connection reads
    again, so a backend closing it is seen before it is reused."""
    payload = b"x" * 1_100_000  # the last read crosses the pause threshold
    async with RawServer(keepalive_server(
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload)
    ) as server, client() as http:
        async with http.stream("GET", server.url) as resp:
            await asyncio.sleep(0.2)  # everything arrives before it is read
            assert len(await resp.aread()) == len(payload)
        idle = pool_of(http)._idle[(b"http", "127.0.0.1", server.port)]
        assert idle[0].transport is not None and idle[0].transport.is_reading()


async def test_read_timeout_is_an_idle_timeout_per_read() -> None:
    """Bytes keep coming, each well within the read timeout, for longer than the timeout in
    all: not a timeout (httpcore's read timeout is per socket read too)."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"tick %d\n" % n for n in range(12)))

    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 9):
            writer.write(body[start:start + 9])
            await writer.drain()
            await asyncio.sleep(0.03)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(dribble) as server, client() as http:
        resp = await http.get(server.url, timeout=httpx.Timeout(5.0, read=0.5))
    assert resp.text == "".join(f"tick {n}\n" for n in range(12))


async def test_a_timer_never_fires_into_a_later_wait() -> None:
    """Quick answers under a short read timeout on one connection, then a slow answer
    under a long one on the same connection: none of the earlier timers fires into it."""
    answers = iter([OK] * 20 + [None])

    async def slow_last(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            answer = next(answers)
            if answer is None:
                await asyncio.sleep(0.3)
                answer = OK
            writer.write(answer)
            await writer.drain()

    async with RawServer(slow_last) as server, client() as http:
        for _ in range(20):
            await http.get(server.url, timeout=httpx.Timeout(5.0, read=0.1))
        resp = await http.get(server.url, timeout=httpx.Timeout(5.0, read=2.0))
    assert resp.text == "ok"
    assert server.connections == 1


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
async def test_many_megabytes_to_a_slow_reader_in_odd_pieces(framing: str) -> None:
    """Reading pauses and resumes many times; every byte arrives once and in order."""
    payload = bytes(range(251)) * 24_000  # ~6 MB, a period prime to every split below
    if framing == "chunked":
        sizes = [1, 7, 4093, 65_537, 300_001, 1_048_577, 2_000_003]
        pieces, start = [], 0
        while start < len(payload):
            size = sizes[len(pieces) % len(sizes)]
            pieces.append(b"%x\r\n%s\r\n" % (len(payload[start:start + size]),
                                             payload[start:start + size]))
            start += size
        wire = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"".join(pieces)
                + b"0\r\n\r\n")
    else:
        wire = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload

    async def odd_writes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            start = 0
            for step in (3, 99_991, 1_300_021) * 100:
                writer.write(wire[start:start + step])
                start += step
                await writer.drain()
            writer.write(wire[start:])
            await writer.drain()

    async with RawServer(odd_writes) as server, client() as http:
        for _ in range(2):  # then the connection is reused
            received = bytearray()
            async with http.stream("GET", server.url) as resp:
                async for part in resp.aiter_raw():
                    received += part
                    await asyncio.sleep(0.002)
            assert bytes(received) == payload
    assert server.connections == 1


async def test_chunked_with_a_content_length_is_read_chunked_and_not_reused() -> None:
    """RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and such an answer (a
    response-splitting attempt, or a broken proxy) ought to be handled as an error: its
    connection is not trusted with another request."""
    answer = (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\n")
    async with RawServer(keepalive_server(answer)) as server, client() as http:
        assert [(await http.get(server.url)).text for _ in range(2)] == ["hello"] * 2
    assert server.connections == 2


@pytest.mark.parametrize(("timeout", "error", "message"), [
    (httpx.Timeout(5.0, read=0.1), httpx.ReadTimeout, "no answer from the backend"),
    (httpx.Timeout(5.0, pool=0.1), httpx.PoolTimeout, "no free connection"),
])
async def test_timeouts_say_what_was_waited_for(timeout: httpx.Timeout,
                                                error: type[Exception], message: str) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()

    async with RawServer(silent) as server, client(max_connections=1) as http:
        first = asyncio.create_task(http.get(server.url, timeout=1.0))
        await asyncio.sleep(0.05)
        with pytest.raises(error, match=message):
            await http.get(server.url, timeout=timeout)
        with pytest.raises(httpx.ReadTimeout):
            await first
