"""The backends of the running config as the router sees them, and a ticket per request.

A `Ticket` is taken for every request sent to a backend and closed with what happened; it
holds the `BackendState` it started with, so a request that outlives a reload (`reconfigure`)
still counts against the backend it was sent to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from continuum_cli.config.models import Backend, Settings
from continuum_cli.fleet import classify
from continuum_cli.fleet.balancer import Balancer, Option
from continuum_cli.fleet.state import READY, UNKNOWN, BackendState

log = logging.getLogger("continuum.fleet")


class FleetHooks:
    """Called on fleet events; the metrics package sets its own (no-ops by default)."""

    def failover(self, backend: str) -> None:
        """A request left `backend` for another one (or for a fallback model)."""

    def upstream_error(self, backend: str, kind: str) -> None:
        """A request to `backend` failed; `kind` is `classify.error_kind` (bounded)."""


class Ticket:
    """One request on one backend. Close it exactly once: `done(exc)` with the outcome,
    or `release()` when the client went away before the backend was judged."""

    __slots__ = ("fleet", "state", "started", "closed", "held")

    def __init__(self, fleet: Fleet, state: BackendState, started: float) -> None:
        self.fleet, self.state, self.started, self.closed = fleet, state, started, False
        self.held = False

    def hold(self) -> None:
        """The attempt answered with a stream and closes the ticket when it ends."""
        self.held = True

    def done(self, exc: BaseException | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        now, state = self.fleet.clock(), self.state
        ejected = state.ejected_until
        if exc is None:
            state.succeeded(now, now - self.started)
        else:
            self._judge(now, exc)
        if state.ejected_until != ejected:
            _log_ejection(state, now, ejected)
        self.fleet.closed(state)

    def _judge(self, now: float, exc: BaseException) -> None:
        kind = classify.outcome(exc)
        error_kind = classify.error_kind(exc)
        if error_kind is not None:
            self.fleet.hooks.upstream_error(self.state.name, error_kind)
        if kind == classify.FAILURE:
            self.state.failed(now, classify.describe(exc))
        elif kind == classify.LOADING:
            self.state.loading(now, classify.describe(exc))
        elif kind == classify.ANSWERED:
            self.state.answered(now)
        else:
            self.state.released()

    def release(self) -> None:
        if not self.closed:
            self.closed = True
            self.state.released()
            self.fleet.closed(self.state)


class Fleet:
    """Per-backend state of the running config, and the balancer that picks among them."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.hooks: FleetHooks = FleetHooks()
        self.states: dict[str, BackendState] = {}
        self._draining: dict[int, BackendState] = {}
        self.on_drained: Callable[[BackendState], None] | None = None
        self.checker: Any = None  # HealthChecker, told about every reconfigure
        self.settings = settings
        self.balancer = Balancer(settings.routing.strategy)
        self._apply(settings)

    # -- config ------------------------------------------------------------------------------

    def reconfigure(self, settings: Settings) -> tuple[list[str], list[str]]:
        """Take a new config: unchanged backends keep their state; new ones start `unknown`
        (not routable until an active check says ready); removed ones leave the table and
        finish what is in flight (`on_drained` is called after their last request).
        Returns (added, removed) backend names."""
        old = self.states
        added, removed = self._apply(settings)
        for name in removed:
            state = old[name]
            state.removed = True
            if state.in_flight:
                self._draining[id(state)] = state
            elif self.on_drained is not None:
                self.on_drained(state)
        self.balancer = _balancer(self.balancer, settings.routing.strategy, set(removed))
        if self.checker is not None:
            self.checker.reconfigure(settings)
        return added, removed

    def _apply(self, settings: Settings) -> tuple[list[str], list[str]]:
        now, states = self.clock(), {}
        for backend in settings.backends:
            state = self.states.get(backend.name)
            if state is None or _moved(self.settings, settings, backend.name):
                state = BackendState(backend.name, since=now)
            state.weight = backend.weight
            states[backend.name] = state
        added = [n for n in states if self.states.get(n) is not states[n]]
        removed = [n for n, s in self.states.items() if states.get(n) is not s]
        self.states, self.settings = states, settings
        return added, removed

    def closed(self, state: BackendState) -> None:
        if state.removed and not state.in_flight and self._draining.pop(id(state), None):
            if self.on_drained is not None:
                self.on_drained(state)

    # -- choosing ----------------------------------------------------------------------------

    def choose(self, backends: Sequence[Backend], tried: Iterable[str] = ()) -> Backend | None:
        """A routable backend among `backends` not in `tried`, by the routing strategy."""
        now, skip = self.clock(), tried if isinstance(tried, (set, list, tuple)) else set(tried)
        usable, options = [], []
        for backend in backends:
            state = self.states.get(backend.name)
            if state is not None and backend.name not in skip and state.routable(now):
                usable.append(backend)
                options.append(Option(backend.name, state.weight, state.in_flight))
        if len(usable) < 2:
            return usable[0] if usable else None
        return usable[self.balancer.pick(options)]  # type: ignore[index]

    def any_routable(self, backends: Sequence[Backend], tried: Iterable[str] = ()) -> bool:
        now, skip = self.clock(), set(tried)
        return any(b.name not in skip and self._routable(b.name, now) for b in backends)

    def _routable(self, name: str, now: float) -> bool:
        state = self.states.get(name)
        return state is not None and state.routable(now)

    def begin(self, backend: Backend) -> Ticket:
        state = self.states.get(backend.name) or self._stray(backend)
        now = self.clock()
        state.begin(now)
        return Ticket(self, state, now)

    def _stray(self, backend: Backend) -> BackendState:
        # a request resolved against a config that a reload has since replaced: counted on
        # a state of its own, which nothing routes to
        state = BackendState(backend.name, removed=True)
        self._draining[id(state)] = state
        return state

    # -- health ------------------------------------------------------------------------------

    def record_check(self, name: str, result: str, detail: str) -> None:
        """An active check's result (ready | loading | down) for a configured backend."""
        state = self.states.get(name)
        if state is None:
            return
        before = state.status(self.clock())
        state.checked_as(self.clock(), result, detail)
        after = state.status(self.clock())
        if after != before:
            level = logging.INFO if after == READY or before == UNKNOWN else logging.WARNING
            log.log(level, "backend %s is %s (%s)", name, after, detail)

    def status(self, name: str) -> str:
        state = self.states.get(name)
        return state.status(self.clock()) if state is not None else "down"

    def backend_rows(self) -> list[tuple[str, str, int]]:
        """(name, status, in_flight) per configured backend, cheap: for metrics scrapes
        (`continuum_backend_up`, `continuum_backend_in_flight`)."""
        now = self.clock()
        return [(s.name, s.status(now), s.in_flight) for s in self.states.values()]

    def snapshot(self) -> list[dict[str, Any]]:
        """Every configured backend's state, for /health, `continuum status` and metrics."""
        now, wall = self.clock(), time.time()
        return [_entry(state, now, wall) for state in self.states.values()]


