"""The limit counters and the usage ledger in Redis: one Lua script per operation, so a check
and its additions are one atomic step on the server, whichever replica sends it. The
arithmetic mirrors `counters.py` (`window_state`, `lease_state`, `counter_state`).

Keys under `continuum:lim:`: `w:<name>`, a hash of one-second buckets for a window (see
redis_run.py); `<name>`, a sorted set of leases scored by their expiry, or a string for a
counter. `continuum:usage` is a stream whose entry ids are the record times.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from continuum_cli.state.counters import NEVER, Admission, Check, CheckState, Settlement

PREFIX = "continuum:lim:"
USAGE_STREAM = "continuum:usage"


def run_call(settlement: Settlement | None, checks: Sequence[Check], now: float,
             retention: float, deadline_ms: int = 0) -> tuple[list[str], list[str]]:
    """KEYS (none: see redis_run.py) and ARGV of the RUN script: settle `settlement`, then
    admit `checks`, unless Redis runs it after `deadline_ms` (its own clock; 0: no deadline)."""
    s = settlement or Settlement()
    args = [PREFIX, USAGE_STREAM, repr(now), str(deadline_ms),
            str(math.ceil(retention * 1000)), str(len(s.adds)), str(len(s.releases)),
            str(len(s.records)), str(len(checks))]
    _check_args(args, s.adds)
    for release in s.releases:  # (key, member[, group])
        args += release[:2]
    args += [json.dumps(r, separators=(",", ":")) for r in s.records]
    _check_args(args, checks)
    return [], args


def _check_args(args: list[str], checks: Sequence[Check]) -> None:
    for c in checks:
        args += (c.kind, _num(c.limit), _num(c.span), _num(c.amount), c.member, c.key)


@lru_cache(maxsize=4096)  # limits and spans repeat on every call
def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def server_ms(reply: Sequence[Any]) -> float:
    """The server's time in a RUN reply (ms)."""
    return float(reply[1])


def ran_late(reply: Sequence[Any]) -> bool:
    """Redis reached the call after its deadline and did nothing."""
    return reply[0] == "late"


def parse_admission(reply: Sequence[Any], now: float) -> Admission:
    """admitted, server ms, then per check: ok, used, free_at ms (0: passes, so now; -1:
    never), newest ms (0: empty window)."""
    states = []
    for i in range(2, len(reply), 4):
        ok, free_ms = reply[i] == 1, int(reply[i + 2])
        free_at = now if ok else NEVER if free_ms < 0 else free_ms / 1000
        states.append(CheckState(ok, float(reply[i + 1]), free_at, int(reply[i + 3]) / 1000))
    return Admission(reply[0] == 1, tuple(states))


def stream_id(ts: float) -> str:
    return str(max(0, int(ts * 1000)))
