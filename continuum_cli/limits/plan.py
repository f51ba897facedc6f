"""Which store checks a request needs, and what to add when its answer ends.

Per-minute limits are sliding windows of 60 s (exact: 60 requests per minute means no 61st
inside any 60 s), `concurrent_requests` is a lease per request, a budget is a counter per
calendar period. Input tokens (the router's own count) are added at admission; output tokens
when the answer ends (`settlement`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

from continuum_cli.auth import Caller
from continuum_cli.config.models import Budget
from continuum_cli.limits.budgets import budget_key
from continuum_cli.state.counters import Check

WINDOW = 60.0  # seconds: the limits are per minute
# a replica that dies mid-request frees its concurrency slots after this long
LEASE_SECONDS = 900.0


@dataclass(slots=True)  # one per request: a frozen dataclass costs three times more to build
class Plan:
    checks: tuple[Check, ...]
    roles: tuple[str, ...]  # requests | input_tokens | output_tokens | concurrent | budget
    budgets: tuple[Budget, ...]  # one per "budget" role, in order
    request_id: str
    now: float
    input_tokens: int = 0  # the router's count, as admitted


def admission_plan(caller: Caller, input_tokens: int, input_cost: float | None, now: float,
                   request_id: str) -> Plan:
    checks: list[Check] = []
    roles: list[str] = []
    limits = caller.limits
    name = caller.name
    if limits is not None:
        for role, limit, kind, amount in (
            ("requests", limits.requests_per_minute, "count", 1),
            ("input_tokens", limits.input_tokens_per_minute, "sum", input_tokens),
            ("output_tokens", limits.output_tokens_per_minute, "sum", 0),
        ):
            if limit is not None:
                checks.append(Check(kind, _key(role, name), limit, WINDOW, amount,
                                    request_id, name))
                roles.append(role)
        if limits.concurrent_requests is not None:
            checks.append(Check("lease", _key("concurrent", name), limits.concurrent_requests,
                                LEASE_SECONDS, 1, request_id, name))
            roles.append("concurrent")
    for budget in caller.budgets:
        key, end = _budget(name, budget.period, budget.tokens, budget.cost_usd, int(now // 3600))
        amount = input_tokens if budget.tokens is not None else (input_cost or 0.0)
        checks.append(Check("counter", key, _cap(budget), end, amount, request_id, name))
        roles.append("budget")
    return Plan(tuple(checks), tuple(roles), tuple(caller.budgets), request_id, now,
                input_tokens)


@lru_cache(maxsize=1024)
def _key(role: str, name: str) -> str:
    return f"{role}:{name}"


@lru_cache(maxsize=1024)
def _budget(name: str, period: str, tokens: int | None, cost: float | None, hour: int
            ) -> tuple[str, float]:
    """budget_key, the same all hour long (every period starts on a whole UTC hour)."""
    return budget_key(name, Budget(period=period, tokens=tokens, cost_usd=cost), hour * 3600)


def _cap(budget: Budget) -> float:
    return float(budget.tokens if budget.tokens is not None else budget.cost_usd or 0)


def settlement(plan: Plan, output_tokens: int, output_cost: float | None
               ) -> tuple[list[Check], list[tuple[str, str]]]:
    """What to add (output tokens to the output window and the budgets) and which
    concurrency lease to release, once the answer has ended."""
    adds: list[Check] = []
    releases: list[tuple[str, ...]] = []
    budgets = iter(plan.budgets)
    for role, check in zip(plan.roles, plan.checks, strict=True):
        if role == "output_tokens" and output_tokens > 0:
            adds.append(Check("sum", check.key, check.limit, check.span, output_tokens,
                              plan.request_id + ":out", check.group))
        elif role == "concurrent":
            releases.append((check.key, plan.request_id, check.group))
        elif role == "budget":
            budget = next(budgets)
            amount = output_tokens if budget.tokens is not None else (output_cost or 0.0)
            if amount > 0:
                adds.append(Check("counter", check.key, check.limit, check.span, amount,
                                  group=check.group))
    return adds, releases


def read_only(plan: Plan) -> Plan:
    """The same checks adding nothing: the standing of every limit, for the headers of an
    answer that was not admitted (a store call with it counts nothing)."""
    checks = tuple(c._replace(amount=0) for c in plan.checks)
    return dataclasses.replace(plan, checks=checks)
