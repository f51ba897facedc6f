"""The per-request shell of limits and the ledger.

`ContinuumApp` starts a `Meter` for every model request; the handler calls `admit` once it
knows the route and the input tokens (before anything goes upstream); the app attaches the
headers, watches the answer leave, and when it ends settles the counters and appends the
ledger record -- in the background, after the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from continuum_cli.auth import Caller
from continuum_cli.errors import ApiError, BudgetExhausted, RateLimited
from continuum_cli.limits import gate
from continuum_cli.limits.budgets import fullest
from continuum_cli.limits.decide import Decision
from continuum_cli.limits.headers import (
    anthropic_rate_headers,
    openai_rate_headers,
    unified_headers,
)
from continuum_cli.limits.plan import Plan, admission_plan, read_only, settlement
from continuum_cli.limits.pricing import cost_usd, price_for
from continuum_cli.state.counters import Settlement
from continuum_cli.usage.observe import Counts, UsageObserver

log = logging.getLogger("continuum.usage")
# a request's id in the store (its window entries and concurrency lease): unique across
# replicas by the process's random prefix, and cheaper than a uuid4 per request
_PROCESS_ID = os.urandom(8).hex()
_SEQUENCE = itertools.count()


def _new_process_id() -> None:
    global _PROCESS_ID
    _PROCESS_ID = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_process_id)  # a forked child is another process


def request_id() -> str:
    return f"{_PROCESS_ID}{next(_SEQUENCE):x}"


METERED = frozenset({"/anthropic/v1/messages", "/v1/messages", "/v1/chat/completions"})
CLIENT_GONE = 499  # the ledger's status of a request whose client left before the answer


class Meter:
    def __init__(self, state: Any, caller: Caller, path: str, flavor: str,
                 ledger: bool = True) -> None:
        self.state = state
        self.ledger = ledger  # a model request (recorded); else only its headers
        self.caller = caller
        self.path = path
        self.flavor = flavor
        self.ts = time.time()
        self.started = time.monotonic()
        self.route: Any = None
        self.model: str | None = None
        self.input_tokens = 0
        self.plan: Plan | None = None
        self.headers: dict[str, str] = {}
        self.limited = False
        self.checked = False  # limits were checked (admission ran, or a peek)
        self._pending: tuple[Plan, gate.PendingAdmission] | None = None
        self._active = False  # counted in the settler's `active`
        self._done = False

    async def admit(self, route: Any, input_tokens: int) -> None:
        """Check the caller's limits and budgets; raise the 429 when over."""
        self.begin(route, input_tokens)
        await self.admitted()

    def begin(self, route: Any, input_tokens: int) -> None:
        """Start checking the caller's limits and budgets: the store call leaves now (Redis),
        and `admitted` waits for its answer -- the request is translated meanwhile."""
        self.route, self.model, self.input_tokens = route, route.requested, input_tokens
        if not self.caller.metered:
            return
        self.checked = True
        price = price_for(self.state.settings.pricing, route.upstream_model, route.requested)
        if price is None and any(b.cost_usd is not None for b in self.caller.budgets):
            _warn_unpriced(route.upstream_model)
        plan = admission_plan(self.caller, input_tokens, cost_usd(price, input_tokens, 0),
                              time.time(), request_id())
        if not self._active:
            self._active = True
            gate.settler_of(self.state).active += 1
        self._pending = (plan, gate.begin_admit(self.state, plan, self.caller))

    async def admitted(self) -> None:
        """Wait for what `begin` started (nothing if done); raise the 429 when over. Called
        before anything goes upstream."""
        if self._pending is None:
            return
        plan, pending = self._pending
        try:
            decision = await pending.decision()
        except asyncio.CancelledError:
            raise  # the client left while the store answered: `abandoned` settles it
        except BaseException:
            self._pending = None  # answered (a refusal, the store unavailable)
            raise
        self._pending = None
        if decision is None:  # store unavailable, on_error: open
            return
        self.headers = self._headers(decision)
        if decision.admitted:
            self.plan = plan
            return
        self.limited = True
        raise self._refusal(decision)

    def abandoned(self) -> None:
        """The handler was cancelled (the client left). A request whose admission was sent
        but not yet answered is settled as admitted: if the store took a concurrency slot
        for it, the slot is released (if not, releasing is a no-op)."""
        self._drop_pending()
        if self.ledger:
            self.finish(CLIENT_GONE, Counts(), aborted=True)

    def _drop_pending(self) -> None:
        if self._pending is not None:
            plan, pending = self._pending
            self._pending = None
            if pending.abandon():
                self.plan = plan

    def _headers(self, decision: Decision) -> dict[str, str]:
        headers = self._rate_headers(decision)
        if self.flavor != "anthropic":
            return headers
        standing = fullest(decision.budgets)
        if decision.admitted and standing is not None:
            headers.update(unified_headers(standing))
        return headers

    def _refusal(self, decision: Decision) -> ApiError:
        extra = dict(decision.headers)
        if self.flavor != "anthropic":  # the unified set is Claude Code's, not OpenAI's
            extra = {"retry-after": extra["retry-after"]}
        cls = BudgetExhausted if decision.refusal == "billing" else RateLimited
        exc = cls(decision.message, headers={**self.headers, **extra})
        if not decision.should_retry:
            exc.should_retry = False
        return exc

    async def peek(self) -> None:
        """An answer that was not admitted (another route, or a failure before admission)
        still carries the key's per-minute standing: read it, counting nothing."""
        if self.checked or self.caller.limits is None:
            return
        self.checked = True
        plan = read_only(admission_plan(self.caller, 0, 0, time.time(), request_id()))
        decision = await gate.peek(self.state, plan, self.caller)
        if decision is not None:
            self.headers = self._rate_headers(decision)

    def _rate_headers(self, decision: Decision) -> dict[str, str]:
        if self.flavor != "anthropic":
            return openai_rate_headers(decision.rates, time.time())
        return anthropic_rate_headers(decision.rates)

    # -- the answer ----------------------------------------------------------------------
    async def attach(self, response: Any) -> Any:
        """Add the headers and watch the answer leave (JSON body or stream)."""
        await self.admitted()  # a route that answered without going upstream
        await self.peek()
        for name in [n for n in response.headers if n.lower().startswith(
                "anthropic-ratelimit-")]:
            del response.headers[name]  # an upstream's own limits are not this key's
        response.headers.update(self.headers)
        if not self.ledger:
            return response
        response.log["key"] = self.caller.name  # the access log's `key` field
        observer = UsageObserver(self._scale())
        if hasattr(response, "chunks"):
            self._watch_stream(response, observer)
        else:  # counted at the loop's next turn, once the answer is on its way
            asyncio.get_running_loop().call_soon(self._finish_body, response, observer)
        return response

    def _finish_body(self, response: Any, observer: UsageObserver) -> None:
        try:
            observer.feed_body(response.body)
        except Exception:  # an odd usage object: the request is still settled, uncounted
            log.exception("reading the usage of an answer failed")
        finally:
            self.finish(response.status, observer.result())

    async def failed(self, exc: BaseException) -> None:
        status = getattr(exc, "status", 500)
        if self._pending is not None:  # failed before the check's answer was needed
            if self._pending[1].sent is not None:
                with contextlib.suppress(ApiError):
                    await self.admitted()  # it may have counted: know, and settle it
            else:
                self._drop_pending()  # never sent: nothing counted
        if not self.limited:
            await self.peek()
        if isinstance(exc, ApiError):
            for name, value in self.headers.items():
                exc.headers.setdefault(name, value)
        if self.ledger:
            self.finish(status, Counts())

    def _watch_stream(self, response: Any, observer: UsageObserver) -> None:
        complete = False
        chunks, on_close = response.chunks, response.on_close

        async def observed() -> AsyncIterator[bytes]:
            nonlocal complete
            try:
                async for chunk in chunks:
                    observer.feed(chunk)
                    yield chunk
                complete = True
            finally:
                with contextlib.suppress(Exception):
                    await chunks.aclose()

        async def closed() -> None:
            try:
                if on_close is not None:
                    await on_close()
            finally:
                self.finish(response.status, observer.result(), aborted=not complete)

        response.chunks, response.on_close = observed(), closed

    def _scale(self) -> float | None:
        if self.route is None:
            return None
        return self.state.usage_scale(self.route.backend)

    def finish(self, status: int, counts: Counts, aborted: bool = False) -> None:
        """Settle the counters and append the ledger record, in the background."""
        if self._done:
            return
        self._done = True
        settler = gate.settler_of(self.state)
        if self._active:
            self._active = False
            settler.active -= 1
        done = Settlement(records=[self.record(status, counts, aborted)])
        if self.plan is not None:
            out_cost = cost_usd(self._price(), 0, counts.output_tokens)
            done.adds, done.releases = settlement(self.plan, counts.output_tokens, out_cost)
        settler.add(done)

    def _price(self) -> Any:
        if self.route is None:
            return None
        return price_for(self.state.settings.pricing, self.route.upstream_model,
                         self.route.requested)

    def record(self, status: int, counts: Counts, aborted: bool) -> dict[str, Any]:
        """The ledger record: never the key, only its name."""
        route = self.route
        input_tokens = counts.input_tokens or self.input_tokens
        cost = cost_usd(self._price(), input_tokens, counts.output_tokens, counts.cached_tokens)
        record: dict[str, Any] = {
            "ts": round(self.ts, 3), "key": self.caller.name, "route": self.path,
            "model": self.model, "served_model": route.upstream_model if route else None,
            "backend": route.backend.name if route else None,
            "input_tokens": input_tokens, "output_tokens": counts.output_tokens,
            "cached_tokens": counts.cached_tokens, "web_searches": counts.web_searches,
            "status": status, "duration_ms": round((time.monotonic() - self.started) * 1000, 1),
            "cost_usd": round(cost, 8) if cost is not None else None,
        }
        if self.limited:
            record["limited"] = True
        if aborted:
            record["aborted"] = True
        return record


