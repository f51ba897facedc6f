"""A scripted OpenAI-compatible backend: real HTTP on 127.0.0.1, the real wire format.

Each request to `/v1/chat/completions` takes the next queued reply (or the default text
reply), rendered as JSON or as SSE depending on the request's `stream`. Every request is
recorded (path, headers, parsed body) so tests can assert on exactly what the router sent.
Replies can stream slowly, cut the connection mid-stream, or answer with an error status.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Chunk = dict[str, Any]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Text:
    """A plain answer; streamed as one delta per word when the request streams."""

    text: str = "Hello from the scripted backend."
    finish_reason: str = "stop"
    usage: dict[str, Any] | None = None
    reasoning: str | None = None


@dataclass
class ToolCalls:
    """`calls` = [(name, arguments-json-string)]; streamed in `fragments` pieces each."""

    calls: list[tuple[str, str]]
    text: str = ""
    finish_reason: str = "tool_calls"
    fragments: int = 3
    usage: dict[str, Any] | None = None


@dataclass
class Chunks:
    """Raw chunk dicts sent as SSE (the exact stream a test wants)."""

    chunks: list[Chunk]
    delay: float = 0.0
    done: bool = True
    cut_after: int | None = None  # close the socket after this many chunks


@dataclass
class Completion:
    body: dict[str, Any]


@dataclass
class Error:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Raw:
    """Exact bytes after the status line's headers (for malformed streams)."""

    content_type: str
    body: bytes
    status: int = 200


Reply = Text | ToolCalls | Chunks | Completion | Error | Raw


def usage(prompt: int = 12, completion: int = 7, cached: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          model: str = "test-model", **extra: Any) -> Chunk:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": choices, **extra}


def text_chunks(reply: Text, model: str) -> list[Chunk]:
    out = [chunk({"role": "assistant", "content": ""}, model=model)]
    if reply.reasoning:
        out.append(chunk({"reasoning_content": reply.reasoning}, model=model))
    words = reply.text.split(" ")
    for i, word in enumerate(words):
        out.append(chunk({"content": word + (" " if i < len(words) - 1 else "")}, model=model))
    out.append(chunk({}, reply.finish_reason, model=model))
    out.append(chunk(None, model=model, usage=reply.usage or usage()))
    return out


