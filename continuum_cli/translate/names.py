"""Reversible tool names for OpenAI-style backends (checklist item 18).

OpenAI-compatible servers accept function names matching `^[a-zA-Z0-9_-]{1,64}$`. Claude Code
and MCP servers send names with dots, colons or more than 64 characters, and an empty name
makes vLLM + Mistral templates fail. We replace illegal characters, truncate long names with
a hash suffix, use a placeholder for empty names, and keep a two-way map so the response path
reports the name the client defined.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ILLEGAL = re.compile(r"[^a-zA-Z0-9_-]")
MAX_LEN = 64
EMPTY_PLACEHOLDER = "unnamed_tool"


def _short_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def sanitize_name(name: str) -> str:
    """The backend-safe spelling of `name` (deterministic, not necessarily unique)."""
    if _VALID.match(name):
        return name
    if not name:
        return EMPTY_PLACEHOLDER
    # the hash keeps `a.b` apart from a real `a_b`, and two long names with one prefix apart
    cleaned = _ILLEGAL.sub("_", name)
    return f"{cleaned[: MAX_LEN - 9]}_{_short_hash(name)}"


@dataclass(frozen=True)
class ToolNameMap:
    """Client name <-> backend name. Unknown names pass through `sanitize_name` one way and
    unchanged the other way, so a name the backend invents is still reported verbatim."""

    to_backend: dict[str, str] = field(default_factory=dict)
    to_client: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, names: Iterable[str]) -> ToolNameMap:
        forward: dict[str, str] = {}
        backward: dict[str, str] = {}
        for name in names:
            if name in forward:
                continue
            safe = sanitize_name(name)
            if safe in backward:  # collision after cleaning: disambiguate by hash
                safe = f"{safe[: MAX_LEN - 9]}_{_short_hash(name)}"
            forward[name] = safe
            backward[safe] = name
        return cls(forward, backward)

    def to_openai(self, name: str) -> str:
        return self.to_backend.get(name) or sanitize_name(name)

    def to_anthropic(self, name: str) -> str:
        return self.to_client.get(name, name)
