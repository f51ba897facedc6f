"""HTTP and api_keys behaviour on a real socket that the other suites do not pin down:
pipelining, malformed heads, header and body limits (also on chunked and 100-continue
uploads), key expiry and key files, and secrets kept out of every log line of a real
`continuum serve` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend
from tests.rawhttp import exchange, post_bytes

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = {"model": "test-model", "max_tokens": 16,
           "messages": [{"role": "user", "content": "hi"}]}


def _post(path: str, body: dict[str, Any]) -> bytes:
    return post_bytes(path, json.dumps(body).encode())


CLOSE_HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_pipelined_requests_are_answered_in_order(router) -> None:
    data = _post("/anthropic/v1/messages", MESSAGE) * 2 + CLOSE_HEALTH
    out = exchange(router.port, data)
    assert out.count(b"HTTP/1.1 200") == 3
    assert out.index(b'"type":"message"') < out.rindex(b'"status":"ok"')


def test_request_pipelined_behind_a_stream_is_served_after_it(router) -> None:
    data = _post("/anthropic/v1/messages", {**MESSAGE, "stream": True}) + CLOSE_HEALTH
    out = exchange(router.port, data)
    assert out.count(b"HTTP/1.1 200") == 2
    assert out.index(b"event: message_stop") < out.index(b'"status":"ok"')


def test_protocol_error_body_matches_its_400_status(router) -> None:
    """A malformed request line is a client error: the body must not say `500 server_error`."""
    data = exchange(router.port, b"NOT HTTP AT ALL\r\n\r\n", until=b"}}")
    assert data.startswith(b"HTTP/1.1 400")
    body = json.loads(data.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == 400
    assert body["error"]["type"] == "invalid_request_error"


def test_max_header_bytes_is_enforced(router_factory, scripted: ScriptedBackend) -> None:
    """Issue 2 limits: a head over `server.max_header_bytes` is refused (431), also when it
    arrives in one read."""
    router = router_factory(basic_config(scripted, server={"max_header_bytes": "8KiB"}))
    data = exchange(router.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"X-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 431")


def test_wrong_method_is_405_with_allow(router) -> None:
    resp = httpx.get(router.anthropic_url + "/v1/messages")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert resp.json()["type"] == "error"


@pytest.fixture
def small_router(router_factory, scripted: ScriptedBackend):
    return router_factory(basic_config(scripted, server={"max_body_bytes": "64KiB"}))


def test_chunked_body_over_the_limit_is_413(small_router) -> None:
    big = b"x" * (200 * 1024)
    out = exchange(small_router.port, b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(big) + big
                    + b"\r\n0\r\n\r\n", until=b"}}")
    assert out.startswith(b"HTTP/1.1 413")
    body = json.loads(out.partition(b"\r\n\r\n")[2])
    assert body["error"]["type"] == "request_too_large"


def test_expect_continue_over_the_limit_gets_413_without_100(small_router,
                                                              scripted: ScriptedBackend) -> None:
    out = exchange(small_router.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    b"Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n", until=b"}}")
    assert out.startswith(b"HTTP/1.1 413")
    assert b"100 Continue" not in out and not out.startswith(b"HTTP/1.1 100")
    assert json.loads(out.partition(b"\r\n\r\n")[2])["error"]["code"] == 413
    assert scripted.chat_requests() == []


def test_api_keys_expiry_disable_bearer_and_keys_file(router_factory, scripted, tmp_path
                                                      ) -> None:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text("- key: from-file\n  name: filed\n")
    router = router_factory(basic_config(scripted, api_keys={
        "mode": "blocking", "keys_file": str(keys_file), "keys": [
            {"key": "good", "name": "g"},
            {"key": "old", "name": "o", "expires_at": "2020-01-01T00:00:00Z"},
            {"key": "off", "name": "f", "enabled": False}]}))
    cases = [({}, 401), ({"x-api-key": "good"}, 200), ({"authorization": "Bearer good"}, 200),
             ({"authorization": "bearer good"}, 200), ({"x-api-key": "old"}, 401),
             ({"x-api-key": "off"}, 401), ({"x-api-key": "from-file"}, 200),
             ({"authorization": "Basic Z29vZA=="}, 401)]
    for headers, status in cases:
        resp = httpx.post(router.anthropic_url + "/v1/messages", json=MESSAGE, headers=headers)
        assert resp.status_code == status, headers
        if status == 401:
            assert resp.json()["error"]["type"] == "authentication_error"
    for public in ("/health", "/healthz", "/anthropic/api/hello"):
        assert httpx.get(router.url + public).status_code == 200
    for private in ("/v1/models", "/anthropic/v1/models"):
        assert httpx.get(router.url + private).status_code == 401


def test_no_secret_reaches_any_log_line(tmp_path) -> None:
    secrets = {"BK": "sk-backend-1111", "WK": "ws-key-2222", "CK": "client-key-3333"}
    wrong = "wrong-key-4444"
    with ScriptedBackend(api_key=secrets["BK"]) as backend:
        config = basic_config(backend, api_keys={"mode": "blocking",
                                                 "keys": [{"key": "${CK}", "name": "alice"}]})
        config["backends"][0]["api_key"] = "${BK}"
        config["web_search"] = {"enabled": True, "provider": "brave", "api_key": "${WK}",
                                "base_url": "http://127.0.0.1:9/"}
        for fmt in ("json", "rich"):
            out = _serve_and_drive(tmp_path, config, fmt, secrets, wrong)
            for value in [*secrets.values(), wrong]:
                assert value not in out, (fmt, value)


def _serve_and_drive(tmp_path: Path, config: dict[str, Any], fmt: str,
                     secrets: dict[str, str], wrong: str) -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    path = tmp_path / f"config-{fmt}.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuum_cli", "serve", "--config", str(path), "--bind",
         f"127.0.0.1:{port}", "--log-format", fmt, "--log-level", "debug"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **secrets, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    good = {"x-api-key": secrets["CK"]}
    httpx.post(url + "/anthropic/v1/messages", json=MESSAGE, headers={"x-api-key": wrong})
    httpx.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {wrong}"},
               json={"model": "test-model", "messages": MESSAGE["messages"]})
    assert httpx.post(url + "/anthropic/v1/messages", json=MESSAGE,
                      headers=good).status_code == 200
    httpx.post(url + "/anthropic/v1/messages", headers=good, timeout=30, json={
        **MESSAGE, "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "messages": [{"role": "user",
                      "content": "Perform a web search for the query: continuum"}]})
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    return out.decode() + err.decode()