async def admit(request: Any, route: Any, input_tokens: int) -> None:
    """The handlers' hook, before anything goes upstream: a no-op for unmetered requests."""
    meter = request.context.get("meter") if request.context is not None else None
    if meter is not None:
        await meter.admit(route, input_tokens)


def begin(request: Any, route: Any, input_tokens: int) -> None:
    """`admit` in two steps: start the check now, and `admitted` before anything goes
    upstream (the work in between overlaps the state store's round trip)."""
    meter = request.context.get("meter") if request.context is not None else None
    if meter is not None:
        meter.begin(route, input_tokens)


async def admitted(request: Any) -> None:
    meter = request.context.get("meter") if request.context is not None else None
    if meter is not None:
        await meter.admitted()


_UNPRICED_WARNED: set[str] = set()


def _warn_unpriced(model: str) -> None:
    """A cost budget cannot count a model without a price: say so once per model."""
    if model not in _UNPRICED_WARNED:
        _UNPRICED_WARNED.add(model)
        log.warning("no price for model %s under `pricing`: its requests do not count toward "
                    "cost_usd budgets", model)


def start(state: Any, request: Any, path: str, flavor: str) -> Meter | None:
    """The meter of one request: model requests are admitted and recorded; any other API
    answer to a caller with limits gets its per-minute headers. None: nothing to do."""
    caller = request.caller
    if path in METERED:
        meter = request.context["meter"] = Meter(state, caller, path, flavor)
        return meter
    api = path.startswith("/anthropic/") or path.startswith("/v1/")
    if api and caller is not None and caller.limits is not None:
        return Meter(state, caller, path, flavor, ledger=False)
    return None


def serving(request: Any, route: Any) -> None:
    """The handlers' hook per attempt: the backend actually serving (after a failover, not
    the first one tried), for the ledger and the price."""
    meter = request.context.get("meter") if request.context is not None else None
    if meter is not None:
        meter.route = route


async def drain(state: Any, timeout: float = 5.0) -> None:
    """Send the settlements still pending (at shutdown, before the store closes)."""
    settler = getattr(state.store, "settler", None)
    if settler is not None:
        await settler.drain(timeout)
