"""Bearer endpoints of the gateway over HTTP: managed settings (checksum, ETag, 304, 404),
the models list, OTLP telemetry (forwarded unchanged or dropped), and the verification
page's guards (CSRF, attempt limit, wrong codes and keys)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.fakes.scripted_backend import ScriptedBackend
from tests.gateway.helpers import ALICE_KEY, bearer, csrf_field, gateway_config, sign_in, \
    start_device, submit_page
from tests.router import RouterThread

Factory = Callable[..., RouterThread]
POLICY = {"env": {"CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1", "B": "x"},
          "permissions": {"deny": ["WebFetch"]}}


def test_managed_settings_checksum_etag_and_304(scripted: ScriptedBackend,
                                                 router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted, managed_settings=POLICY))
    token = sign_in(router.anthropic_url)["access_token"]
    url = f"{router.anthropic_url}/managed/settings"
    answer = httpx.get(url, headers=bearer(token))
    assert answer.status_code == 200
    body = answer.json()
    canonical = json.dumps(POLICY, sort_keys=True, separators=(",", ":"))
    digest = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert body["checksum"] == digest and body["settings"] == POLICY and body["uuid"]
    assert answer.headers["etag"] == f'"{digest}"'
    same = httpx.get(url, headers={**bearer(token), "if-none-match": f'"{digest}"'})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == f'"{digest}"'
    stale = httpx.get(url, headers={**bearer(token), "if-none-match": '"sha256:old"'})
    assert stale.status_code == 200 and stale.json()["checksum"] == digest
    star = httpx.get(url, headers={**bearer(token), "if-none-match": "*"})
    assert star.status_code == 200  # answered as without the header
    assert httpx.get(url).status_code == 401


@pytest.mark.parametrize("policy,status", [(None, 404), ({}, 200)], ids=["none", "empty"])
def test_no_policy_is_404_and_empty_policy_is_200(scripted: ScriptedBackend,
                                                  router_factory: Factory, policy: Any,
                                                  status: int) -> None:
    router = router_factory(gateway_config(scripted, managed_settings=policy))
    token = sign_in(router.anthropic_url)["access_token"]
    answer = httpx.get(f"{router.anthropic_url}/managed/settings", headers=bearer(token))
    assert answer.status_code == status
    if status == 200:
        assert answer.json()["settings"] == {}


def test_models_list_from_config(scripted: ScriptedBackend, router_factory: Factory) -> None:
    config = gateway_config(scripted, models=[
        {"id": "claude-sonnet-4-5", "display_name": "Qwen3 Coder (team)"},
        {"id": "claude-opus-4-1"}])
    router = router_factory(config)
    token = sign_in(router.anthropic_url)["access_token"]
    answer = httpx.get(f"{router.anthropic_url}/v1/models", params={"limit": 1000},
                       headers=bearer(token))
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert [(m["id"], m["display_name"]) for m in data] == [
        ("claude-sonnet-4-5", "Qwen3 Coder (team)"), ("claude-opus-4-1", "claude-opus-4-1")]
    assert answer.json()["has_more"] is False


def test_models_list_falls_back_to_claude_aliases_or_404(scripted: ScriptedBackend,
                                                         router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted))
    token = sign_in(router.anthropic_url)["access_token"]
    assert httpx.get(f"{router.anthropic_url}/v1/models",
                     headers=bearer(token)).status_code == 404
    config = gateway_config(scripted)
    config["model_aliases"]["claude-sonnet-4-5"] = scripted.models[0]
    other = router_factory(config)
    token = sign_in(other.anthropic_url)["access_token"]
    data = httpx.get(f"{other.anthropic_url}/v1/models", headers=bearer(token)).json()["data"]
    assert [(m["id"], m["display_name"]) for m in data] == [
        ("claude-sonnet-4-5", scripted.models[0])]


class Collector:
    """An OTLP/HTTP collector on loopback that records what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.received.append((self.path, headers, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.server.shutdown()


@pytest.mark.parametrize("signal", ["metrics", "logs", "traces"])
def test_telemetry_forwarded_unchanged(scripted: ScriptedBackend, router_factory: Factory,
                                       collector: Collector, signal: str) -> None:
    router = router_factory(gateway_config(scripted, otlp_forward=collector.url))
    token = sign_in(router.anthropic_url)["access_token"]
    payload = b"\x0a\x03abc\x12\x00protobuf-bytes"
    answer = httpx.post(f"{router.anthropic_url}/v1/{signal}", content=payload,
                        headers={**bearer(token), "content-type": "application/x-protobuf"})
    assert answer.status_code == 200
    assert collector.received == [(f"/v1/{signal}", collector.received[0][1], payload)]
    assert collector.received[0][1]["content-type"] == "application/x-protobuf"
    assert token not in json.dumps(collector.received[0][1])  # the bearer stays here


def test_telemetry_dropped_without_collector(scripted: ScriptedBackend,
                                             router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted))
    token = sign_in(router.anthropic_url)["access_token"]
    answer = httpx.post(f"{router.anthropic_url}/v1/logs", json={"resourceLogs": []},
                        headers=bearer(token))
    assert answer.status_code == 200 and answer.json() == {}
    down = router_factory(gateway_config(scripted, otlp_forward="http://127.0.0.1:9"))
    token = sign_in(down.anthropic_url)["access_token"]
    assert httpx.post(f"{down.anthropic_url}/v1/traces", json={},
                      headers=bearer(token)).status_code == 200


def test_page_is_plain_and_prefilled_never_submitted(scripted: ScriptedBackend,
                                                     router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted, login_notice="Key: see the wiki"))
    started = start_device(router.anthropic_url)
    page = httpx.get(f"{router.anthropic_url}/device",
                     params={"user_code": started["user_code"]})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'value="{started["user_code"]}"' in page.text
    assert "<script" not in page.text and "Key: see the wiki" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    answer = httpx.post(router.anthropic_url + "/oauth/token",
                        data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                              "device_code": started["device_code"]})
    assert answer.json()["error"] == "authorization_pending"  # showing it approved nothing


