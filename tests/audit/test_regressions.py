"""Regressions from the audit of issues 2 (foundation) and 3 (Anthropic API): each test failed
before the behaviour it names was fixed. Real sockets, the real router, real clients."""

from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from tests.conftest import basic_config
from tests.fakes.scripted_backend import (
    Chunks,
    Completion,
    Error,
    Raw,
    ScriptedBackend,
    Text,
    chunk,
    text_chunks,
)
from tests.rawhttp import exchange, post_bytes

ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "hi"}]
MESSAGE = {"model": "test-model", "max_tokens": 16, "messages": USER}
CHAT = {"model": "test-model", "messages": USER}


# -- upstream helpers ---------------------------------------------------------------------------

class _GzipHandler(BaseHTTPRequestHandler):
    """An OpenAI backend behind a compressing proxy: gzip whenever the client accepts it."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return

    def _send(self, ctype: str, data: bytes) -> None:
        gz = "gzip" in self.headers.get("accept-encoding", "")
        data = gzip.compress(data) if gz else data
        self.send_response(200)
        self.send_header("content-type", ctype)
        if gz:
            self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._send("application/json", b'{"object":"list","data":[{"id":"test-model"}]}')

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        chunks = text_chunks(Text("Hello compressed"), "test-model")
        if body.get("stream"):
            frames = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
            self._send("text/event-stream", frames + b"data: [DONE]\n\n")
        else:
            self._send("application/json", json.dumps({"choices": [{"index": 0, "message": {
                "role": "assistant", "content": "Hello compressed"}, "finish_reason": "stop"}]}
            ).encode())


@pytest.fixture
def gzip_backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GzipHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


class _SilentBackend:
    """Answers GET /v1/models, reads POSTs and never answers them; records when the router
    closes a POST connection (what a backend sees when its request is cancelled)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.posted = threading.Event()
        self.closed_at: list[float] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return
            data += piece
        if data.startswith(b"GET"):
            body = b'{"object":"list","data":[{"id":"test-model"}]}'
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close"
                         b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            conn.close()
            return
        self.posted.set()
        while conn.recv(65536):
            pass
        self.closed_at.append(time.monotonic())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def silent_backend() -> Iterator[_SilentBackend]:
    backend = _SilentBackend()
    yield backend
    backend.close()


def _one_backend(url: str, **extra: Any) -> dict[str, Any]:
    return {"backends": [{"name": "up", "type": "vllm", "url": url, "models": ["test-model"]}],
            **extra}


# -- issue 2: the server ------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_client_gone_before_upstream_answers_cancels_upstream(
        router_factory, silent_backend: _SilentBackend, stream: bool) -> None:
    """Issue 2: a client that leaves cancels the upstream request at once; checklist item 38
    (a re-sent request must not queue behind an abandoned one on a one-slot local model)."""
    router = router_factory(_one_backend(f"http://127.0.0.1:{silent_backend.port}/v1"))
    sock = socket.create_connection(("127.0.0.1", router.port))
    sock.sendall(post_bytes("/anthropic/v1/messages",
                             json.dumps({**MESSAGE, "stream": stream}).encode()))
    assert silent_backend.posted.wait(5)
    left = time.monotonic()
    sock.close()
    deadline = left + 3
    while not silent_backend.closed_at and time.monotonic() < deadline:
        time.sleep(0.02)
    assert silent_backend.closed_at, "the upstream request kept running after the client left"
    assert silent_backend.closed_at[0] - left < 1.0


@pytest.mark.parametrize("path", ["/health", "/anthropic/api/hello"])
def test_head_is_answered_without_a_body_and_without_an_error(router, path: str, caplog
                                                              ) -> None:
    """Claude Code probes `HEAD {base}/api/hello` at start-up (REPORT.md §1.4): the answer is
    a head with no body, and the router logs no connection failure for it."""
    caplog.set_level(logging.INFO, logger="continuum")
    out = exchange(router.port, b"HEAD " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                        b"Connection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b""
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_header_timeout_bounds_the_whole_head(router_factory, scripted: ScriptedBackend) -> None:
    """Issue 2 limits: `header_timeout` bounds reading the request head, so a client that
    drips a header line just under the timeout (slowloris) is still cut off."""
    router = router_factory(basic_config(scripted, server={"header_timeout": "1s"}))
    sock = socket.create_connection(("127.0.0.1", router.port), timeout=0.05)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    answer = b""
    for _ in range(12):  # ~6 s of dripping, each gap ~0.5 s
        time.sleep(0.45)
        try:
            sock.sendall(b"X-Drip: 1\r\n")
            answer += sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            break
        if answer:
            break
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408")


def test_access_log_line_for_a_stream_the_client_abandoned(router, scripted, caplog) -> None:
    """Issue 2 logs: one line per request, also for a stream the client cancelled (ESC)."""
    caplog.set_level(logging.INFO, logger="continuum")
    scripted.queue(Chunks(text_chunks(Text(" ".join(["w"] * 200)), "test-model"), delay=0.05))
    sock = socket.create_connection(("127.0.0.1", router.port))
    sock.sendall(post_bytes("/anthropic/v1/messages",
                             json.dumps({**MESSAGE, "stream": True}).encode()))
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [r for r in caplog.records if r.name == "continuum.access"
                 and getattr(r, "path", "") == "/anthropic/v1/messages"]
        if lines:
            break
        time.sleep(0.05)
    assert lines, "no access log line for the abandoned stream"


def test_upstream_failure_reason_is_logged(router_factory, caplog) -> None:
    """Issue 2 logs: the operator sees why a request failed (backend and reason), not only
    `529 - -` in the access line."""
    caplog.set_level(logging.INFO, logger="continuum")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    router = router_factory(_one_backend(f"http://127.0.0.1:{port}/v1"))
    caplog.clear()
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=MESSAGE)
    assert resp.status_code == 529
    text = "\n".join(r.getMessage() for r in caplog.records if r.name != "continuum.routing")
    assert "unreachable" in text


