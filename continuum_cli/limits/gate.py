"""The I/O shell of limits: one store round trip to admit a request, one to settle it.

`state.on_error` decides what a store failure means on the request path: `open` serves
(unmetered) and logs an error at most every 30 s; `closed` refuses with 429,
`x-should-retry: false` and `anthropic-ratelimit-unified-overage-disabled-reason:
fetch_error` (gateway protocol).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from continuum_cli.auth import Caller
from continuum_cli.config.models import Budget, StateSettings
from continuum_cli.errors import RateLimited, StoreUnavailable
from continuum_cli.limits.budgets import BudgetStanding, budget_key, budget_standings
from continuum_cli.limits.decide import Decision, decide
from continuum_cli.limits.headers import fetch_error_headers
from continuum_cli.limits.plan import Plan
from continuum_cli.state.counters import Check

log = logging.getLogger("continuum.limits")
LOG_EVERY = 30.0  # seconds between two "store unavailable" errors in the log


class StoreErrorLog:
    """Logs a store failure at most every `LOG_EVERY` seconds, with how many it skipped."""

    def __init__(self) -> None:
        self.last = -LOG_EVERY
        self.skipped = 0

    def report(self, what: str, exc: StoreUnavailable, action: str) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY:
            self.skipped += 1
            return
        more = f" ({self.skipped} more since the last report)" if self.skipped else ""
        log.error("state store unavailable while %s: %s; %s%s", what, exc.message, action,
                  more)
        self.last, self.skipped = now, 0


def errors_of(store: Any) -> StoreErrorLog:
    """The error log of one store (one router): two routers in a process log separately."""
    found = getattr(store, "error_log", None)
    if found is None:
        found = store.error_log = StoreErrorLog()
    return found


async def admit(store: Any, settings: StateSettings, plan: Plan, caller: Caller
                ) -> Decision | None:
    """The decision for `plan`, or None when the store failed and `on_error` is open."""
    try:
        admission = await store.admit(list(plan.checks), plan.now)
    except StoreUnavailable as exc:
        if settings.on_error == "open":
            errors_of(store).report("checking limits", exc,
                                    "serving without limits (on_error: open)")
            return None
        errors_of(store).report("checking limits", exc, "refusing requests (on_error: closed)")
        refusal = RateLimited(
            "the router cannot check this key's limits right now (its state store is "
            "unavailable); try again shortly", headers=fetch_error_headers())
        refusal.should_retry = False
        raise refusal from None
    return decide(plan, admission, caller.name)


async def settle(store: Any, adds: list[Check], releases: list[tuple[str, str]],
                 record: dict[str, Any] | None, timeout: float) -> None:
    """Add output tokens, release the concurrency lease, append the ledger record."""
    if not adds and not releases and record is None:
        return
    try:
        await store.settle(adds, releases, record, time.time(), timeout=timeout)
    except StoreUnavailable as exc:
        errors_of(store).report("recording usage", exc,
                                "this request's usage is not recorded")


async def read_budgets(store: Any, caller: Caller, now: float | None = None
                       ) -> list[BudgetStanding]:
    """Each of the caller's budgets now: period, used, cap, utilization, resets_at (raises
    StoreUnavailable)."""
    now = time.time() if now is None else now
    budgets: tuple[Budget, ...] = caller.budgets
    keys = [budget_key(caller.name, b, now)[0] for b in budgets]
    used = await store.counters(keys, now) if keys else []
    return budget_standings(budgets, used, now)
