"""HTTP/1.1 edge cases on a real socket: keep-alive, chunked bodies, 100-continue, limits,
timeouts, malformed JSON, unknown routes, disconnects and graceful shutdown."""

from __future__ import annotations

import json
import socket
import threading
import time

import h11
import httpx
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import Chunks, ScriptedBackend, Text, chunk, text_chunks


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _read_response(sock: socket.socket, conn: h11.Connection) -> tuple[h11.Response, bytes]:
    head, body = None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
            continue
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            assert head is not None
            return head, body


def _request(method: str, target: str, headers: list[tuple[str, str]]) -> h11.Request:
    return h11.Request(method=method, target=target, headers=[("host", "test"), *headers])


def test_keep_alive_reuses_one_connection(router) -> None:
    sock = _connect(router.port)
    conn = h11.Connection(h11.CLIENT)
    for _ in range(3):
        sock.sendall(conn.send(_request("GET", "/health", [])))
        sock.sendall(conn.send(h11.EndOfMessage()))
        head, body = _read_response(sock, conn)
        assert head.status_code == 200 and json.loads(body)["status"] == "ok"
        conn.start_next_cycle()
    sock.close()


def test_httpx_pool_reuses_connection(router) -> None:
    ports = set()
    with httpx.Client() as client:
        for _ in range(3):
            resp = client.get(router.url + "/health", extensions={})
            assert resp.status_code == 200
            stream = resp.extensions.get("network_stream")
            if stream is not None:
                ports.add(stream.get_extra_info("client_addr"))
    assert len(ports) <= 1


def test_chunked_upload(router, scripted: ScriptedBackend) -> None:
    payload = json.dumps({"model": "test-model",
                          "messages": [{"role": "user", "content": "chunked hello"}]}).encode()

    def gen():
        for i in range(0, len(payload), 7):
            yield payload[i:i + 7]

    resp = httpx.post(router.url + "/v1/chat/completions", content=gen(),
                      headers={"content-type": "application/json"})
    assert resp.status_code == 200
    assert scripted.last_body["messages"][0]["content"] == "chunked hello"


def test_expect_100_continue(router, scripted: ScriptedBackend) -> None:
    body = json.dumps({"model": "test-model",
                       "messages": [{"role": "user", "content": "after continue"}]}).encode()
    sock = _connect(router.port)
    conn = h11.Connection(h11.CLIENT)
    sock.sendall(conn.send(_request("POST", "/v1/chat/completions", [
        ("content-type", "application/json"), ("content-length", str(len(body))),
        ("expect", "100-continue")])))
    conn.receive_data(sock.recv(65536))
    interim = conn.next_event()
    assert isinstance(interim, h11.InformationalResponse) and interim.status_code == 100
    sock.sendall(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    head, data = _read_response(sock, conn)
    assert head.status_code == 200
    assert scripted.last_body["messages"][0]["content"] == "after continue"
    sock.close()


def test_body_over_limit_is_413_in_route_envelope(router_factory, scripted) -> None:
    router = router_factory(basic_config(scripted, server={"max_body_bytes": 1024}))
    big = {"model": "test-model", "max_tokens": 5,
           "messages": [{"role": "user", "content": "x" * 4000}]}
    resp = httpx.post(router.url + "/anthropic/v1/messages", json=big)
    assert resp.status_code == 413
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "request_too_large"
    resp = httpx.post(router.url + "/v1/chat/completions", json=big)
    assert resp.status_code == 413 and "error" in resp.json() and "type" in resp.json()["error"]


def test_header_timeout_is_408_then_close(router_factory, scripted) -> None:
    router = router_factory(basic_config(scripted, server={"header_timeout": "0.5s"}))
    sock = _connect(router.port)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    started = time.monotonic()
    data = b""
    while True:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    assert data.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 5
    sock.close()


def test_idle_keepalive_connection_is_closed(router_factory, scripted) -> None:
    router = router_factory(basic_config(scripted, server={"keepalive_timeout": "0.3s"}))
    sock = _connect(router.port)
    assert sock.recv(10) == b""  # closed without a response
    sock.close()


@pytest.mark.parametrize("path,flavor", [
    ("/anthropic/v1/messages", "anthropic"), ("/v1/chat/completions", "openai")])
def test_malformed_json_is_400_saying_where(router, path: str, flavor: str) -> None:
    resp = httpx.post(router.url + path, content=b'{"model": "x", "messages": [}',
                      headers={"content-type": "application/json"})
    assert resp.status_code == 400
    data = resp.json()
    if flavor == "anthropic":
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
        message = data["error"]["message"]
    else:
        message = data["error"]["message"]
    assert "column" in message or "char" in message


@pytest.mark.parametrize("path,flavor", [
    ("/anthropic/v1/nothing", "anthropic"), ("/v2/whatever", "openai")])
def test_unknown_route_404_in_prefix_envelope(router, path: str, flavor: str) -> None:
    resp = httpx.get(router.url + path)
    assert resp.status_code == 404
    if flavor == "anthropic":
        assert resp.json()["type"] == "error"
        assert resp.json()["error"]["type"] == "not_found_error"
    else:
        assert resp.json()["error"]["type"] == "not_found_error"
        assert "type" not in resp.json() or resp.json().get("type") != "error"


def test_garbage_request_line_is_400(router) -> None:
    sock = _connect(router.port)
    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400")
    sock.close()


def test_client_disconnect_cancels_upstream(router, scripted: ScriptedBackend) -> None:
    many = text_chunks(Text(" ".join(["word"] * 400)), "test-model")
    scripted.queue(Chunks(many, delay=0.05))
    sock = _connect(router.port)
    body = json.dumps({"model": "test-model", "max_tokens": 100, "stream": True,
                       "messages": [{"role": "user", "content": "long"}]}).encode()
    sock.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\n"
                 b"content-type: application/json\r\ncontent-length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    time.sleep(0.3)
    closed_at = time.monotonic()
    sock.close()
    deadline = closed_at + 3
    while not scripted.disconnects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert scripted.disconnects, "the backend never saw the upstream connection close"
    assert scripted.disconnects[0] - closed_at < 1.0


def test_graceful_shutdown_finishes_inflight_stream(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Chunks(text_chunks(Text("a b c d e f g h"), "test-model"), delay=0.1))
    result: dict[str, object] = {}

    def consume() -> None:
        with httpx.stream("POST", router.url + "/v1/chat/completions", timeout=10, json={
                "model": "test-model", "stream": True,
                "messages": [{"role": "user", "content": "x"}]}) as resp:
            result["body"] = resp.read().decode()

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.3)
    router.call(router.service.stop())
    reader.join(10)
    body = str(result.get("body", ""))
    assert "data: [DONE]" in body
    with pytest.raises(httpx.ConnectError):
        httpx.get(router.url + "/health", timeout=2)


def test_scripted_chunk_helper_shapes() -> None:
    assert chunk({"content": "x"})["choices"][0]["delta"] == {"content": "x"}


def test_oversized_headers_are_431(router_factory, scripted) -> None:
    router = router_factory(basic_config(scripted, server={"max_header_bytes": 2048}))
    resp = httpx.get(router.url + "/health", headers={"x-big": "y" * 8000})
    assert resp.status_code == 431
    assert "max_header_bytes" in resp.json()["error"]["message"]


def test_garbage_request_body_says_malformed(router) -> None:
    sock = _connect(router.port)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400") and b"malformed HTTP request" in data
    sock.close()