def _log_ejection(state: BackendState, now: float, before: float | None) -> None:
    if state.ejected_until is None:
        log.info("backend %s is ready again (the probe request succeeded)", state.name)
    else:
        log.warning("backend %s is down: ejected for %gs after %d failures in a row (%s)",
                    state.name, round(state.ejected_until - now, 1), state.failures,
                    state.last_error)


def _entry(state: BackendState, now: float, wall: float) -> dict[str, Any]:
    def at(t: float | None) -> str | None:
        return None if t is None else _iso(wall - (now - t))

    p50 = state.p50()
    return {
        "name": state.name, "status": state.status(now), "detail": state.detail,
        "since": at(state.since), "in_flight": state.in_flight, "requests": state.requests,
        "errors": state.errors, "consecutive_failures": state.failures,
        "latency_p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "last_error": state.last_error, "last_error_at": at(state.last_error_at),
        "ejected_for": (round(state.ejected_until - now, 1)
                        if state.ejected_until is not None and state.ejected_until > now
                        else None),
        "weight": state.weight,
    }


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _moved(old: Settings, new: Settings, name: str) -> bool:
    """A backend whose address or type changed is a new backend under the same name."""
    before = next((b for b in old.backends if b.name == name), None)
    after = next((b for b in new.backends if b.name == name), None)
    if before is None or after is None:
        return True
    return (before.url, before.type, before.model_path) != (after.url, after.type,
                                                            after.model_path)


def _balancer(old: Balancer, strategy: str, removed: set[str]) -> Balancer:
    if old.strategy != strategy:
        return Balancer(strategy)
    old.forget(removed)
    return old
