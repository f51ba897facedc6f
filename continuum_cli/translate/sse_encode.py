"""Anthropic SSE framing: the only place `event: NAME\\ndata: JSON\\n\\n` frames are written.

Claude Code needs *named* events (REPORT.md §5.1: data-only lines make it fall back to
`stream:false`), so every frame carries both lines. JSON is compact and keeps non-ASCII text
as UTF-8 (smaller frames, and byte-identical to what a client would re-serialise).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _compact_encoder() -> Callable[[Any], str]:
    """`json.dumps` with compact separators and UTF-8 text. `JSONEncoder.encode` builds a new
    C encoder on every call, half the cost of a small frame; this one is built once with the
    same settings (payloads are trees, so no circular-reference check)."""
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    iterencode = make(None, encoder.default, json.encoder.encode_basestring, None, ":", ",",
                      False, False, True)
    return lambda payload: "".join(iterencode(payload, 0))


_dumps = _compact_encoder()


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
    A run's pieces are joined once at its end (adding them one by one would be quadratic in
    the size of a large batch).
    """
    out: list[tuple[str, dict[str, Any]]] = []
    run: list[str] = []  # pieces of the delta run that out[-1] starts
    for name, payload in events:
        if run and name == "content_block_delta" and _same_kind(out[-1][1], payload):
            run.append(payload["delta"][_MERGEABLE[payload["delta"]["type"]]])
            continue
        _close_run(out, run)
        out.append((name, payload))
        kind = payload.get("delta", {}).get("type") if name == "content_block_delta" else None
        if kind in _MERGEABLE:
            run.append(payload["delta"][_MERGEABLE[kind]])
    _close_run(out, run)
    return out


def _close_run(out: list[tuple[str, dict[str, Any]]], run: list[str]) -> None:
    if len(run) > 1:
        name, prev = out[-1]
        field = _MERGEABLE[prev["delta"]["type"]]
        out[-1] = (name, {**prev, "delta": {**prev["delta"], field: "".join(run)}})
    run.clear()


def _same_kind(prev: dict[str, Any], payload: dict[str, Any]) -> bool:
    return (prev.get("index") == payload.get("index")
            and prev["delta"].get("type") == payload["delta"].get("type"))