def test_page_rejects_missing_csrf_wrong_key_and_wrong_code(scripted: ScriptedBackend,
                                                            router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted))
    base = router.anthropic_url
    started = start_device(base)
    no_cookie = httpx.post(f"{base}/device", data={"user_code": started["user_code"],
                                                   "api_key": ALICE_KEY, "action": "approve",
                                                   "csrf": "x.y"})
    assert no_cookie.status_code == 403 and "form expired" in no_cookie.text
    wrong_key = submit_page(base, started["user_code"], api_key="sk-wrong")
    assert wrong_key.status_code == 401 and "not accepted" in wrong_key.text
    wrong_code = submit_page(base, "BCDF-GHJK")
    assert wrong_code.status_code == 400 and "not valid or has expired" in wrong_code.text
    assert started["user_code"] not in wrong_code.text
    malformed = submit_page(base, "hello")
    assert malformed.status_code == 400 and "not a valid code" in malformed.text
    assert submit_page(base, started["user_code"]).status_code == 200
    again = submit_page(base, started["user_code"])
    assert again.status_code == 400


def test_page_attempts_are_rate_limited_per_address(scripted: ScriptedBackend,
                                                    router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted))
    base = router.anthropic_url
    with httpx.Client() as client:
        html, statuses = client.get(f"{base}/device").text, []
        for _ in range(11):  # each answer carries a fresh form (and cookie)
            answer = client.post(f"{base}/device", data={
                "csrf": csrf_field(html), "user_code": "BCDF-GHJK", "api_key": "x"})
            statuses.append(answer.status_code)
            html = answer.text if answer.status_code != 429 else html
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    blocked = submit_page(base, start_device(base)["user_code"])
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0


def test_unrouted_gateway_models_are_named(scripted: ScriptedBackend) -> None:
    from continuum_cli.config.loader import validate
    from continuum_cli.gateway.endpoints import unrouted_models

    config = gateway_config(scripted, models=[{"id": "claude-sonnet-4-5"},
                                              {"id": "claude-mystery-9"}])
    config["model_aliases"] = {"sonnet": scripted.models[0]}
    assert unrouted_models(validate(config)) == ["claude-mystery-9"]
    config["model_aliases"]["default"] = scripted.models[0]
    assert unrouted_models(validate(config)) == []


def test_api_key_clients_keep_the_usual_models_list(scripted: ScriptedBackend,
                                                    router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted))
    answer = httpx.get(f"{router.anthropic_url}/v1/models", headers={"x-api-key": ALICE_KEY})
    assert answer.status_code == 200
    assert scripted.models[0] in [m["id"] for m in answer.json()["data"]]


def test_attempt_limit_per_client_behind_a_trusted_proxy(scripted: ScriptedBackend,
                                                         router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted, trusted_proxies=["127.0.0.1"]))
    base = router.anthropic_url

    def attempt(client: httpx.Client, who: str) -> int:
        html = client.get(f"{base}/device").text
        return client.post(f"{base}/device", headers={"x-forwarded-for": who}, data={
            "csrf": csrf_field(html), "user_code": "BCDF-GHJK", "api_key": "x"}).status_code

    with httpx.Client() as client:
        assert [attempt(client, "203.0.113.7") for _ in range(11)][-1] == 429
        assert attempt(client, "198.51.100.9") == 401  # another person behind the proxy


def test_managed_settings_per_key(scripted: ScriptedBackend, router_factory: Factory) -> None:
    router = router_factory(gateway_config(
        scripted, managed_settings=POLICY,
        managed_settings_by_key={"bob": {"env": {"ROLE": "admin"}}}))
    alice = sign_in(router.anthropic_url)["access_token"]
    bob = sign_in(router.anthropic_url, api_key="sk-bob-0123456789abcdef")["access_token"]
    url = f"{router.anthropic_url}/managed/settings"
    assert httpx.get(url, headers=bearer(alice)).json()["settings"] == POLICY
    theirs = httpx.get(url, headers=bearer(bob))
    assert theirs.json()["settings"] == {"env": {"ROLE": "admin"}}
    assert theirs.json()["checksum"] != httpx.get(url, headers=bearer(alice)).json()["checksum"]
