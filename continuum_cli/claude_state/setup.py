"""What `continuum claude` changes in Claude Code's state file, decided on plain data.

Verified against the bundled source of Claude Code 2.1.332: the approval lists hold
`key.trim().slice(-20)`; the startup dialogs are skipped when `hasCompletedOnboarding` is true
and the key's tail is in `approved` (and not only then in `rejected`: approved is checked first,
but Claude Code's own /config toggle keeps a tail in one list only, and so do we).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

KEY_TAIL_CHARS = 20
KeyStatus = Literal["approved", "rejected", "new"]


def key_tail(key: str) -> str:
    """What Claude Code records for an ANTHROPIC_API_KEY: its last 20 characters."""
    return key.strip()[-KEY_TAIL_CHARS:]


def _tails(responses: Any, which: str) -> list[str]:
    found = responses.get(which) if isinstance(responses, Mapping) else None
    return [t for t in found if isinstance(t, str)] if isinstance(found, list) else []


def key_status(state: Mapping[str, Any], key: str) -> KeyStatus:
    """"approved", "rejected" or "new", as Claude Code's startup check reads it."""
    responses = state.get("customApiKeyResponses")
    tail = key_tail(key)
    if tail in _tails(responses, "approved"):
        return "approved"
    return "rejected" if tail in _tails(responses, "rejected") else "new"


def onboarding_done(state: Mapping[str, Any]) -> bool:
    return state.get("hasCompletedOnboarding") is True


@dataclass(frozen=True)
class Plan:
    """The new state and, for the person, one line per entry that changed."""

    state: dict[str, Any]
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def plan(state: Mapping[str, Any], api_key: str | None) -> Plan:
    """Onboarding recorded as done and `api_key` (when given) approved; nothing else touched.
    Key order is kept, so the rewritten file differs only in these entries."""
    new = dict(state)
    changes: list[str] = []
    if not onboarding_done(state):
        new["hasCompletedOnboarding"] = True
        changes.append("hasCompletedOnboarding: true (skips the first-run screens, whose "
                       "connection check ignores ANTHROPIC_BASE_URL)")
    if api_key and api_key.strip() and needs_approval(state, api_key):
        was = key_status(state, api_key)
        new["customApiKeyResponses"] = _approve(state.get("customApiKeyResponses"), api_key)
        changes.append("customApiKeyResponses: the ANTHROPIC_API_KEY continuum passes is "
                       "approved" + (", no longer rejected" if was == "rejected" else "")
                       + " (Claude Code does not ask whether to use it)")
    return Plan(new, changes)


def needs_approval(state: Mapping[str, Any], key: str) -> bool:
    """True unless the key's tail is approved and not also rejected."""
    responses = state.get("customApiKeyResponses")
    tail = key_tail(key)
    return tail not in _tails(responses, "approved") or tail in _tails(responses, "rejected")


def _approve(responses: Any, key: str) -> dict[str, Any]:
    """The responses with the key's tail moved to the end of `approved`; other entries kept."""
    tail = key_tail(key)
    kept = dict(responses) if isinstance(responses, Mapping) else {}
    for which in ("approved", "rejected"):
        listed = kept.get(which)
        kept[which] = [t for t in listed if t != tail] if isinstance(listed, list) else []
    kept["approved"].append(tail)
    return kept