def tool_chunks(reply: ToolCalls, model: str) -> list[Chunk]:
    out = [chunk({"role": "assistant", "content": None}, model=model)]
    if reply.text:
        out.append(chunk({"content": reply.text}, model=model))
    for index, (name, args) in enumerate(reply.calls):
        head = {"index": index, "id": f"call_{index}", "type": "function",
                "function": {"name": name, "arguments": ""}}
        out.append(chunk({"tool_calls": [head]}, model=model))
        step = max(1, -(-len(args) // reply.fragments))
        for start in range(0, len(args), step):
            piece = {"index": index, "function": {"arguments": args[start:start + step]}}
            out.append(chunk({"tool_calls": [piece]}, model=model))
    out.append(chunk({}, reply.finish_reason, model=model))
    out.append(chunk(None, model=model, usage=reply.usage or usage()))
    return out


def completion(reply: Text | ToolCalls, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if isinstance(reply, Text) and reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if isinstance(reply, ToolCalls):
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(reply.calls)]
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
            "usage": reply.usage or usage()}


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # many concurrent streams connect at once (socketserver: 5)


class ScriptedBackend:
    """Start with `with ScriptedBackend() as backend:`; `backend.url` is the /v1 base URL."""

    def __init__(self, models: tuple[str, ...] = ("test-model",), api_key: str | None = None,
                 tokenize: bool = True, port: int = 0) -> None:
        self.models = models
        self.api_key = api_key
        self.tokenize = tokenize
        self.requests: list[Recorded] = []
        self.replies: list[Reply | Callable[[Recorded], Reply]] = []
        self.default: Reply = Text()
        self.disconnects: list[float] = []  # monotonic time a client went away mid-stream
        self.health_status = 200
        self.max_model_len: int | None = None  # advertised on /v1/models, as vLLM does
        self.delay = 0.0  # seconds every chat answer waits before its head (a slow backend)
        self.chunk_delay = 0.0  # seconds between streamed events of the default reply
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def queue(self, *replies: Reply | Callable[[Recorded], Reply]) -> None:
        self.replies.extend(replies)

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def last_body(self) -> dict[str, Any]:
        return self.chat_requests()[-1].body

    def next_reply(self, recorded: Recorded) -> Reply:
        reply = self.replies.pop(0) if self.replies else self.default
        return reply(recorded) if callable(reply) else reply

    def start(self) -> ScriptedBackend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kill(self) -> None:
        """Stop and also drop every open connection (keep-alive ones included), as a
        crashed server does: new connections are refused, pooled ones reset."""
        self.stop()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def __enter__(self) -> ScriptedBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(backend: ScriptedBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.backend = backend
    return Handler


class _Handler(BaseHTTPRequestHandler):
    backend: ScriptedBackend
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def setup(self) -> None:
        super().setup()
        self.backend._connections.add(self.connection)

    def finish(self) -> None:
        self.backend._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _record(self, body: Any) -> Recorded:
        rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                       body)
        self.backend.requests.append(rec)
        return rec

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if not self.backend.api_key:
            return True
        if self.headers.get("authorization") == f"Bearer {self.backend.api_key}":
            return True
        self._json(401, {"error": {"message": "Invalid API Key", "type": "authentication_error",
                                   "code": 401}})
        return False

    def do_GET(self) -> None:  # noqa: N802
        self._record(None)
        if self.path.rstrip("/").endswith("/health"):
            self._json(self.backend.health_status, {"status": "ok"})
        elif self.path == "/stats":  # for tests driving a backend in another process
            self._json(200, {"chat_requests": len(self.backend.chat_requests())})
        elif self.path.rstrip("/").endswith("/models") and self._authorized():
            window = ({"max_model_len": self.backend.max_model_len}
                      if self.backend.max_model_len else {})
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "scripted", **window}
                for m in self.backend.models]})
        elif not self.path.rstrip("/").endswith("/models"):
            self._json(404, {"error": {"message": "not found", "type": "not_found_error"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        recorded = self._record(body)
        if not self._authorized():
            return
        if self.path.endswith("/tokenize") and self.backend.tokenize:
            text = (body or {}).get("content", "") if isinstance(body, dict) else ""
            self._json(200, {"tokens": list(range(len(text.split())))})
        elif self.path.endswith("/chat/completions"):
            self._chat(recorded)
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def _chat(self, recorded: Recorded) -> None:
        body = recorded.body if isinstance(recorded.body, dict) else {}
        reply = self.backend.next_reply(recorded)
        model = str(body.get("model", "test-model"))
        if self.backend.delay:
            time.sleep(self.backend.delay)
        if isinstance(reply, Error):
            self._json(reply.status, reply.body or {"error": {"message": "scripted error"}},
                       reply.headers)
        elif isinstance(reply, Raw):
            self._raw(reply)
        elif isinstance(reply, Completion):
            self._json(200, reply.body)
        elif body.get("stream"):
            chunks = reply if isinstance(reply, Chunks) else Chunks(
                text_chunks(reply, model) if isinstance(reply, Text) else tool_chunks(reply, model),
                delay=self.backend.chunk_delay)
            self._sse(chunks)
        elif isinstance(reply, (Text, ToolCalls)):
            self._json(200, completion(reply, model))
        else:
            self._json(500, {"error": {"message": "scripted reply does not fit a JSON request"}})

    def _raw(self, reply: Raw) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _sse(self, reply: Chunks) -> None:
        # chunked transfer encoding, as llama.cpp and vLLM send it: a cut mid-stream is then
        # visible to the client as an incomplete body, not as a normal end
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for i, c in enumerate(reply.chunks):
                if reply.cut_after is not None and i >= reply.cut_after:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._frame(b"data: " + json.dumps(c).encode() + b"\n\n")
                if reply.delay:
                    time.sleep(reply.delay)
            if reply.done:
                self._frame(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.backend.disconnects.append(time.monotonic())

    def _frame(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def main() -> None:
    """Serve a scripted backend in its own process (tests that kill -9 a backend):
    `python -m tests.fakes.scripted_backend --port 0 --models m1,m2 --words 200
    --chunk-delay 0.02`; prints `port N` once listening."""
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--models", default="test-model")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--words", type=int, default=5)
    args = parser.parse_args()
    backend = ScriptedBackend(models=tuple(args.models.split(",")), port=args.port)
    backend.delay, backend.chunk_delay = args.delay, args.chunk_delay
    backend.default = Text(" ".join(f"w{i}" for i in range(args.words)))
    backend.requests = _Bounded()
    print(f"port {backend.port}", flush=True)
    sys.stdout.close()
    backend._server.serve_forever(0.05)


class _Bounded(list):  # type: ignore[type-arg]
    """A long-running backend keeps only its chat requests' count, not every body."""

    def append(self, item: Recorded) -> None:
        if item.path.endswith("/chat/completions"):
            super().append(Recorded(item.method, item.path, {}, None))


if __name__ == "__main__":
    main()
