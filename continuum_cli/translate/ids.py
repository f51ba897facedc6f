"""Identifiers minted by the translator: message ids, tool_use ids, thinking signatures.

Everything here is either deterministic from its inputs or takes its randomness as an
argument, so translation output is reproducible in tests. Only `new_message_id()` without a
token reaches for `secrets`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

# Anthropic accepts tool_use ids matching this pattern only (checklist item 20).
TOOL_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_SIGNATURE_PREFIX = "continuum-sig-v1:"


def new_message_id(token: str | None = None) -> str:
    """`msg_` + 24 hex chars. Pass `token` (any string) to make it deterministic."""
    if token is None:
        return "msg_" + secrets.token_hex(12)
    return "msg_" + _digest(token)[:24]


def tool_use_id(message_id: str, position: int) -> str:
    """A `toolu_` id for the `position`-th tool call of a message, when the backend sent none."""
    return "toolu_" + _digest(f"{message_id}:{position}")[:24]


def sanitize_tool_id(raw: str) -> str:
    """Keep a conforming id; otherwise replace illegal characters (`functions.Bash:0`)."""
    if TOOL_ID_RE.match(raw):
        return raw
    return _BAD_ID_CHARS.sub("_", raw)


class ToolIdAllocator:
    """Hands out unique, conforming tool_use ids within one message (checklist item 20)."""

    def __init__(self, message_id: str) -> None:
        self._message_id = message_id
        self._used: set[str] = set()
        self._count = 0

    def allocate(self, raw: str | None) -> str:
        self._count += 1
        candidate = sanitize_tool_id(raw) if raw else ""
        if not candidate or candidate in self._used:
            candidate = tool_use_id(self._message_id, self._count)
        while candidate in self._used:  # pathological: a backend id equal to a minted one
            candidate = tool_use_id(candidate, self._count)
        self._used.add(candidate)
        return candidate


def thinking_signature(thinking: str) -> str:
    """A non-empty opaque signature for a thinking block we minted (checklist item 30).

    Claude Code drops thinking blocks without a signature; the value only has to be stable
    and opaque. It is derived from the text so the same reasoning always signs the same way.
    """
    digest = hashlib.sha256(thinking.encode()).digest()[:24]
    return base64.b64encode(_SIGNATURE_PREFIX.encode() + digest).decode()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
