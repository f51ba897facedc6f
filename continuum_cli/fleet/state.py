"""One backend's state as the fleet sees it, and the passive-ejection arithmetic. Pure: every
transition takes `now` (a monotonic clock reading in seconds) and does no I/O.

Passive ejection: 3 consecutive failures (connection refused or reset, timeouts, 5xx) eject
a backend for a cooldown that doubles with each ejection, 5 s, 10 s, 20 s, 40 s, 60 s at most.
When the cooldown has passed, one request is let through as a probe: its success ends the
ejection, its failure ejects again for the next cooldown. A backend that stayed in service for
`COOLDOWN_MAX` after its last ejection starts again from 5 s.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

EJECT_AFTER = 3
COOLDOWN_BASE = 5.0
COOLDOWN_MAX = 60.0
LATENCY_SAMPLES = 512

# what an active check or a request said about a backend
READY, LOADING, DOWN, UNKNOWN = "ready", "loading", "down", "unknown"


def cooldown(level: int) -> float:
    """Seconds a backend stays ejected at its `level`-th ejection in a row (1-based)."""
    return min(COOLDOWN_BASE * 2 ** max(level - 1, 0), COOLDOWN_MAX)


@dataclass
class BackendState:
    name: str
    weight: float = 1.0
    checked: str = UNKNOWN  # the last active check (or request) said: ready|loading|down
    detail: str = "not checked yet"
    since: float = 0.0  # when the public status last changed
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    failures: int = 0  # consecutive
    level: int = 0  # ejections in a row
    ejected_until: float | None = None
    ejection_ended: float | None = None
    probing: bool = False
    last_error: str | None = None
    last_error_at: float | None = None
    removed: bool = False  # dropped from the config; finishes what is in flight
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    # -- what the balancer and /health read ---------------------------------------------

    def status(self, now: float) -> str:
        """The public status: ready | loading | down (ejected backends are down)."""
        if self.ejected_until is not None:
            return DOWN
        if self.checked in (READY, LOADING):
            return self.checked
        return DOWN

    def routable(self, now: float) -> bool:
        """May take the next request: ready, or ejected with the cooldown over and no probe
        already on its way."""
        if self.removed or self.checked != READY:
            return False
        if self.ejected_until is None:
            return True
        return now >= self.ejected_until and not self.probing

    def p50(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    # -- transitions ------------------------------------------------------------------------

    def begin(self, now: float) -> None:
        self.in_flight += 1
        self.requests += 1
        if self.ejected_until is not None and now >= self.ejected_until:
            self.probing = True

    def succeeded(self, now: float, seconds: float) -> None:
        """The backend answered (2xx). Ends an ejection whose probe this was."""
        self.in_flight -= 1
        self.latencies.append(seconds)
        self._alive(now)

    def answered(self, now: float) -> None:
        """The backend answered with a client error (4xx): alive, not a failure."""
        self.in_flight -= 1
        self._alive(now)

    def released(self) -> None:
        """The request ended without a verdict on the backend (the client went away)."""
        self.in_flight -= 1
        self.probing = False

    def failed(self, now: float, error: str) -> None:
        """A connection failure, timeout or 5xx; the third in a row ejects."""
        self.in_flight -= 1
        self.errors += 1
        self.failures += 1
        self._error(now, error)
        if self.probing:
            self.probing = False
            self._eject(now)
        elif self.ejected_until is None and self.failures >= EJECT_AFTER:
            self._eject(now)

    def loading(self, now: float, detail: str) -> None:
        """The backend said it is still loading its model: not a failure, not ready."""
        self.in_flight -= 1
        self.probing = False
        self.checked_as(now, LOADING, detail)

    def checked_as(self, now: float, result: str, detail: str) -> None:
        """An active check's result. A backend that was down and now answers is a new
        process: its ejection ends at once instead of waiting out the cooldown."""
        before = self.status(now)
        if result == READY and self.checked in (DOWN, UNKNOWN):
            self._end_ejection(now)
        if result == DOWN and self.checked != DOWN:
            self._error(now, detail)
        self.checked, self.detail = result, detail
        self._moved(now, before)

    # -- internals --------------------------------------------------------------------------

    def _alive(self, now: float) -> None:
        before = self.status(now)
        self.failures = 0
        if self.checked != READY:
            self.checked, self.detail = READY, "answered a request"
        if self.probing or (self.ejected_until is not None and now >= self.ejected_until):
            self._end_ejection(now)
        self._moved(now, before)

    def _end_ejection(self, now: float) -> None:
        if self.ejected_until is not None:
            self.ejection_ended = now
        self.ejected_until, self.probing, self.failures = None, False, 0

    def _eject(self, now: float) -> None:
        before = self.status(now)
        if self.ejection_ended is not None and now - self.ejection_ended > COOLDOWN_MAX:
            self.level = 0
        self.level += 1
        self.ejected_until = now + cooldown(self.level)
        self._moved(now, before)

    def _error(self, now: float, error: str) -> None:
        self.last_error, self.last_error_at = error, now

    def _moved(self, now: float, before: str) -> None:
        if self.status(now) != before:
            self.since = now
