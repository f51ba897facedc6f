"""Fold Anthropic stream events back into one Message (the non-streaming answer).

The emulation produces one event sequence for both modes, so a non-streaming client gets
exactly the blocks a streaming one sees (websearch.md §1.10 step 8). Mirrors what the
official SDKs' stream accumulators do with each delta type (§1.5).
"""

from __future__ import annotations

from typing import Any

from continuum_cli.wire.json_text import loads as bounded_loads

Event = tuple[str, dict[str, Any]]


class MessageAccumulator:
    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, str] = {}

    def feed(self, name: str, payload: dict[str, Any]) -> None:
        handler = getattr(self, "_on_" + name, None)
        if handler is not None:
            handler(payload)

    def result(self) -> dict[str, Any]:
        return {**self.message, "content": [self._blocks[i] for i in sorted(self._blocks)]}

    def _on_message_start(self, payload: dict[str, Any]) -> None:
        self.message = {k: v for k, v in payload["message"].items() if k != "content"}

    def _on_content_block_start(self, payload: dict[str, Any]) -> None:
        self._blocks[payload["index"]] = dict(payload["content_block"])

    def _on_content_block_delta(self, payload: dict[str, Any]) -> None:
        index, delta = payload["index"], payload["delta"]
        block = self._blocks[index]
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + delta["text"]
        elif kind == "input_json_delta":
            self._json[index] = self._json.get(index, "") + delta["partial_json"]
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta["thinking"]
        elif kind == "signature_delta":
            block["signature"] = delta["signature"]
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta["citation"])

    def _on_content_block_stop(self, payload: dict[str, Any]) -> None:
        index = payload["index"]
        if index in self._json:
            raw = self._json.pop(index)
            self._blocks[index]["input"] = _object(raw)

    def _on_message_delta(self, payload: dict[str, Any]) -> None:
        self.message.update(payload.get("delta") or {})
        usage = dict(self.message.get("usage") or {})
        usage.update(payload.get("usage") or {})
        self.message["usage"] = usage


def _object(raw: str) -> dict[str, Any]:
    try:
        value = bounded_loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
