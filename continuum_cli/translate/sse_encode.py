"""Anthropic SSE framing: the only place `event: NAME\\ndata: JSON\\n\\n` frames are written.

Claude Code needs *named* events (REPORT.md §5.1: data-only lines make it fall back to
`stream:false`), so every frame carries both lines. JSON is compact and keeps non-ASCII text
as UTF-8 (smaller frames, and byte-identical to what a client would re-serialise).
"""

from __future__ import annotations

import json
from typing import Any

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_event(name: str, payload: dict[str, Any]) -> bytes:
    """One SSE frame: `event: <name>` + `data: <compact json>` + blank line."""
    return b"event: " + name.encode() + b"\ndata: " + _dumps(payload).encode() + b"\n\n"


PING_FRAME: bytes = encode_event("ping", {"type": "ping"})
