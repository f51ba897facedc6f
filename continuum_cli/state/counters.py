"""Atomic admission counters, as plain data: what a store checks and adds in one step.

A limit check is a `Check`; `StateStore.admit(checks, now)` evaluates every check and, only if
all pass, adds every amount -- atomically (a SQLite transaction, a Redis Lua script), so two
replicas never let through more than a limit allows. The arithmetic below is the SQLite
store's; the Redis script (redis_limits.py) mirrors it line for line.

Kinds:
* `count`: a sliding window of `span` seconds counting requests (requests per minute).
* `sum`: a sliding window summing amounts (tokens per minute).
  A window is kept in one-second buckets: the second, the amount added in it and the time of
  its newest addition. A check reads at most `span + 1` small rows however busy the key, and
  an admission adds to one bucket instead of writing an entry. A bucket counts until its
  newest addition has left the window, so a key never gets more than its limit in any `span`
  seconds; an earlier amount in the same second may count up to one second longer than in an
  exact window, while `free_at` (retry-after) and the reset time, which follow the newest
  additions, stay exact.
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
OLDEST_PAGE = 1000  # oldest buckets read to compute `free_at` on a refusal


# NamedTuples rather than frozen dataclasses: a request builds a few dozen of these, and a
# frozen dataclass costs three times as much to build (measured ~1.0 vs ~0.35 us)
class Check(NamedTuple):
    kind: Kind
    key: str
    limit: float  # count/sum: the most the window may hold; lease/counter: admit below it
    span: float  # window seconds, lease seconds, or the counter's expiry (unix time)
    amount: float = 0  # added on admission (count: 1 per request; lease: one lease)
    member: str = ""  # unique per request: names its window entry or lease
    group: str = ""  # whose it is (the caller): a store may keep a group's counters together


class CheckState(NamedTuple):
    ok: bool
    used: float  # before this request was added
    free_at: float  # unix time from which this check would pass (now when it passes)
    newest: float = 0.0  # newest addition to a window (0: empty), for "fully replenished" resets


def need(check: Check) -> float:
    """What a window must have room for: the amount, and at least 1 (an output-token window
    admits while anything is left)."""
    return max(check.amount, 1)


def bucket_of(now: float) -> int:
    """The bucket (its second) an amount added at `now` goes to."""
    return math.floor(now)


def window_state(check: Check, used: float, newest: float,
                 oldest: Sequence[tuple[float, float]], now: float) -> CheckState:
    """`used`: the window's total (requests for `count`); `newest`: its newest addition (0:
    empty); `oldest`: (newest addition, amount) of its oldest buckets, oldest first -- enough of
    them to say when the window has room (a store passes a bounded page)."""
    excess = used + need(check) - check.limit
    if excess <= 0:
        return CheckState(True, used, now, newest)
    if need(check) > check.limit:
        return CheckState(False, used, NEVER, newest)
    freed = 0.0
    for ts, amount in oldest:
        freed += amount
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
    releases: list[tuple[str, ...]] = field(default_factory=list)  # (key, member[, group])
    records: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.adds or self.releases or self.records)

    def extend(self, other: Settlement) -> None:
        self.adds += other.adds
        self.releases += other.releases
        self.records += other.records
