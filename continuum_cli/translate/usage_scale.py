"""Token counts reported as if the context window were larger (or smaller) than it is.

Claude Code sizes auto-compaction from its own idea of the model's window (200 000 tokens for
`claude-*` names) and from the usage each answer reports. With a 32k local window it never
compacts before the backend rejects the prompt. `backends[].scale_usage_to` multiplies every
reported count (usage and count_tokens) by `scale_usage_to ÷ real window`, so the fraction
of the window Claude Code sees used is the real one (checklist item 47; gremlord/gremlord#4
does the same).
"""

from __future__ import annotations

from typing import Any

_COUNTS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
           "cache_read_input_tokens")
Event = tuple[str, dict[str, Any]]


def scaled_count(count: int, factor: float) -> int:
    """A count times `factor`, never rounded down to 0 from a non-zero count."""
    return max(1, round(count * factor)) if count > 0 else count


def scaled_usage(usage: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of an Anthropic `usage` object with every token count scaled."""
    return {k: scaled_count(v, factor) if k in _COUNTS and isinstance(v, int) else v
            for k, v in usage.items()}


def scale_message(message: dict[str, Any], factor: float | None) -> dict[str, Any]:
    if factor is None or not isinstance(message.get("usage"), dict):
        return message
    return {**message, "usage": scaled_usage(message["usage"], factor)}


def scale_events(events: list[Event], factor: float | None) -> list[Event]:
    """`message_start` and `message_delta` carry usage; other events pass unchanged."""
    if factor is None:
        return events
    return [_scale_event(name, payload, factor) for name, payload in events]


def _scale_event(name: str, payload: dict[str, Any], factor: float) -> Event:
    if name == "message_start" and isinstance(payload.get("message"), dict):
        return name, {**payload, "message": scale_message(payload["message"], factor)}
    if name == "message_delta" and isinstance(payload.get("usage"), dict):
        return name, {**payload, "usage": scaled_usage(payload["usage"], factor)}
    return name, payload
