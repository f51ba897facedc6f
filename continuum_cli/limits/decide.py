"""Admission result -> a decision: admitted with its headers, or the 429 to answer.

Pure: takes the plan, the store's answer and the time; returns data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from continuum_cli.limits.budgets import BudgetStanding, budget_standings, fullest
from continuum_cli.limits.headers import RateStanding, rejected_headers
from continuum_cli.limits.plan import Plan
from continuum_cli.state.counters import Admission, CheckState

_WINDOW_ROLES = ("requests", "input_tokens", "output_tokens")
_UNITS = {"requests": "requests", "input_tokens": "input tokens",
          "output_tokens": "output tokens", "concurrent": "concurrent requests"}


@dataclass(slots=True)  # built once per request: a frozen dataclass costs three times more
class Decision:
    admitted: bool
    rates: tuple[RateStanding, ...] = ()
    budgets: tuple[BudgetStanding, ...] = ()
    # a refusal: "rate_limit" or "billing", its message, retry-after and extra headers
    refusal: str | None = None
    message: str = ""
    retry_after: int | None = None
    should_retry: bool = True
    headers: dict[str, str] = field(default_factory=dict)


def decide(plan: Plan, admission: Admission, caller_name: str) -> Decision:
    now = plan.now
    pairs = list(zip(plan.roles, plan.checks, admission.states, strict=True))
    rates = tuple(_rate(role, check.limit, check.amount, check.span, state, now,
                        admission.admitted)
                  for role, check, state in pairs if role in _WINDOW_ROLES)
    budget_used = [s.used + (c.amount if admission.admitted else 0)
                   for r, c, s in pairs if r == "budget"]
    standings = tuple(budget_standings(plan.budgets, budget_used, now))
    if admission.admitted:
        return Decision(True, rates, standings)
    if any(s.exhausted for s in standings):
        return _billing(standings, caller_name, now, rates)
    return _rate_limited(pairs, caller_name, now, rates, standings)


def _rate(role: str, limit: float, amount: float, span: float, state: CheckState,
          now: float, admitted: bool) -> RateStanding:
    used = state.used + (amount if admitted else 0)
    newest = now if admitted and amount > 0 else state.newest
    reset = newest + span if newest else now
    return RateStanding(role, int(limit), max(0, int(limit - used)), reset)


def _billing(standings: tuple[BudgetStanding, ...], name: str, now: float,
             rates: tuple[RateStanding, ...]) -> Decision:
    blocked = fullest(standings)
    assert blocked is not None
    headers = rejected_headers(blocked, now)
    return Decision(False, rates, standings, "billing", budget_message(blocked, name),
                    int(headers["retry-after"]), False, headers)


def budget_message(standing: BudgetStanding, name: str) -> str:
    """One sentence: what ran out, when it resets, what to do (the client prints it as is)."""
    what = (f"{_amount(standing.cap)} tokens" if standing.kind == "tokens"
            else _dollars(standing.cap))
    reset = datetime.fromtimestamp(standing.resets_at, UTC)
    when = f"{reset:%b} {reset.day} {reset:%H:%M} UTC"
    return (f"{standing.period} budget of {what} reached for key {name} · resets {when} · "
            "wait until then or ask the router's admin to raise the budget")


def _dollars(value: float) -> str:
    # cents, unless the cap is below a cent (a test budget of $0.001 is not "$0.00")
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.6f}".rstrip("0")


def _amount(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def _rate_limited(pairs: list, name: str, now: float, rates: tuple[RateStanding, ...],
                  standings: tuple[BudgetStanding, ...]) -> Decision:
    failing = [(role, check, state) for role, check, state in pairs if not state.ok]
    never = [(role, check) for role, check, state in failing if math.isinf(state.free_at)]
    if never:
        role, check = never[0]
        message = (f"this request needs {int(check.amount):,} {_UNITS[role]} but key {name} "
                   f"may use {int(check.limit):,} per minute; send a smaller request")
        return Decision(False, rates, standings, "rate_limit", message, 60, False,
                        {"retry-after": "60"})
    # a concurrency slot frees when some request ends: unknown, so look again soon
    free_at = max(now + 1 if role == "concurrent" else state.free_at
                  for role, _, state in failing)
    retry = max(1, math.ceil(free_at - now))
    role, check, _ = failing[0]
    per = "at once" if role == "concurrent" else "per minute"
    message = (f"rate limit reached for key {name}: {int(check.limit):,} {_UNITS[role]} "
               f"{per}; retry in {retry} s")
    return Decision(False, rates, standings, "rate_limit", message, retry, True,
                    {"retry-after": str(retry)})
