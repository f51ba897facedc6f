"""Reassembling streamed OpenAI `tool_calls` fragments (checklist items 32–34).

Backends disagree on how they stream calls: most key fragments on `index` and send `id` and
`name` only in the first one; Ollama and some gateways omit `index` or send `index: 0` for
every call (BerriAI/litellm#33678); some send cumulative snapshots instead of increments,
object-typed or double-encoded arguments (saberjack/SHTUCodeProxy#1). `CallTracker` maps
every fragment to one `Call` and keeps each call's argument text as the concatenation of
what the model produced, so the deltas we forward add up to the final JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def is_complete_json(text: str) -> bool:
    if not text.strip():
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@dataclass
class Call:
    """One tool call being streamed."""

    id: str | None = None
    name: str | None = None
    raw: str = ""  # argument text received so far
    sent: int = 0  # how much of `raw` went out as input_json_delta
    block: int | None = None  # content block index once opened
    wrapped: bool = False  # arguments are a JSON string holding JSON: decode at the end

    def add_arguments(self, args: Any) -> None:
        snapshot = not isinstance(args, str)
        if snapshot:  # object-typed arguments are always a full snapshot
            args = json.dumps(args, ensure_ascii=False)
        if not self.raw and args.lstrip().startswith('"'):
            self.wrapped = True
        if self.raw and (snapshot or len(self.raw) >= 2) and args.startswith(self.raw):
            args = args[len(self.raw):]  # a cumulative snapshot: keep only what is new
        self.raw += args

    def pending_delta(self) -> str:
        """Argument text not yet forwarded (nothing while it is only whitespace or wrapped)."""
        if self.wrapped or not self.raw[self.sent:] or not self.raw.strip():
            return ""
        return self.raw[self.sent:]

    def final_remainder(self) -> str:
        """What must still be sent when the block closes so the deltas form a JSON object."""
        if self.wrapped:
            return _unwrap(self.raw)
        if not self.raw.strip():
            return "{}"  # no arguments at all: an empty object, never an empty input
        return self.raw[self.sent:]


def _unwrap(raw: str) -> str:
    try:
        inner = json.loads(raw)
    except ValueError:
        return raw
    return inner if isinstance(inner, str) and inner.strip() else raw


class CallTracker:
    """Maps fragments to calls: by `index` when present, by `id`/`name` otherwise."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._by_index: dict[int, Call] = {}

    def call_for(self, fragment: dict[str, Any]) -> Call:
        fn = fragment.get("function") or {}
        fid = fragment.get("id") or None
        name = fn.get("name") or None
        index = fragment.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            call = self._by_index.get(index)
            if call is None or _starts_new_call(call, fid, name):
                call = self._by_index[index] = self._new()
            return call
        known = next((c for c in self.calls if fid and c.id == fid), None)
        if known is not None:
            return known
        last = self.calls[-1] if self.calls else None
        if last is None or _starts_new_call(last, fid, name):
            return self._new()
        return last

    def _new(self) -> Call:
        call = Call()
        self.calls.append(call)
        return call


def _starts_new_call(call: Call, fid: str | None, name: str | None) -> bool:
    """A fragment on an occupied slot opens a new call when its id or name says so."""
    if fid and call.id:
        return fid != call.id
    if not (fid or name):
        return False  # a plain argument fragment continues the call
    if name and call.name and name != call.name:
        return True
    # same name (or a fresh id) after the previous call's arguments are complete JSON:
    # a backend that repeats index 0 for every call
    return call.name is not None and is_complete_json(call.raw)


def apply_fragment(call: Call, fragment: dict[str, Any]) -> None:
    fn = fragment.get("function") or {}
    if fragment.get("id") and not call.id:
        call.id = str(fragment["id"])
    if fn.get("name") and not call.name:
        call.name = str(fn["name"])
    if fn.get("arguments") is not None:
        call.add_arguments(fn["arguments"])
