"""One request tried across the backends of its model, then across fallback models.

The async shell around the balancer: `send` picks a ready backend, runs `attempt` on it and,
when the attempt fails before anything was sent to the client with an error that says the
backend could not take the request (`classify.failover_reason`), moves to the next ready
backend, at most `routing.max_attempts` backends in all. When no backend of the model is
ready, the `routing.fallbacks` models are tried in order. When nothing is ready at all, the
backends are tried in file order anyway (the health state may be a few seconds old), so the
client gets the real error of the last attempt, in the route's envelope.

`attempt(route, ticket)` gets the route bound to one backend. An attempt that answers with a
stream calls `ticket.hold()` and closes the ticket when the stream ends (`watched`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from continuum_cli.config.models import Backend
from continuum_cli.errors import ApiError
from continuum_cli.fleet.classify import failover_reason
from continuum_cli.fleet.fleet import Fleet, Ticket
from continuum_cli.routing import Route, fallback_models

log = logging.getLogger("continuum.fleet")
T = TypeVar("T")
Attempt = Callable[[Route, Ticket], Awaitable[T]]
Resolver = Callable[[str], "Route | None"]


async def send(fleet: Fleet, route: Route, attempt: Attempt[T], *,
               fallback: Resolver | None = None) -> T:
    """Run `attempt` on the best backend for `route`, failing over as the rules allow."""
    routing = fleet.settings.routing
    if not route.candidates and not (routing.fallbacks and fallback_models(route, fleet.settings)):
        return await _once(fleet, route, attempt)  # one backend, nothing to choose
    return await _Failover(fleet, route, attempt, fallback).run()


async def _once(fleet: Fleet, route: Route, attempt: Attempt[T]) -> T:
    ticket = fleet.begin(route.backend)
    return await _run(ticket, route, attempt)


async def _run(ticket: Ticket, route: Route, attempt: Attempt[T]) -> T:
    try:
        result = await attempt(route, ticket)
    except ApiError as exc:
        ticket.done(exc)
        raise
    except BaseException:
        ticket.release()
        raise
    if not ticket.held:
        ticket.done()
    return result


class _Failover:
    def __init__(self, fleet: Fleet, route: Route, attempt: Attempt[T],
                 fallback: Resolver | None) -> None:
        self.fleet, self.route, self.attempt, self.fallback = fleet, route, attempt, fallback
        self.tried: list[str] = []
        self.fallbacks = list(fallback_models(route, fleet.settings))
        self.last_resort = False

    async def run(self) -> T:
        last: ApiError | None = None
        previous: tuple[str, str] | None = None  # (backend, why it was left)
        for _ in range(self.fleet.settings.routing.max_attempts):
            backend = self._next(first=last is None)
            if backend is None:
                break
            if previous is not None:
                log.warning("failover: %s -> %s (%s)", previous[0], backend.name, previous[1])
                self.fleet.hooks.failover(previous[0])
            self.tried.append(backend.name)
            try:
                return await _run(self.fleet.begin(backend), self.route.on(backend),
                                  self.attempt)
            except ApiError as exc:
                why = failover_reason(exc, self._another_ready())
                if why is None:
                    raise
                last, previous = exc, (backend.name, why)
        if last is None:  # no backend at all (cannot happen with a resolved route)
            raise RuntimeError("route without backends")
        raise last

    def _next(self, first: bool) -> Backend | None:
        backend = self.fleet.choose(self.route.backends, self.tried)
        while backend is None and not self.last_resort and self._to_fallback():
            backend = self.fleet.choose(self.route.backends, self.tried)
        if backend is None and (first or self.last_resort):
            # nothing is ready: try the model's backends in file order anyway; the client
            # then gets the real error (and a backend back up early is used at once)
            self.last_resort = True
            backend = next((b for b in self.route.backends if b.name not in self.tried), None)
        return backend

    def _to_fallback(self) -> bool:
        """Move to the first fallback model that has a ready backend."""
        while self.fallbacks and self.fallback is not None:
            model = self.fallbacks.pop(0)
            route = self.fallback(model)
            if route is None or not self.fleet.any_routable(route.backends, self.tried):
                continue
            log.warning("fallback: %s -> %s (no ready backend)", self.route.upstream_model,
                        model)
            if self.tried:
                self.fleet.hooks.failover(self.tried[-1])
            self.route = Route(route.backend, route.upstream_model, self.route.requested,
                               self.route.rule, route.candidates)
            return True
        return False

    def _another_ready(self) -> bool:
        return self.fleet.any_routable(self.route.backends, self.tried) or any(
            r is not None and self.fleet.any_routable(r.backends, self.tried)
            for r in map(self.fallback or (lambda _: None), self.fallbacks))


async def watched(chunks: AsyncIterator[T], ticket: Ticket) -> AsyncIterator[T]:
    """A stream's items, closing `ticket` with how the stream ended."""
    try:
        async for item in chunks:
            yield item
    except ApiError as exc:
        ticket.done(exc)
        raise
    except BaseException:
        ticket.release()
        raise
    ticket.done()
