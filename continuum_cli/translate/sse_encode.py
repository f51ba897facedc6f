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


_MERGEABLE = {"text_delta": "text", "thinking_delta": "thinking",
              "input_json_delta": "partial_json"}


def coalesce_deltas(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Merge adjacent deltas of one block into one (`text_delta` + `text_delta` -> one).

    Events that were produced together (chunks that arrived in one upstream read) reach the
    client together anyway; merging them sends the same content in fewer frames, which is
    most of the per-event cost of a fast stream. Concatenated `partial_json` stays the same.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    for name, payload in events:
        if name == "content_block_delta" and out and _same_kind(out[-1], payload):
            field = _MERGEABLE[payload["delta"]["type"]]
            prev = out[-1][1]
            merged = {**prev["delta"], field: prev["delta"][field] + payload["delta"][field]}
            out[-1] = (name, {**prev, "delta": merged})
        else:
            out.append((name, payload))
    return out


def _same_kind(last: tuple[str, dict[str, Any]], payload: dict[str, Any]) -> bool:
    name, prev = last
    kind = payload["delta"].get("type")
    return (name == "content_block_delta" and kind in _MERGEABLE
            and prev.get("index") == payload.get("index")
            and prev["delta"].get("type") == kind)
