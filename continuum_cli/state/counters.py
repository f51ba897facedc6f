"""Atomic admission counters, as plain data: what a store checks and adds in one step.

A limit check is a `Check`; `StateStore.admit(checks, now)` evaluates every check and, only if
all pass, adds every amount -- atomically (a SQLite transaction, a Redis Lua script), so two
replicas never let through more than a limit allows. The arithmetic below is the SQLite
store's; the Redis script (redis_limits.py) mirrors it line for line.

Kinds:
* `count`: a sliding window of `span` seconds counting entries (requests per minute).
* `sum`: a sliding window summing entry amounts (tokens per minute).
  Windows keep a running total beside their entries, so a check costs the entries that left
  the window since the last one, not the whole window (a key at 100 000 requests a minute
  costs what a key at 10 does).
* `lease`: live leases (concurrent requests); each lease ends by release or after `span` s.
* `counter`: a number that expires at the unix time `span` (a budget's period).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Kind = Literal["count", "sum", "lease", "counter"]
NEVER = math.inf  # `free_at` when a request can never pass (it alone exceeds the limit)
OLDEST_PAGE = 1000  # oldest entries read to compute `free_at` on a refusal


# NamedTuples rather than frozen dataclasses: a request builds a few dozen of these, and a
# frozen dataclass costs three times as much to build (measured ~1.0 vs ~0.35 us)
class Check(NamedTuple):
    kind: Kind
    key: str
    limit: float  # count/sum: the most the window may hold; lease/counter: admit below it
    span: float  # window seconds, lease seconds, or the counter's expiry (unix time)
    amount: float = 0  # added on admission (count: 1 per request; lease: one lease)
    member: str = ""  # unique per request: names its window entry or lease


class CheckState(NamedTuple):
    ok: bool
    used: float  # before this request was added
    free_at: float  # unix time from which this check would pass (now when it passes)
    newest: float = 0.0  # newest window entry (0: empty), for "fully replenished" resets


def need(check: Check) -> float:
    """What a window must have room for: the amount, and at least 1 (an output-token window
    admits while anything is left)."""
    return max(check.amount, 1)


def window_state(check: Check, used: float, newest: float,
                 oldest: Sequence[tuple[float, float]], now: float) -> CheckState:
    """`used`: the window's running total (entries for `count`); `newest`: its newest entry
    (0: empty); `oldest`: (timestamp, amount) of its oldest entries, oldest first -- enough
    of them to say when the window has room (a store passes a bounded page)."""
    excess = used + need(check) - check.limit
    if excess <= 0:
        return CheckState(True, used, now, newest)
    if need(check) > check.limit:
        return CheckState(False, used, NEVER, newest)
    freed = 0.0
    for ts, amount in oldest:
        freed += amount if check.kind == "sum" else 1
        if freed >= excess:
            return CheckState(False, used, ts + check.span, newest)
    return CheckState(False, used, now + check.span, newest)  # beyond the page: at most this


def lease_state(check: Check, live: int, first_expiry: float | None, now: float
                ) -> CheckState:
    """`live`: leases not yet released or expired; `first_expiry`: the earliest one's end."""
    if live < check.limit:
        return CheckState(True, float(live), now)
    return CheckState(False, float(live), first_expiry or now)


def counter_state(check: Check, value: float, now: float) -> CheckState:
    if value < check.limit:
        return CheckState(True, value, now)
    return CheckState(False, value, check.span)


class Admission(NamedTuple):
    admitted: bool
    states: tuple[CheckState, ...]


@dataclass
class Settlement:
    """What finished requests leave to add: output tokens and budget amounts (`adds`),
    concurrency leases to release, ledger records. A store applies it before the admission it
    travels with (or alone), in the same atomic step."""

    adds: list[Check] = field(default_factory=list)
    releases: list[tuple[str, str]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.adds or self.releases or self.records)

    def extend(self, other: Settlement) -> None:
        self.adds += other.adds
        self.releases += other.releases
        self.records += other.records