# -- issue 2: upstream --------------------------------------------------------------------------

def test_gzip_encoded_upstream_stream_is_decoded(router_factory, gzip_backend: str) -> None:
    """A backend behind a compressing proxy: the router asked for gzip (httpx default), so it
    must decode it (or ask for identity) instead of parsing compressed bytes as SSE."""
    router = router_factory(_one_backend(gzip_backend))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    with client.messages.stream(**MESSAGE) as stream:
        message = stream.get_final_message()
    assert [b.text for b in message.content if b.type == "text"] == ["Hello compressed"]


def test_gzip_encoded_upstream_passthrough_stream(router_factory, gzip_backend: str) -> None:
    router = router_factory(_one_backend(gzip_backend))
    with httpx.stream("POST", router.url + "/v1/chat/completions",
                      json={**CHAT, "stream": True}) as resp:
        body = resp.read()
    assert b"Hello" in body and b"[DONE]" in body


def test_passthrough_body_cut_is_502_not_500(router_factory) -> None:
    """Issue 2: upstream errors mapped once at the edge; a cut JSON body is a 502."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def answer(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        if data.startswith(b"GET"):
            models = b'{"object":"list","data":[{"id":"test-model"}]}'
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: "
                         b"close\r\ncontent-length: " + str(len(models)).encode() + b"\r\n\r\n"
                         + models)
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: 1000\r\n\r\n{\"id\":\"x\",\"cho")
        conn.close()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            answer(conn)

    threading.Thread(target=serve, daemon=True).start()
    router = router_factory(_one_backend(f"http://127.0.0.1:{srv.getsockname()[1]}/v1"))
    resp = httpx.post(router.url + "/v1/chat/completions", json=CHAT)
    srv.close()
    assert resp.status_code == 502


# -- issue 3: answers that are not answers -------------------------------------------------------

@pytest.mark.parametrize("reply", [
    pytest.param(Raw("text/html", b"<html>login</html>"), id="html-page"),
    pytest.param(Raw("text/event-stream", b""), id="empty-body"),
    pytest.param(Raw("application/json", b'{"error":{"message":"model crashed"}}'),
                 id="json-error-object"),
])
def test_stream_reply_without_a_completion_is_an_error(router, scripted, reply) -> None:
    """A 200 that carries no completion must not become a successful empty turn."""
    scripted.queue(reply)
    resp = httpx.post(router.anthropic_url + "/v1/messages", json={**MESSAGE, "stream": True})
    assert resp.status_code >= 500 or "event: error" in resp.text


@pytest.mark.parametrize("body", [
    pytest.param({"error": {"message": "model crashed"}}, id="error-object"),
    pytest.param({"object": "error", "message": "model crashed", "code": 500}, id="vllm-style"),
])
def test_non_stream_error_body_with_200_is_an_error(router, scripted, body) -> None:
    scripted.queue(Completion(body))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=MESSAGE)
    assert resp.status_code >= 400
    assert resp.json()["type"] == "error"


# -- issue 3: request intake ---------------------------------------------------------------------

@pytest.mark.parametrize("path,payload", [
    pytest.param("/anthropic/v1/messages", b'{"model":"test-model","max_tokens":8,'
                 b'"messages":[{"role":"user","content":"cut emoji \\ud83d"}]}', id="anthropic"),
    pytest.param("/v1/chat/completions", b'{"model":"test-model",'
                 b'"messages":[{"role":"user","content":"cut emoji \\ud83d"}]}', id="openai"),
])
def test_lone_surrogate_escape_is_not_a_500(router, path: str, payload: bytes) -> None:
    """Claude Code truncates tool output inside a UTF-16 pair and sends `\\ud83d` alone; a 500
    makes it retry ten times. Replace it (U+FFFD) or answer 400."""
    resp = httpx.post(router.url + path, content=payload,
                      headers={"content-type": "application/json"})
    assert resp.status_code in (200, 400)


@pytest.mark.parametrize("block", [
    pytest.param({"type": "image", "source": "abc"}, id="image-source-string"),
    pytest.param({"type": "document", "source": "abc"}, id="document-source-string"),
])
def test_malformed_block_source_is_400(router, block: dict[str, Any]) -> None:
    resp = httpx.post(router.anthropic_url + "/v1/messages", json={
        **MESSAGE, "messages": [{"role": "user", "content": [block]}]})
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"


# -- issue 3: errors ----------------------------------------------------------------------------

def test_auth_failure_tells_claude_code_not_to_retry(router_factory, scripted) -> None:
    """Claude Code retries 401 ten times with backoff (REPORT.md §8) unless told
    `x-should-retry: false`; a wrong key would hang the session for minutes."""
    router = router_factory(basic_config(scripted, api_keys={
        "mode": "blocking", "keys": [{"key": "right", "name": "a"}]}))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=MESSAGE,
                      headers={"x-api-key": "wrong"})
    assert resp.status_code == 401
    assert resp.headers.get("x-should-retry") == "false"


@pytest.mark.parametrize("status,body,expected", [
    pytest.param(500, {"error": "Trying to keep the first 5000 tokens when context the overflows. "
                       "However, the model is loaded with context length of only 4096 tokens, "
                       "which is not enough. Try to load the model with a larger context "
                       "length, or provide a shorter input"},
                 "prompt is too long: 5000 tokens > 4096 maximum", id="lmstudio-500"),
    pytest.param(400, {"error": {"code": 400, "message": "the request exceeds the available "
                       "context size, try increasing it", "type": "exceed_context_size_error",
                       "n_prompt_tokens": 5000, "n_ctx": 4096}},
                 "prompt is too long: 5000 tokens > 4096 maximum", id="llamacpp-fields"),
])
def test_context_overflow_is_400_with_counts(router, scripted, status, body, expected) -> None:
    """Issue 3 / checklist item 43: overflow in any engine's wording is a non-retried 400
    "prompt is too long: N tokens > M maximum" (LM Studio answers it as a 500)."""
    scripted.queue(Error(status, body))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=MESSAGE)
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert expected in resp.json()["error"]["message"]


def test_rate_limit_mentioning_tokens_stays_a_429(router, scripted) -> None:
    """A 429 "too many tokens per minute" is a rate limit (retried), not a context overflow."""
    scripted.queue(Error(429, {"error": {"message": "Rate limit reached: too many tokens per "
                                         "minute"}}, {"retry-after": "2"}))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=MESSAGE)
    assert resp.status_code == 429
    assert resp.json()["error"]["type"] == "rate_limit_error"


# -- issue 3: streaming agrees with non-streaming ------------------------------------------------

TOOLS = [{"name": "Bash", "input_schema": {"type": "object",
                                           "properties": {"command": {"type": "string"}}}}]


def test_streamed_invalid_tool_arguments_still_parse(router, scripted) -> None:
    """Checklist items 34/39: the input_json_delta pieces must concatenate to JSON; the
    non-streaming path already hands invalid arguments over as `_unparsed_arguments`."""
    call = {"index": 0, "id": "c1", "type": "function",
            "function": {"name": "Bash", "arguments": "{'command': 'ls'}"}}
    scripted.queue(Chunks([chunk({"tool_calls": [call]}), chunk({}, "tool_calls")]))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    with client.messages.stream(**MESSAGE, tools=TOOLS) as stream:
        message = stream.get_final_message()
    assert message.content[0].type == "tool_use"


def test_streamed_stop_sequence_is_not_in_the_text(router, scripted) -> None:
    """Issue 3: `stop_sequence` reported when matched; like the non-streaming path (and
    Anthropic), the text does not contain the matched stop sequence."""
    scripted.queue(Chunks([chunk({"content": "hello "}), chunk({"content": "STOP"}),
                           chunk({}, "stop")]))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    with client.messages.stream(**MESSAGE, stop_sequences=["STOP"]) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "stop_sequence"
    assert "STOP" not in message.content[0].text


# -- issue 2: the process -----------------------------------------------------------------------

def _serve(tmp_path: Path, config: dict[str, Any], *args: str) -> tuple[subprocess.Popen, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuum_cli", "serve", "--config", str(path), "--bind",
         f"127.0.0.1:{port}", *args], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url


def test_json_log_format_writes_only_json_lines(tmp_path, scripted) -> None:
    """Issue 2: `--log-format json` is for machines: every stderr line is a JSON object."""
    proc, url = _serve(tmp_path, basic_config(scripted), "--log-format", "json")
    httpx.post(url + "/anthropic/v1/messages", json=MESSAGE)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_shutdown_grace_expiry_is_quiet(tmp_path, scripted) -> None:
    """Issue 2: after the grace period in-flight streams are cancelled, without tracebacks."""
    scripted.queue(Chunks(text_chunks(Text(" ".join(["w"] * 100)), "test-model"), delay=0.1))
    proc, url = _serve(tmp_path, basic_config(scripted, server={"shutdown_grace": "0.5s"}))
    reader = threading.Thread(target=lambda: httpx.post(
        url + "/anthropic/v1/messages", json={**MESSAGE, "stream": True}, timeout=20))
    reader.start()
    time.sleep(0.8)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    reader.join(20)
    assert proc.returncode == 0
    assert "Traceback" not in err.decode()
