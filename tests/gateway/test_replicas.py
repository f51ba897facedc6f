"""Two routers sharing one real Redis (`state.redis_url`) act as one gateway: a sign-in
started on one replica is approved and redeemed on the other, its token works on both, and a
revocation on one is seen at once by the other."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.fakes.scripted_backend import ScriptedBackend
from tests.gateway.helpers import bearer, gateway_config, poll, refresh, start_device, \
    submit_page
from tests.redis_server import RedisServer
from tests.router import RouterThread

Factory = Callable[..., RouterThread]
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]}


def test_two_replicas_one_gateway(scripted: ScriptedBackend, router_factory: Factory,
                                  redis_server: RedisServer) -> None:
    config = gateway_config(scripted)
    config["state"] = {"redis_url": redis_server.url, "timeout": "2s"}
    a, b = router_factory(config), router_factory(config)
    started = start_device(a.anthropic_url)
    page = submit_page(b.anthropic_url, started["user_code"])  # CSRF secret shared too
    assert page.status_code == 200 and "Device connected" in page.text
    tokens = poll(a.anthropic_url, started["device_code"])
    assert tokens.status_code == 200
    assert poll(b.anthropic_url, started["device_code"]).json()["error"] == "invalid_grant"
    access = tokens.json()["access_token"]
    for replica in (a, b):
        answer = httpx.post(f"{replica.anthropic_url}/v1/messages", json=BODY,
                            headers=bearer(access))
        assert answer.status_code == 200
    renewed = refresh(b.anthropic_url, tokens.json()["refresh_token"]).json()
    assert refresh(a.anthropic_url, tokens.json()["refresh_token"]).status_code == 401
    httpx.post(f"{a.anthropic_url}/oauth/revoke", data={"token": renewed["access_token"]})
    after = httpx.post(f"{b.anthropic_url}/v1/messages", json=BODY,
                       headers=bearer(renewed["access_token"]))
    assert after.status_code == 401 and after.headers["x-should-retry"] == "false"
