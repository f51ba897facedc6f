"""The benchmark's load client: raw `asyncio.Protocol` HTTP/1.1 over keep-alive connections.

Its cost is part of every measured number, so it is kept small and the same for every target:
one write per request, one incremental parse of the response (content-length or chunked), and
a search of the new bytes for the first event and for content.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

now = time.perf_counter


# Every target's answer is SSE or JSON built from the backend's "tok " pieces: counting them
# checks that nothing was lost, in either protocol, however the router regroups the text.
EVENT = b"data:"  # starts every SSE event (OpenAI and Anthropic)
TOKEN = b"tok "


@dataclass(frozen=True)
class Timing:
    """Seconds from writing the request to each point of the answer."""

    total: float  # the last byte
    first_event: float  # the first SSE event of any kind (the first byte for JSON)
    first_token: float  # the first content ("tok ")
    last_token: float  # the last content
    tokens: int  # "tok " pieces in the body
    status: int


@dataclass(frozen=True)
class Call:
    """One request of a target, as bytes."""

    raw: bytes


def http_request(host: str, port: int, path: str, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", "content-type: application/json",
             f"content-length: {len(data)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class Connection(asyncio.Protocol):
    """A keep-alive connection that runs one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.body = bytearray()
        self.waiter: asyncio.Future[Timing] | None = None
        self.started = self.event = self.first = self.last = 0.0
        self.scanned = self.status = 0
        self.length: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def exchange(self, call: Call) -> Timing:
        if self.transport is None:
            raise ConnectionError("connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.body = bytearray()
        self.event = self.first = self.last = 0.0
        self.scanned = self.status = 0
        self.started = now()
        self.transport.write(call.raw)
        return await self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            self._parse(now())
        except Exception as exc:  # a malformed answer fails the run loudly
            self.waiter.set_exception(exc)

    def _parse(self, at: float) -> None:
        if not self.status and not self._read_head():
            return
        done = self._read_chunks() if self.length is None else self._read_fixed()
        self._scan(at)
        if done and self.waiter is not None:
            start = self.started
            self.waiter.set_result(Timing(
                at - start, (self.event or at) - start, (self.first or at) - start,
                (self.last or at) - start, self.body.count(TOKEN), self.status))

    def _read_head(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[:end]).lower()
        del self.buf[:end + 4]
        self.status = int(head[9:12])
        if b"transfer-encoding: chunked" in head:
            self.length = None
        else:
            self.length = _content_length(head)
        return True

    def _read_fixed(self) -> bool:
        assert self.length is not None
        if len(self.buf) < self.length:
            return False
        self.body += self.buf[:self.length]
        del self.buf[:self.length]
        return True

    def _read_chunks(self) -> bool:
        buf, pos, done = self.buf, 0, False
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            size = int(bytes(buf[pos:nl]).split(b";", 1)[0], 16)
            end = nl + 2 + size
            if len(buf) < end + 2:
                break
            self.body += buf[nl + 2:end]
            pos = end + 2
            if size == 0:
                done = True
                break
        del buf[:pos]
        return done

    def _scan(self, at: float) -> None:
        """Note when the first event, the first content and the latest content arrived."""
        if not self.event and self.body.find(EVENT, self.scanned) >= 0:
            self.event = at
        if self.body.find(TOKEN, self.scanned) >= 0:
            self.first = self.first or at
            self.last = at
        self.scanned = max(0, len(self.body) - len(EVENT) + 1)  # the longer marker

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _content_length(head: bytes) -> int:
    start = head.index(b"content-length:") + len(b"content-length:")
    end = head.find(b"\r\n", start)
    return int(head[start:end if end >= 0 else None])


async def connect(host: str, port: int) -> Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(Connection, host, port)
    return protocol


def check(timing: Timing, expected_tokens: int, label: str) -> Timing:
    if timing.status != 200:
        raise RuntimeError(f"{label}: HTTP {timing.status}")
    if timing.tokens != expected_tokens:
        raise RuntimeError(f"{label}: {timing.tokens} pieces of content, expected "
                           f"{expected_tokens}")
    return timing


async def sequential(conn: Connection, call: Call, seconds: float, expected: int,
                     label: str, max_count: int = 1_000_000) -> list[Timing]:
    """Back-to-back requests on one connection for `seconds` (at least one)."""
    out: list[Timing] = []
    deadline = now() + seconds
    while not out or (now() < deadline and len(out) < max_count):
        out.append(check(await conn.exchange(call), expected, label))
    return out


async def concurrent(conns: list[Connection], call: Call, seconds: float, expected: int,
                     label: str) -> tuple[list[Timing], float]:
    """`len(conns)` closed-loop clients for `seconds`; returns the timings and requests/s."""
    started = now()
    parts = await asyncio.gather(*(sequential(c, call, seconds, expected, label) for c in conns))
    elapsed = now() - started
    timings = [t for part in parts for t in part]
    return timings, len(timings) / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]

