"""The sans-I/O arithmetic of limits, budgets and the ledger: table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from continuum_cli.auth import Caller
from continuum_cli.config.models import Budget, KeyLimits, ModelPrice
from continuum_cli.limits.budgets import (
    BudgetStanding,
    budget_standings,
    fullest,
    period_bounds,
)
from continuum_cli.limits.decide import budget_message, decide
from continuum_cli.limits.headers import (
    RateStanding,
    anthropic_rate_headers,
    openai_duration,
    openai_rate_headers,
    rfc3339,
    unified_headers,
)
from continuum_cli.limits.plan import admission_plan, settlement
from continuum_cli.limits.pricing import cost_usd, price_for
from continuum_cli.state.counters import Admission, CheckState
from continuum_cli.usage.observe import UsageObserver, estimate_openai_tokens
from continuum_cli.usage.report import parse_since, summarize


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("period, now, start, end", [
    ("daily", "2026-08-07T13:00:00", "2026-08-07T00:00:00", "2026-08-08T00:00:00"),
    ("weekly", "2026-08-07T13:00:00", "2026-08-03T00:00:00", "2026-08-10T00:00:00"),  # Fri
    ("weekly", "2026-08-03T00:00:00", "2026-08-03T00:00:00", "2026-08-10T00:00:00"),  # Mon
    ("monthly", "2026-12-31T23:59:59", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ("monthly", "2026-02-10T00:00:00", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
])
def test_period_bounds(period: str, now: str, start: str, end: str) -> None:
    assert period_bounds(period, ts(now)) == (ts(start), ts(end))


@pytest.mark.parametrize("used, status, threshold, utilization", [
    (0, "allowed", None, "0.00"),
    (740, "allowed", None, "0.74"),
    (750, "allowed_warning", "0.75", "0.75"),
    (949, "allowed_warning", "0.75", "0.94"),
    (960, "allowed_warning", "0.95", "0.96"),
    (999.9, "allowed_warning", "0.95", "0.99"),
])
def test_unified_headers(used: float, status: str, threshold: str | None,
                         utilization: str) -> None:
    standing = BudgetStanding("daily", "tokens", used, 1000, 0, 1786147200)
    h = unified_headers(standing)
    assert h["anthropic-ratelimit-unified-status"] == status
    assert h["anthropic-ratelimit-unified-overage-status"] == status
    assert h.get("anthropic-ratelimit-unified-overage-surpassed-threshold") == threshold
    assert h["anthropic-ratelimit-unified-overage-utilization"] == utilization
    assert h["anthropic-ratelimit-unified-reset"] == "1786147200"
    assert h["anthropic-ratelimit-unified-overage-reset"] == "1786147200"
    assert h["anthropic-ratelimit-unified-representative-claim"] == "overage"


def test_fullest_describes_the_fullest_or_the_blocked_one_resetting_last() -> None:
    day = BudgetStanding("daily", "tokens", 900, 1000, 0, 100)
    month = BudgetStanding("monthly", "cost", 10, 50, 0, 1000)
    assert fullest([day, month]) is day
    day_out = BudgetStanding("daily", "tokens", 1000, 1000, 0, 100)
    month_out = BudgetStanding("monthly", "cost", 50, 50, 0, 1000)
    assert fullest([day_out, month_out]) is month_out
    assert fullest([day_out, month]) is day_out
    assert fullest([]) is None


@pytest.mark.parametrize("seconds, text", [
    (0.02, "20ms"), (1, "1s"), (59.2, "1m0s"), (60, "1m0s"), (61, "1m1s"), (3723, "1h2m3s"),
])
def test_openai_duration(seconds: float, text: str) -> None:
    assert openai_duration(seconds) == text


def test_rate_header_names() -> None:
    rates = [RateStanding("requests", 60, 59, ts("2026-08-07T13:01:00")),
             RateStanding("input_tokens", 1000, 900, ts("2026-08-07T13:01:00")),
             RateStanding("output_tokens", 500, 500, ts("2026-08-07T13:00:00"))]
    a = anthropic_rate_headers(rates)
    assert a["anthropic-ratelimit-requests-remaining"] == "59"
    assert a["anthropic-ratelimit-input-tokens-limit"] == "1000"
    assert a["anthropic-ratelimit-output-tokens-reset"] == "2026-08-07T13:00:00Z"
    o = openai_rate_headers(rates, ts("2026-08-07T13:00:30"))
    assert o == {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59",
                 "x-ratelimit-reset-requests": "30s", "x-ratelimit-limit-tokens": "1000",
                 "x-ratelimit-remaining-tokens": "900", "x-ratelimit-reset-tokens": "30s"}
    assert rfc3339(ts("2026-08-07T13:00:00") + 0.2) == "2026-08-07T13:00:01Z"


CALLER = Caller("alice", KeyLimits(requests_per_minute=2, output_tokens_per_minute=100,
                                   concurrent_requests=3),
                (Budget(period="daily", tokens=1000),), authenticated=True)


def test_plan_and_settlement() -> None:
    now = ts("2026-08-07T13:00:00")
    plan = admission_plan(CALLER, 40, None, now, "r1")
    assert plan.roles == ("requests", "output_tokens", "concurrent", "budget")
    assert [c.amount for c in plan.checks] == [1, 0, 1, 40]
    assert plan.checks[3].key == f"budget:alice:daily:tokens:{int(ts('2026-08-07T00:00:00'))}"
    adds, releases = settlement(plan, 25, None)
    assert [(c.key, c.amount) for c in adds] == [("output_tokens:alice", 25),
                                                 (plan.checks[3].key, 25)]
    # the caller's name travels with every check: a store may keep its counters together
    assert {c.group for c in (*plan.checks, *adds)} == {"alice"}
    assert releases == [("concurrent:alice", "r1", "alice")]


def test_decide_rate_limited_and_billing() -> None:
    now = ts("2026-08-07T13:00:00")
    plan = admission_plan(CALLER, 40, None, now, "r1")
    ok = CheckState(True, 0, now)
    over = Admission(False, (CheckState(False, 2, now + 12, now - 3), ok, ok,
                             CheckState(True, 10, now)))
    d = decide(plan, over, "alice")
    assert (d.refusal, d.retry_after, d.should_retry) == ("rate_limit", 12, True)
    assert "2 requests per minute" in d.message
    assert d.rates[0].remaining == 0
    spent = Admission(False, (ok, ok, ok, CheckState(False, 1000, ts("2026-08-08T00:00:00"))))
    b = decide(plan, spent, "alice")
    assert (b.refusal, b.should_retry) == ("billing", False)
    assert b.retry_after == 11 * 3600
    assert b.headers["anthropic-ratelimit-unified-overage-period"] == "daily"
    assert "resets Aug 8 00:00 UTC" in b.message
    admitted = decide(plan, Admission(True, (CheckState(True, 1, now, now - 1), ok, ok,
                                             CheckState(True, 700, now))), "alice")
    assert admitted.admitted and admitted.rates[0].remaining == 0
    assert admitted.budgets[0].used == 740


def test_pricing() -> None:
    prices = {"qwen": ModelPrice(input=0.2, output=0.8)}
    assert price_for(prices, "other", "qwen") is prices["qwen"]
    assert price_for(prices, "x") is None
    assert cost_usd(prices["qwen"], 1_000_000, 500_000, 0) == pytest.approx(0.6)
    assert cost_usd(None, 1, 1) is None


def test_observer_anthropic_stream_and_body() -> None:
    sse = (b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
           b'{"input_tokens":30,"output_tokens":1,"cache_read_input_tokens":4}}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"text_delta","text":"abcdefgh"}}\n\n'
           b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":'
           b'{"output_tokens":12,"server_tool_use":{"web_search_requests":2}}}\n\n')
    whole = UsageObserver()
    whole.feed(sse)
    assert vars(whole.result()) == {"input_tokens": 30, "output_tokens": 12,
                                    "cached_tokens": 4, "web_searches": 2, "reported": True}
    split = UsageObserver()
    for i in range(0, len(sse), 7):  # frames cut anywhere
        split.feed(sse[i:i + 7])
    assert split.result().output_tokens == 12
    cut = UsageObserver()
    cut.feed(sse[:sse.index(b"event: message_delta")])
    assert cut.result().output_tokens == 2  # 8 characters produced, nothing reported
    scaled = UsageObserver(scale=10)
    scaled.feed_body(b'{"usage":{"input_tokens":300,"output_tokens":50}}')
    assert (scaled.result().input_tokens, scaled.result().output_tokens) == (30, 5)


def test_observer_openai() -> None:
    o = UsageObserver()
    o.feed(b'data: {"choices":[{"delta":{"content":"hello world!"}}]}\n\n'
           b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,'
           b'"prompt_tokens_details":{"cached_tokens":2}}}\n\ndata: [DONE]\n\n')
    assert (o.result().input_tokens, o.result().cached_tokens, o.result().output_tokens) == (
        7, 2, 4)
    est = UsageObserver()
    est.feed(b'data: {"choices":[{"delta":{"content":"abcdefghijkl"}}]}\n\n')
    assert est.result().output_tokens == 3
    assert estimate_openai_tokens({"messages": [{"role": "user", "content": "x" * 68}]}) == 24


def test_report_summarize() -> None:
    now = ts("2026-08-07T13:00:00")
    records = [
        {"ts": now - 10, "key": "alice", "served_model": "q", "backend": "b", "status": 200,
         "input_tokens": 10, "output_tokens": 5, "cached_tokens": 1, "web_searches": 1,
         "cost_usd": 0.5},
        {"ts": now - 86400, "key": "alice", "served_model": "q", "backend": "b",
         "status": 502, "input_tokens": 3, "output_tokens": 0, "cost_usd": None},
        {"ts": now - 5, "key": "bob", "status": 429, "limited": True, "input_tokens": 9},
    ]
    by_key = summarize(records, "key", now - 7 * 86400, now)
    assert [r["key"] for r in by_key["rows"]] == ["alice", "bob"]
    alice, bob = by_key["rows"]
    assert (alice["requests"], alice["errors"], alice["input_tokens"]) == (2, 1, 13)
    assert alice["cost_usd"] == 0.5 and alice["unpriced_requests"] == 1
    assert (bob["requests"], bob["rejected"], bob["input_tokens"]) == (0, 1, 0)
    by_day = summarize(records, "day", now - 7 * 86400, now)
    assert [r["day"] for r in by_day["rows"]] == ["2026-08-06", "2026-08-07"]
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("2026-08-01", now) == ts("2026-08-01T00:00:00")
    with pytest.raises(ValueError):
        parse_since("soon", now)
    with pytest.raises(ValueError):
        summarize([], "colour", 0, now)


@pytest.mark.parametrize(("kind", "cap", "said"), [
    ("tokens", 5_000_000, "daily budget of 5,000,000 tokens"),
    ("cost", 50, "daily budget of $50.00"),
    ("cost", 1234.5, "daily budget of $1,234.50"),
    ("cost", 0.001, "daily budget of $0.001"),  # not "$0.00"
    ("cost", 0.0125, "daily budget of $0.01"),
])
def test_budget_message_names_the_cap_and_when_it_resets(kind: str, cap: float,
                                                        said: str) -> None:
    resets = datetime(2026, 12, 6, 0, 0, tzinfo=UTC).timestamp()
    message = budget_message(BudgetStanding("daily", kind, cap, cap, resets - 86400, resets),
                             "alice")
    assert message.startswith(said + " reached for key alice")
    assert "resets Dec 6 00:00 UTC" in message
