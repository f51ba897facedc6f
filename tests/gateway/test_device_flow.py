"""The device flow end to end over HTTP against the real router: discovery, device
authorization, the verification page, every answer of the token endpoint, expiry, single
use, refresh (rotation), revocation, and bearer tokens on the Messages route."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.scripted_backend import ScriptedBackend
from tests.gateway.helpers import (
    ALICE_KEY, DEVICE_GRANT, UA, bearer, gateway_config, poll, refresh, sign_in, start_device,
    submit_page,
)
from tests.router import RouterThread

Factory = Callable[..., RouterThread]
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gw(scripted: ScriptedBackend, router_factory: Factory) -> RouterThread:
    return router_factory(gateway_config(scripted, poll_interval="5s"))


def base(router: RouterThread) -> str:
    return router.anthropic_url


def test_discovery_names_absolute_endpoints_on_the_request_origin(gw: RouterThread) -> None:
    answer = httpx.get(f"{base(gw)}/.well-known/oauth-authorization-server", headers=UA)
    assert answer.status_code == 200
    meta = answer.json()
    assert meta["issuer"] == base(gw)
    assert meta["device_authorization_endpoint"] == f"{base(gw)}/oauth/device_authorization"
    assert meta["token_endpoint"] == f"{base(gw)}/oauth/token"
    assert meta["revocation_endpoint"] == f"{base(gw)}/oauth/revoke"
    assert DEVICE_GRANT in meta["grant_types_supported"]
    assert "authorization_endpoint" not in meta
    # RFC 8414's path form answers the same document
    again = httpx.get(f"{gw.url}/.well-known/oauth-authorization-server/anthropic")
    assert again.json() == meta


def test_discovery_follows_the_host_the_client_used(gw: RouterThread) -> None:
    answer = httpx.get(f"{base(gw)}/.well-known/oauth-authorization-server",
                       headers={"host": f"localhost:{gw.port}"})
    assert answer.json()["token_endpoint"] == f"http://localhost:{gw.port}/anthropic/oauth/token"


def test_device_authorization_answer(scripted: ScriptedBackend, router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted, login_notice="Use your wiki key.",
                                           device_code_ttl="10m"))
    # unknown parameters are ignored; no client_id or scope is needed
    answer = httpx.post(f"{base(router)}/oauth/device_authorization",
                        data={"surface": "claude_code", "future_param": "x"}, headers=UA)
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["device_code"]) >= 43 and body["expires_in"] == 600
    assert body["interval"] == 5 and body["login_notice"] == "Use your wiki key."
    assert body["verification_uri"] == f"{base(router)}/device"
    assert body["verification_uri_complete"] == \
        f"{base(router)}/device?user_code={body['user_code']}"
    assert answer.headers["cache-control"] == "no-store"
    # an empty form works too
    assert httpx.post(f"{base(router)}/oauth/device_authorization").status_code == 200


def test_pending_slow_down_then_tokens_once(gw: RouterThread) -> None:
    started = start_device(base(gw))
    first = poll(base(gw), started["device_code"])
    assert (first.status_code, first.json()["error"]) == (400, "authorization_pending")
    second = poll(base(gw), started["device_code"])  # well inside the 5 s interval
    assert (second.status_code, second.json()["error"]) == (400, "slow_down")
    assert submit_page(base(gw), started["user_code"]).status_code == 200
    tokens = poll(base(gw), started["device_code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 8 * 3600
    assert body["access_token"] != body["refresh_token"]
    assert tokens.headers["cache-control"] == "no-store"
    reused = poll(base(gw), started["device_code"])  # single use
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_denied_on_the_page(gw: RouterThread) -> None:
    started = start_device(base(gw))
    page = submit_page(base(gw), started["user_code"], api_key="", action="deny")
    assert page.status_code == 200 and "denied" in page.text, page.text
    answer = poll(base(gw), started["device_code"])
    assert (answer.status_code, answer.json()["error"]) == (400, "access_denied"), answer.text


def test_expired_code(scripted: ScriptedBackend, router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted, device_code_ttl="1s"))
    started = start_device(base(router))
    time.sleep(1.5)
    answer = poll(base(router), started["device_code"])
    assert (answer.status_code, answer.json()["error"]) == (400, "expired_token")
    page = submit_page(base(router), started["user_code"])
    assert page.status_code == 400 and "not valid or has expired" in page.text


@pytest.mark.parametrize("form,status,error", [
    pytest.param({}, 400, "invalid_request", id="no_grant_type"),
    pytest.param({"grant_type": "password"}, 400, "unsupported_grant_type", id="unsupported"),
    pytest.param({"grant_type": DEVICE_GRANT}, 400, "invalid_request", id="no_device_code"),
    pytest.param({"grant_type": DEVICE_GRANT, "device_code": "nope"}, 400, "invalid_grant",
                 id="unknown_device_code"),
    pytest.param({"grant_type": "refresh_token"}, 400, "invalid_request", id="no_refresh"),
    pytest.param({"grant_type": "refresh_token", "refresh_token": "cgw_rt_nope"}, 401,
                 "invalid_grant", id="unknown_refresh"),
])
def test_token_endpoint_errors(gw: RouterThread, form: dict, status: int, error: str) -> None:
    answer = httpx.post(f"{base(gw)}/oauth/token", data=form, headers=UA)
    assert answer.status_code == status
    body = answer.json()
    assert body["error"] == error and body["error_description"]


def test_bearer_reaches_messages_and_count_tokens(gw: RouterThread,
                                                  scripted: ScriptedBackend) -> None:
    tokens = sign_in(base(gw))
    client = anthropic.Anthropic(base_url=base(gw), auth_token=tokens["access_token"],
                                 api_key=None, max_retries=0)
    message = client.messages.create(**BODY)
    assert message.content[0].text == "Hello from the scripted backend."
    assert tokens["access_token"] not in str(scripted.requests[-1].headers)  # never upstream
    counted = client.messages.count_tokens(model=BODY["model"], messages=BODY["messages"])
    assert counted.input_tokens > 0


def test_refresh_rotates_and_reuse_ends_the_session(gw: RouterThread) -> None:
    tokens = sign_in(base(gw))
    fresh = refresh(base(gw), tokens["refresh_token"])
    assert fresh.status_code == 200
    new = fresh.json()
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] != tokens["refresh_token"]
    ok = httpx.post(f"{base(gw)}/v1/messages", json=BODY, headers=bearer(new["access_token"]))
    assert ok.status_code == 200
    replay = refresh(base(gw), tokens["refresh_token"])  # the spent one, presented again
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_grant")
    ended = httpx.post(f"{base(gw)}/v1/messages", json=BODY, headers=bearer(new["access_token"]))
    assert ended.status_code == 401 and ended.headers["x-should-retry"] == "false"
    assert refresh(base(gw), new["refresh_token"]).status_code == 401


def test_revocation_rfc7009(gw: RouterThread) -> None:
    tokens = sign_in(base(gw))
    revoked = httpx.post(f"{base(gw)}/oauth/revoke", data={"token": tokens["access_token"]},
                         headers=UA)
    assert revoked.status_code == 200
    second = httpx.post(f"{base(gw)}/oauth/revoke",
                        data={"token": tokens["refresh_token"],
                              "token_type_hint": "refresh_token"}, headers=UA)
    assert second.status_code == 200  # already gone: still 200 (RFC 7009 §2.2)
    denied = httpx.post(f"{base(gw)}/v1/messages", json=BODY,
                        headers=bearer(tokens["access_token"]))
    assert denied.status_code == 401 and denied.headers["x-should-retry"] == "false"
    assert denied.json()["error"]["type"] == "authentication_error"
    assert refresh(base(gw), tokens["refresh_token"]).status_code == 401
    missing = httpx.post(f"{base(gw)}/oauth/revoke", data={})
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")


def test_expired_access_token_gets_401_without_retry(scripted: ScriptedBackend,
                                                     router_factory: Factory) -> None:
    router = router_factory(gateway_config(scripted, token_ttl="1s"))
    tokens = sign_in(base(router))
    time.sleep(1.5)
    answer = httpx.post(f"{base(router)}/v1/messages", json=BODY,
                        headers=bearer(tokens["access_token"]))
    assert answer.status_code == 401 and answer.headers["x-should-retry"] == "false"
    assert refresh(base(router), tokens["refresh_token"]).status_code == 200


def test_token_follows_its_key(scripted: ScriptedBackend, router_factory: Factory,
                               tmp_path: Any) -> None:
    """A token is only as good as the key it was issued for: with the key disabled (config
    reloaded here by restarting on the same state store) the bearer and the refresh fail."""
    db = str(tmp_path / "state.db")
    config = gateway_config(scripted)
    config["state"] = {"path": db}
    first = router_factory(config)
    tokens = sign_in(base(first))
    first.stop()
    config["api_keys"]["keys"][0]["enabled"] = False
    second = router_factory(config)
    answer = httpx.post(f"{base(second)}/v1/messages", json=BODY,
                        headers=bearer(tokens["access_token"]))
    assert answer.status_code == 401 and answer.headers["x-should-retry"] == "false"
    assert "no longer enabled" in answer.json()["error"]["message"]
    assert refresh(base(second), tokens["refresh_token"]).status_code == 401


def test_sign_in_survives_a_restart(scripted: ScriptedBackend, router_factory: Factory,
                                    tmp_path: Any) -> None:
    config = gateway_config(scripted)
    config["state"] = {"path": str(tmp_path / "state.db")}
    first = router_factory(config)
    tokens = sign_in(base(first))
    first.stop()
    second = router_factory(config)
    answer = httpx.post(f"{base(second)}/v1/messages", json=BODY,
                        headers=bearer(tokens["access_token"]))
    assert answer.status_code == 200


def test_api_keys_still_work_next_to_tokens(gw: RouterThread) -> None:
    answer = httpx.post(f"{base(gw)}/v1/messages", json=BODY, headers={"x-api-key": ALICE_KEY})
    assert answer.status_code == 200
    wrong = httpx.post(f"{base(gw)}/v1/messages", json=BODY, headers=bearer("cgw_at_forged"))
    assert wrong.status_code == 401 and wrong.headers["x-should-retry"] == "false"


def test_gateway_routes_absent_when_disabled(router: RouterThread) -> None:
    answer = httpx.get(f"{router.anthropic_url}/.well-known/oauth-authorization-server")
    assert answer.status_code == 404
    assert httpx.post(f"{router.anthropic_url}/oauth/token").status_code == 404


def test_token_answer_names_the_keys_email(scripted: ScriptedBackend,
                                           router_factory: Factory) -> None:
    config = gateway_config(scripted)
    config["api_keys"]["keys"][0]["email"] = "alice@example.com"
    router = router_factory(config)
    assert sign_in(base(router))["email"] == "alice@example.com"
    assert "email" not in sign_in(base(router), api_key="sk-bob-0123456789abcdef")


def test_a_model_the_router_does_not_serve_is_400_for_a_sign_in(
        scripted: ScriptedBackend, router_factory: Factory) -> None:
    """Gateway protocol, Messages: a denied model is `400 invalid_request_error`. Signed-in
    clients get that for a model with no backend and no alias; API-key clients keep the
    Anthropic API's 404 `not_found_error`. (count_tokens counts for any model name.)"""
    config = gateway_config(scripted)
    del config["model_aliases"]["default"]
    router = router_factory(config)
    tokens = sign_in(base(router))
    body = {**BODY, "model": "claude-no-such-model"}
    signed_in = httpx.post(f"{base(router)}/v1/messages", json=body,
                           headers=bearer(tokens["access_token"]))
    assert signed_in.status_code == 400, signed_in.text
    error = signed_in.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "claude-no-such-model" in error["message"]
    with_key = httpx.post(f"{base(router)}/v1/messages", json=body,
                          headers={"x-api-key": ALICE_KEY})
    assert with_key.status_code == 404
    assert with_key.json()["error"]["type"] == "not_found_error"
    served = httpx.post(f"{base(router)}/v1/messages", json=BODY,
                        headers=bearer(tokens["access_token"]))
    assert served.status_code == 200


@pytest.mark.parametrize("path", ["/oauth/device_authorization", "/oauth/token",
                                  "/oauth/revoke", "/device"])
def test_a_deeply_nested_json_form_is_answered_not_a_500(
        gw: RouterThread, path: str, caplog: pytest.LogCaptureFixture) -> None:
    """Sign-in endpoints read a JSON object as a form too; one nested 50 000 deep is an
    unreadable (empty) form, answered in the endpoint's own way."""
    body = b'{"a":' + b"[" * 50_000
    with caplog.at_level("DEBUG"):
        answer = httpx.post(f"{base(gw)}{path}", content=body, headers=UA)
    assert answer.status_code < 500, answer.text
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
