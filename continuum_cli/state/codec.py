"""Canonical JSON for stored values: equal dicts encode to equal text, so compare-and-set can
compare text (the same rule in SQLite and in a Redis Lua script)."""

from __future__ import annotations

import json
from typing import Any


def encode(value: dict[str, Any]) -> str:
    if not isinstance(value, dict):
        raise TypeError(f"stored values are dicts, not {type(value).__name__}")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode(text: str | bytes | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None
