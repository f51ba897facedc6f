"""Split the backend model's `web_search` function calls out of its chunk stream.

Those calls become `server_tool_use` blocks that the router answers itself; every other
delta (text, reasoning, the client's own tool calls) goes on to the stream translator
unchanged. Fragments are matched to calls by the translator's own `CallTracker`, so the
backend quirks it handles (no `index`, `index: 0` for every call, snapshots, double-encoded
arguments; checklist items 32-34) are handled the same way here. Pure: chunk dicts in and out.
"""

from __future__ import annotations

from typing import Any

from continuum_cli.translate.response import tool_input
from continuum_cli.translate.tool_calls import Call, CallTracker, apply_fragment
from continuum_cli.websearch.blocks import TOOL_NAME

Chunk = dict[str, Any]


class CallSplitter:
    def __init__(self, name: str = TOOL_NAME) -> None:
        self.name = name
        self.text_parts: list[str] = []
        self._tracker = CallTracker()

    def feed(self, chunk: Chunk) -> Chunk:
        """The chunk without our calls. A `tool_calls` finish with only our calls in the
        turn becomes `stop`, so the translator does not report `tool_use`."""
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return chunk
        return {**chunk, "choices": [self._choice(c) for c in choices]}

    def _choice(self, choice: Any) -> Any:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            return choice
        delta = dict(choice.get("delta") or {})
        if isinstance(delta.get("content"), str):
            self.text_parts.append(delta["content"])
        fragments = delta.get("tool_calls")
        if isinstance(fragments, list):
            kept = [f for f in fragments if not self._take(f)]
            if kept:
                delta["tool_calls"] = kept
            else:
                delta.pop("tool_calls")
        finish = choice.get("finish_reason")
        if finish == "tool_calls" and self._ours() and not self.has_client_calls:
            finish = "stop"
        return {**choice, "delta": delta, "finish_reason": finish}

    def _take(self, fragment: Any) -> bool:
        if not isinstance(fragment, dict):
            return False
        call = self._tracker.call_for(fragment)
        apply_fragment(call, fragment)
        return call.name == self.name

    def _ours(self) -> list[Call]:
        return [c for c in self._tracker.calls if c.name == self.name]

    @property
    def queries(self) -> list[str]:
        """One query per web_search call, in call order ("" when the arguments have none)."""
        out = []
        for call in self._ours():
            query = tool_input(call.raw).get("query")
            out.append(query.strip() if isinstance(query, str) else "")
        return out

    @property
    def has_client_calls(self) -> bool:
        return any(c.name not in (None, self.name) for c in self._tracker.calls)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)
