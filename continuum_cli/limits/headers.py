"""Header values, as plain dicts.

* Anthropic per-minute headers (docs.claude.com "Rate limits": `anthropic-ratelimit-requests-
  limit|remaining|reset`, `-input-tokens-*`, `-output-tokens-*`; reset in RFC 3339).
* OpenAI's names on /v1 (`x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests`,
  `x-ratelimit-reset-requests` as a duration such as `1m0s`, and the same for `tokens`).
* The unified usage headers of the Claude Code gateway protocol for budgets ("Usage-limit
  headers"): `allowed` / `allowed_warning` on success, the `rejected` set on the 429.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from continuum_cli.limits.budgets import BudgetStanding

UNIFIED = "anthropic-ratelimit-unified-"
THRESHOLDS = (0.95, 0.75)  # the client's notices: past 75 % and again past 95 %
# (limit, remaining, reset) header names per window, built once
_ANTHROPIC_NAMES = {
    role: tuple(f"anthropic-ratelimit-{name}-{part}" for part in ("limit", "remaining", "reset"))
    for role, name in (("requests", "requests"), ("input_tokens", "input-tokens"),
                       ("output_tokens", "output-tokens"))}


class RateStanding(NamedTuple):
    name: str  # requests | input_tokens | output_tokens
    limit: int
    remaining: int
    reset: float  # unix seconds: when the window is fully replenished


def rfc3339(ts: float) -> str:
    return _rfc3339(math.ceil(ts))


@lru_cache(maxsize=256)
def _rfc3339(second: int) -> str:  # a few distinct seconds per minute of traffic
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def anthropic_rate_headers(rates: Sequence[RateStanding]) -> dict[str, str]:
    headers = {}
    for rate in rates:
        limit, remaining, reset = _ANTHROPIC_NAMES[rate.name]
        headers[limit] = str(rate.limit)
        headers[remaining] = str(rate.remaining)
        headers[reset] = rfc3339(rate.reset)
    return headers


def openai_duration(seconds: float) -> str:
    """OpenAI's reset format: `20ms`, `1s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def openai_rate_headers(rates: Sequence[RateStanding], now: float) -> dict[str, str]:
    """`requests`, and `tokens` from the input-token limit (OpenAI counts prompt tokens
    against it at admission, as the router does)."""
    headers = {}
    for rate in rates:
        name = {"requests": "requests", "input_tokens": "tokens"}.get(rate.name)
        if name is None:
            continue
        headers[f"x-ratelimit-limit-{name}"] = str(rate.limit)
        headers[f"x-ratelimit-remaining-{name}"] = str(rate.remaining)
        headers[f"x-ratelimit-reset-{name}"] = openai_duration(rate.reset - now)
    return headers


def surpassed(utilization: float) -> float | None:
    return next((t for t in THRESHOLDS if utilization >= t), None)


def unified_headers(standing: BudgetStanding) -> dict[str, str]:
    """A successful answer to a capped key: its standing on the budget the headers describe."""
    utilization = standing.utilization
    threshold = surpassed(utilization)
    status = "allowed_warning" if threshold is not None else "allowed"
    reset = str(int(standing.resets_at))
    headers = {
        _STATUS: status,
        _CLAIM: "overage",
        _OVERAGE_STATUS: status,
        # two decimals, kept below 1 while requests are still allowed
        _UTILIZATION: _hundredths(min(math.floor(utilization * 100), 99)),
        _RESET: reset,
        _OVERAGE_RESET: reset,
    }
    if threshold is not None:
        headers[UNIFIED + "overage-surpassed-threshold"] = f"{threshold:.2f}"
    return headers


_STATUS, _CLAIM, _OVERAGE_STATUS, _UTILIZATION, _RESET, _OVERAGE_RESET = (
    UNIFIED + name for name in ("status", "representative-claim", "overage-status",
                                "overage-utilization", "reset", "overage-reset"))


@lru_cache(maxsize=128)
def _hundredths(value: int) -> str:
    return f"{value / 100:.2f}"


def rejected_headers(standing: BudgetStanding, now: float) -> dict[str, str]:
    """The 429 at the cap. No `representative-claim` or `overage-status`: without them the
    client prints the error message as it is (gateway protocol)."""
    reset = str(int(standing.resets_at))
    return {
        "retry-after": str(max(1, math.ceil(standing.resets_at - now))),
        UNIFIED + "status": "rejected",
        UNIFIED + "reset": reset,
        UNIFIED + "overage-reset": reset,
        UNIFIED + "overage-utilization": "1",
        UNIFIED + "overage-surpassed-threshold": "1",
        UNIFIED + "overage-period": standing.period,
        UNIFIED + "overage-disabled-reason": "org_spend_cap_reached",
    }


def fetch_error_headers() -> dict[str, str]:
    """`state.on_error: closed` and the store cannot be read (gateway protocol)."""
    return {UNIFIED + "overage-disabled-reason": "fetch_error"}
