"""A fast OpenAI-compatible backend for the overhead benchmark (its own process).

Raw `asyncio.Protocol`, no framework: the reference the router is measured against must cost
as little as possible, or its noise hides the router's. The tests' scripted backend (a
threaded stdlib server) is too slow for that.

- `GET /v1/models` lists `bench` and `bench-paced`.
- `POST /v1/chat/completions` without `"stream": true` answers a completion of `max_tokens`
  "tok " pieces as JSON.
- With `"stream": true` it streams, chunked like vLLM: one role chunk, then `max_tokens`
  content chunks (one HTTP chunk and one write each, as a token-by-token engine does), a
  finish chunk with usage, and `data: [DONE]`. Writing honours transport flow control, so a
  slow reader throttles the stream instead of growing a buffer. Model `bench-paced` streams
  one content chunk per millisecond, like a fast engine generating, for first-content timing.

Usage: `python bench/backend.py [--port N]`; prints `PORT <n>` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from typing import Any

MODEL = "bench"
PACED = "bench-paced"
PACE_SECONDS = 0.001
_TOKEN = "tok "
_DEFAULT_CHUNKS = 16
_MAX_CHUNKS = 1_000_000


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _head(status: str, content_type: str, length: int | None) -> bytes:
    framing = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    return (f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{framing}\r\n"
            "server: bench-backend\r\n\r\n").encode()


def _response(body: bytes, status: str = "200 OK") -> bytes:
    return _head(status, "application/json", len(body)) + body


def _completion(words: int) -> bytes:
    return _dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": _TOKEN * words}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words},
    })


def _sse_chunk(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else _dumps(payload).decode()
    event = f"data: {data}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(event), event)


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    return _sse_chunk({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                       "created": 1700000000, "model": MODEL,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                       **extra})


MODELS = _response(_dumps({"object": "list", "data": [{"id": MODEL, "object": "model"},
                                                       {"id": PACED, "object": "model"}]}))
HEALTH = _response(b'{"status":"ok"}')
NOT_FOUND = _response(b'{"error":{"message":"not found","type":"not_found"}}', "404 Not Found")
STREAM_HEAD = _head("200 OK", "text/event-stream", None)
ROLE = _chunk({"role": "assistant", "content": ""})
TOKEN = _chunk({"content": _TOKEN})
DONE = _sse_chunk("[DONE]") + b"0\r\n\r\n"


_COMPLETIONS: dict[int, bytes] = {}


def _cached_completion(words: int) -> bytes:
    if words not in _COMPLETIONS:
        _COMPLETIONS[words] = _response(_completion(words))
    return _COMPLETIONS[words]


def _finish(n: int) -> bytes:
    usage = {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n}
    return _chunk({}, "stop", usage=usage)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


class BackendProtocol(asyncio.Protocol):
    """One connection: parses requests by content-length, answers them in order."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming = False
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.can_write.set()  # wake a paused stream so it notices and stops

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.streaming:
            self._drain_requests()

    def _drain_requests(self) -> None:
        while self.transport is not None and not self.streaming:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            total = end + 4 + _content_length(head)
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4:total])
            del self.buffer[:total]
            self._handle(head.split(b" ", 2), body)

    def _handle(self, request_line: list[bytes], body: bytes) -> None:
        method, path = request_line[0], request_line[1].partition(b"?")[0]
        assert self.transport is not None
        if path.endswith(b"/models"):
            self.transport.write(MODELS)
        elif path == b"/health":
            self.transport.write(HEALTH)
        elif method == b"POST" and path.endswith(b"/chat/completions"):
            self._chat(body)
        else:
            self.transport.write(NOT_FOUND)

    def _chat(self, body: bytes) -> None:
        request = json.loads(body)
        assert self.transport is not None
        tokens = request.get("max_tokens") or request.get("max_completion_tokens")
        count = min(int(tokens or _DEFAULT_CHUNKS), _MAX_CHUNKS)
        if not request.get("stream"):
            self.transport.write(_cached_completion(count))
            return
        self.streaming = True
        pace = PACE_SECONDS if request.get("model") == PACED else 0.0
        asyncio.ensure_future(self._stream(count, pace))

    async def _stream(self, count: int, pace: float) -> None:
        write = self.transport.write if self.transport else None
        if write is None:
            return
        write(STREAM_HEAD + ROLE)
        for _ in range(count):
            if pace:
                await asyncio.sleep(pace)
            if not self.can_write.is_set():
                await self.can_write.wait()
            if self.transport is None:
                return  # the client left mid-stream
            write(TOKEN)
        write(_finish(count) + DONE)
        self.streaming = False
        self._drain_requests()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BackendProtocol, "127.0.0.1", port, backlog=1024)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    try:
        asyncio.run(serve(parser.parse_args().port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
