"""`GET /anthropic/api/oauth/usage` and the usage-limit headers for a signed-in key: the same
budget standing drives both (the client pairs dollars with the percent only when the two
reset instants agree to the second)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from continuum_cli.gateway import usage as gw_usage
from continuum_cli.limits.budgets import BudgetStanding
from tests.fakes.scripted_backend import ScriptedBackend, Text, usage
from tests.gateway.helpers import bearer, gateway_config, sign_in
from tests.router import RouterThread

Factory = Callable[..., RouterThread]
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]}
DAY = (1_786_060_800.0, 1_786_147_200.0)  # one UTC day


def _standing(kind: str, used: float, cap: float, period: str = "daily") -> BudgetStanding:
    return BudgetStanding(period, kind, used, cap, *DAY)


def test_capped_body_spend_cap() -> None:
    body = gw_usage.capped_body([_standing("cost", 27.14, 50.0)])
    assert body["extra_usage"] == {"is_enabled": True, "monthly_limit": 5000,
                                   "used_credits": 2714, "utilization": 54, "currency": "USD"}
    assert body["limits"] == [{"kind": "spend", "group": "daily", "percent": 54,
                               "resets_at": "2026-08-08T00:00:00.000Z", "severity": "normal",
                               "is_active": True}]


def test_capped_body_dollars_belong_to_the_spend_row() -> None:
    tokens, cost = _standing("tokens", 900, 1000), _standing("cost", 10.0, 50.0, "monthly")
    body = gw_usage.capped_body([tokens, cost])
    assert body["extra_usage"]["monthly_limit"] == 5000
    assert [(r["kind"], r["severity"], r["is_active"]) for r in body["limits"]] == [
        ("tokens", "warning", False), ("spend", "normal", True)]


def test_capped_body_tokens_only_has_no_dollars() -> None:
    body = gw_usage.capped_body([_standing("tokens", 1000, 1000)])
    assert body["extra_usage"]["monthly_limit"] is None
    assert body["extra_usage"]["utilization"] is None
    assert body["limits"][0]["severity"] == "critical" and body["limits"][0]["percent"] == 100
    assert body["limits"][0]["is_active"] is True


def test_uncapped_body_and_spend_by_period() -> None:
    now = DAY[0] + 3600
    records = [{"key": "alice", "ts": now - 60, "cost_usd": 1.5},
               {"key": "alice", "ts": DAY[0] - 86400 * 2, "cost_usd": 2.0},
               {"key": "bob", "ts": now - 60, "cost_usd": 9.0},
               {"key": "alice", "ts": now - 30, "cost_usd": None}]
    daily, weekly, monthly = gw_usage.spend_by_period(records, "alice", now)
    assert daily == 1.5 and monthly == 3.5
    assert weekly in (1.5, 3.5)  # depends on the weekday of DAY
    body = gw_usage.uncapped_body(daily, weekly, monthly)
    extra = body["extra_usage"]
    assert body["limits"] == [] and extra["monthly_limit"] is None
    assert extra["used_credits"] == 350 and extra["daily"] == {
        "limit": None, "used_credits": 150, "utilization": None}


def _config(scripted: ScriptedBackend, budgets: list[dict[str, Any]] | None) -> dict[str, Any]:
    config = gateway_config(scripted)
    if budgets is not None:
        config["api_keys"]["keys"][0]["budgets"] = budgets
    config["pricing"] = {scripted.models[0]: {"input": 1.0, "output": 10.0}}
    return config


def _settled(router: RouterThread) -> None:
    deadline = time.monotonic() + 30
    while router.service.state.pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not router.service.state.pending


def _spend(router: RouterThread, scripted: ScriptedBackend, token: str,
           completion: int) -> httpx.Response:
    scripted.queue(Text("ok", usage=usage(prompt=5, completion=completion)))
    answer = httpx.post(f"{router.anthropic_url}/v1/messages", json=BODY, headers=bearer(token))
    _settled(router)
    return answer


def test_usage_endpoint_matches_the_headers(scripted: ScriptedBackend,
                                            router_factory: Factory) -> None:
    router = router_factory(_config(scripted, [{"period": "daily", "tokens": 1_000_000}]))
    token = sign_in(router.anthropic_url)["access_token"]
    _spend(router, scripted, token, 820_000)
    warned = _spend(router, scripted, token, 1)
    h = warned.headers
    assert h["anthropic-ratelimit-unified-status"] == "allowed_warning"
    assert h["anthropic-ratelimit-unified-overage-surpassed-threshold"] == "0.75"
    answer = httpx.get(f"{router.anthropic_url}/api/oauth/usage", headers=bearer(token))
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    row = answer.json()["limits"][0]
    assert row["group"] == "daily" and row["percent"] == 82 and row["severity"] == "warning"
    reset = datetime.fromisoformat(row["resets_at"].replace("Z", "+00:00")).timestamp()
    assert int(reset) == int(h["anthropic-ratelimit-unified-overage-reset"])


def test_usage_endpoint_in_dollars(scripted: ScriptedBackend, router_factory: Factory) -> None:
    router = router_factory(_config(scripted, [{"period": "monthly", "cost_usd": 50}]))
    token = sign_in(router.anthropic_url)["access_token"]
    _spend(router, scripted, token, 1_000_000)  # $10 of output
    extra = httpx.get(f"{router.anthropic_url}/api/oauth/usage",
                      headers=bearer(token)).json()["extra_usage"]
    assert extra["monthly_limit"] == 5000
    assert 1000 <= extra["used_credits"] <= 1001 and extra["utilization"] == 20


def test_usage_endpoint_for_a_key_without_caps(scripted: ScriptedBackend,
                                               router_factory: Factory) -> None:
    router = router_factory(_config(scripted, None))
    token = sign_in(router.anthropic_url)["access_token"]
    plain = _spend(router, scripted, token, 100_000)  # $1 of output
    assert not [k for k in plain.headers if k.startswith("anthropic-ratelimit-unified")]
    body = httpx.get(f"{router.anthropic_url}/api/oauth/usage", headers=bearer(token)).json()
    assert body["limits"] == []
    extra = body["extra_usage"]
    assert extra["monthly_limit"] is None and 100 <= extra["used_credits"] <= 101
    assert 100 <= extra["daily"]["used_credits"] <= 101
    assert 100 <= extra["weekly"]["used_credits"] <= 101


def test_usage_endpoint_needs_a_bearer(scripted: ScriptedBackend,
                                       router_factory: Factory) -> None:
    router = router_factory(_config(scripted, None))
    assert httpx.get(f"{router.anthropic_url}/api/oauth/usage").status_code == 401


def test_billing_error_for_a_signed_in_key(scripted: ScriptedBackend,
                                           router_factory: Factory) -> None:
    router = router_factory(_config(scripted, [{"period": "daily", "tokens": 1_000_000}]))
    token = sign_in(router.anthropic_url)["access_token"]
    _spend(router, scripted, token, 1_000_000)
    before = len(scripted.chat_requests())
    blocked = httpx.post(f"{router.anthropic_url}/v1/messages", json=BODY, headers=bearer(token))
    assert blocked.status_code == 429 and blocked.headers["x-should-retry"] == "false"
    assert blocked.json()["error"]["type"] == "billing_error"
    assert "anthropic-ratelimit-unified-representative-claim" not in blocked.headers
    assert "anthropic-ratelimit-unified-overage-status" not in blocked.headers
    assert len(scripted.chat_requests()) == before  # refused before any upstream
