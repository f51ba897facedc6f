"""The I/O shell of limits: one store round trip to admit a request, one to settle it.

`state.on_error` decides what a store failure means on the request path: `open` serves
(unmetered) and logs an error at most every 30 s; `closed` refuses with 429,
`x-should-retry: false` and `anthropic-ratelimit-unified-overage-disabled-reason:
fetch_error` (gateway protocol).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from continuum_cli.auth import Caller
from continuum_cli.config.models import Budget
from continuum_cli.errors import RateLimited, StoreUnavailable
from continuum_cli.limits.budgets import BudgetStanding, budget_key, budget_standings
from continuum_cli.limits.decide import Decision, decide
from continuum_cli.limits.headers import fetch_error_headers
from continuum_cli.limits.plan import Plan
from continuum_cli.state.counters import Admission, Settlement

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


# Settlements of finished requests wait at most this long for the next admission to carry
# them (one round trip per request); alone, they go in batches.
FLUSH_AFTER = 0.02
MAX_BATCH = 256  # records per batch
MAX_BACKLOG = 10_000  # records kept while the store is unavailable (oldest dropped first)
SETTLE_TIMEOUT = 5.0  # a batch is not on any request's path


class Settler:
    """Output tokens, budget amounts, lease releases and ledger records of finished requests,
    on their way to the store: they travel with the next admission from this router (so a
    request that follows a finished one on the same router sees its lease released and its
    tokens counted), or on their own after `FLUSH_AFTER`."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.pending = Settlement()
        self.active = 0  # requests of this router between admission and settlement
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Future[None]] = set()

    @property
    def idle(self) -> bool:
        return not self.pending and not self._sending

    def add(self, settlement: Settlement) -> None:
        self.pending.extend(settlement)
        if len(self.pending.records) >= MAX_BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)

    def take(self) -> Settlement:
        """Everything pending."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        taken, self.pending = self.pending, Settlement()
        return taken

    def take_counts(self) -> Settlement:
        """What the next admission must see (added tokens, released leases), to travel with
        it. Ledger records stay for the batch: nothing on the request path waits for them,
        and with SQLite each one written in the admission's transaction is one more page
        its commit writes."""
        if not self.pending.records:
            return self.take()
        taken = Settlement(self.pending.adds, self.pending.releases)
        self.pending = Settlement(records=self.pending.records)
        return taken

    def give_back(self, settlement: Settlement) -> None:
        """A send failed: keep it for the next try (the newest `MAX_BACKLOG` records)."""
        settlement.extend(self.pending)
        settlement.records = settlement.records[-MAX_BACKLOG:]
        settlement.adds = settlement.adds[-MAX_BACKLOG:]
        settlement.releases = settlement.releases[-MAX_BACKLOG:]
        self.pending = settlement
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(1.0, self.flush)

    def flush(self) -> None:
        taken = self.take()
        if taken:
            task = asyncio.ensure_future(self._send(taken))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, settlement: Settlement) -> None:
        try:
            await self.store.settle(settlement, time.time(), timeout=SETTLE_TIMEOUT)
        except StoreUnavailable as exc:
            errors_of(self.store).report("recording usage", exc,
                                         "keeping it to send again")
            self.give_back(settlement)

    async def drain(self, timeout: float = 5.0) -> None:
        """Send everything now and wait (at shutdown, before the store closes)."""
        self.flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=timeout)


def settler_of(state: Any) -> Settler:
    """The router's settler. It belongs to the store, which every config generation (a hot
    reload builds a new AppState) shares, so nothing pending is left behind by a reload."""
    settler = getattr(state.store, "settler", None)
    if settler is None:
        settler = state.store.settler = Settler(state.store)
    state.settler = settler
    return settler


ALONE_MAX_TOKENS = 16_000  # serialising a larger request for its upload may take milliseconds


class PendingAdmission:
    """An admission `begin_admit` started. `decision()` waits for it; `abandon()` is for a
    request dropped before it knew the answer (its client left, or it failed first)."""

    def __init__(self, state: Any, plan: Plan, caller: Caller) -> None:
        self.state, self.plan, self.caller = state, plan, caller
        self.settler = settler_of(state)
        self.carried = self.settler.take_counts()
        self.sent: Awaitable[Admission] | None = None  # the store call already under way
        self.failure: StoreUnavailable | None = None
        soon = getattr(state.store, "admit_soon", None)
        if soon is not None:
            try:
                self.sent = soon(list(plan.checks), plan.now, self.carried)
            except StoreUnavailable as exc:
                self.failure = exc

    async def decision(self) -> Decision | None:
        """The decision, or None when the store failed and `on_error` is open."""
        try:
            if self.failure is not None:
                raise self.failure
            pending = self.sent
            if pending is None:  # from here on it may be applied, whatever becomes of us
                pending = self.sent = self.state.store.admit(
                    list(self.plan.checks), self.plan.now, self.carried,
                    alone=self._alone())
            admission = await pending
        except StoreUnavailable as exc:
            return await _unavailable(self.state, self.settler, self.carried, exc)
        return decide(self.plan, admission, self.caller.name)

    def _alone(self) -> bool:
        """Whether the store may finish writing after it answers (SQLite holds the write lock
        until the loop's next turn): only for a small request (its work before it waits on
        the upstream is short) with no other request under way on this router (the turn
        would wait for theirs). Other replicas sharing the file wait for that lock."""
        return (self.settler.active <= 1 and getattr(self.state, "in_flight", 0) <= 1
                and self.plan.input_tokens <= ALONE_MAX_TOKENS)

    def abandon(self) -> bool:
        """Drop the admission. True when its store call had been sent and may have been
        applied (Redis runs a script it has received): the caller then settles the request
        as admitted -- a lease it may hold is released. Otherwise nothing was counted, and
        what the call was to carry goes back to the settler."""
        if self.sent is None:
            self.settler.give_back(self.carried)
            return False
        close = getattr(self.sent, "close", None)
        if close is not None:  # a coroutine nobody will await
            close()
        return True


def begin_admit(state: Any, plan: Plan, caller: Caller) -> PendingAdmission:
    """`admit`, started now: a store that can (Redis) sends its call at once, so the request's
    other work overlaps the round trip."""
    return PendingAdmission(state, plan, caller)


async def admit(state: Any, plan: Plan, caller: Caller) -> Decision | None:
    """The decision for `plan`, or None when the store failed and `on_error` is open. The
    router's pending settlements travel with it."""
    return await begin_admit(state, plan, caller).decision()


