"""The device grant's state machine (RFC 8628 §3.4–3.5), on plain dicts: no clock, no store.

A grant is `pending` until a person approves or denies it on the verification page (or an
admin with `continuum gateway approve`); a poll of an approved grant hands out tokens once.
Records are JSON-able dicts because they live in the state store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["authorization_pending", "slow_down", "access_denied", "expired_token",
                  "invalid_grant", "approved"]
# RFC 8628 §3.5: after slow_down the interval grows by 5 seconds for all later requests
SLOW_DOWN_STEP = 5


@dataclass(frozen=True)
class PollResult:
    outcome: Outcome
    grant: dict[str, Any] | None  # the record to store back (None: leave it as it is)


def new_grant(user_code: str, now: float, ttl: float, interval: float,
              meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"user_code": user_code, "status": "pending", "created": now,
            "expires": now + ttl, "interval": interval, "last_poll": None,
            "key_name": None, "approved_via": None, **(meta or {})}


def expired(grant: dict[str, Any], now: float) -> bool:
    return now >= grant["expires"]


def _too_early(grant: dict[str, Any], now: float) -> bool:
    # polls are timed by the client's own timer: allow a fifth of the interval of jitter
    last = grant.get("last_poll")
    return last is not None and now - last < grant["interval"] * 0.8


def poll(grant: dict[str, Any] | None, now: float) -> PollResult:
    """What a token request with this device code gets, and the grant to store back."""
    if grant is None:
        return PollResult("invalid_grant", None)
    if expired(grant, now):
        return PollResult("expired_token", None)
    if grant["status"] == "denied":
        return PollResult("access_denied", None)
    if grant["status"] == "approved":
        return PollResult("approved", None)
    if _too_early(grant, now):
        slower = {**grant, "interval": grant["interval"] + SLOW_DOWN_STEP, "last_poll": now}
        return PollResult("slow_down", slower)
    return PollResult("authorization_pending", {**grant, "last_poll": now})


Decision = Literal["approved", "denied", "expired", "already_decided"]


def decide(grant: dict[str, Any], now: float, approve: bool, key_name: str | None,
           via: str) -> tuple[Decision, dict[str, Any] | None]:
    """Approve (for `key_name`) or deny a pending grant."""
    if expired(grant, now):
        return "expired", None
    if grant["status"] != "pending":
        return "already_decided", None
    if not approve:
        return "denied", {**grant, "status": "denied", "decided": now, "approved_via": via}
    return "approved", {**grant, "status": "approved", "key_name": key_name, "decided": now,
                        "approved_via": via}