async def _unavailable(state: Any, settler: Settler, carried: Settlement,
                       exc: StoreUnavailable) -> Decision | None:
    settler.give_back(carried)
    if state.settings.state.on_error == "open":
        errors_of(state.store).report("checking limits", exc,
                                      "serving without limits (on_error: open)")
        return None
    errors_of(state.store).report("checking limits", exc,
                                  "refusing requests (on_error: closed)")
    refusal = RateLimited(
        "the router cannot check this key's limits right now (its state store is "
        "unavailable); try again shortly", headers=fetch_error_headers())
    refusal.should_retry = False
    raise refusal from None


async def peek(state: Any, plan: Plan, caller: Caller) -> Decision | None:
    """The standing `plan` (adding nothing) describes, or None when the store fails (the
    answer then goes without headers: a read never refuses anything)."""
    settler = settler_of(state)
    carried = settler.take_counts()
    try:
        admission = await state.store.admit(list(plan.checks), plan.now, carried)
    except StoreUnavailable as exc:
        settler.give_back(carried)
        errors_of(state.store).report("reading limits", exc, "answering without headers")
        return None
    return decide(plan, admission, caller.name)


async def read_budgets(store: Any, caller: Caller, now: float | None = None
                       ) -> list[BudgetStanding]:
    """Each of the caller's budgets now: period, used, cap, utilization, resets_at (raises
    StoreUnavailable)."""
    now = time.time() if now is None else now
    budgets: tuple[Budget, ...] = caller.budgets
    keys = [budget_key(caller.name, b, now)[0] for b in budgets]
    used = await store.counters(keys, now, caller.name) if keys else []
    return budget_standings(budgets, used, now)
