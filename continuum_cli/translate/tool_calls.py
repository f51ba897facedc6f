"""Reassembling streamed OpenAI `tool_calls` fragments (checklist items 32–34).

Backends disagree on how they stream calls: most key fragments on `index` and send `id` and
`name` only in the first one; Ollama and some gateways omit `index` or send `index: 0` for
every call (BerriAI/litellm#33678); some send cumulative snapshots instead of increments,
object-typed or double-encoded arguments (saberjack/SHTUCodeProxy#1). `CallTracker` maps
every fragment to one `Call` and keeps each call's argument text as the concatenation of
what the model produced; `partial_json` decides how much of it may be forwarded and how the
block ends, so the deltas we forward always add up to one JSON object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from continuum_cli.translate.partial_json import JsonPrefix, complete, loads


def is_complete_json(text: str) -> bool:
    if not text.strip():
        return False
    try:
        loads(text)
    except (ValueError, RecursionError):
        return False
    return True


@dataclass
class Call:
    """One tool call being streamed."""

    id: str | None = None
    name: str | None = None
    block: int | None = None  # content block index once opened
    wrapped: bool = False  # arguments are a JSON string holding JSON: decode at the end
    size: int = 0  # length of the argument text received so far
    sent: int = 0  # how much of it went out as input_json_delta
    scan: JsonPrefix = field(default_factory=JsonPrefix)  # how much of it may go out
    # the text in pieces, joined only when read, and its unsent end apart: re-joining a
    # large argument (a Write of a whole file) on every fragment would be quadratic
    _chunks: list[str] = field(default_factory=list)
    _unsent: str = ""

    @property
    def raw(self) -> str:
        """The argument text received so far."""
        if len(self._chunks) > 1:
            self._chunks[:] = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    @property
    def complete(self) -> bool:
        """The arguments so far are complete JSON (the call can give way to the next)."""
        return self.scan.done or (self.wrapped and is_complete_json(self.raw))

    def add_arguments(self, args: Any) -> None:
        snapshot = not isinstance(args, str)
        if snapshot:  # object-typed arguments are always a full snapshot
            args = json.dumps(args, ensure_ascii=False)
        if not self.size and args.lstrip().startswith('"'):
            self.wrapped = True
        if (self.size and (snapshot or self.size >= 2) and len(args) >= self.size
                and args.startswith(self.raw)):
            args = args[self.size:]  # a cumulative snapshot: keep only what is new
        self._chunks.append(args)
        self.size += len(args)
        self.scan.feed(args)
        if not self.wrapped:
            self._unsent += args

    def take_pending(self) -> str:
        """Argument text not yet forwarded that is still a valid JSON-object prefix (nothing
        while it is only whitespace, or wrapped); it counts as sent from now on."""
        piece = self._unsent[: self.scan.safe - self.sent]
        self.sent += len(piece)
        self._unsent = self._unsent[len(piece):]
        return piece

    def finish(self) -> tuple[str, str]:
        """(the last delta, the whole argument text of the block) when the block closes.

        The deltas form one JSON object (`{}` when there were no arguments at all, never an
        empty input), whatever the backend sent: see `partial_json.complete`.
        """
        forwarded = "" if self.wrapped else self.raw[: self.sent]
        rest = complete(forwarded, self.raw)
        self.sent, self._unsent = self.size, ""
        return rest, forwarded + rest


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
    return call.name is not None and call.complete


def apply_fragment(call: Call, fragment: dict[str, Any]) -> None:
    fn = fragment.get("function") or {}
    if fragment.get("id") and not call.id:
        call.id = str(fragment["id"])
    if fn.get("name") and not call.name:
        call.name = str(fn["name"])
    if fn.get("arguments") is not None:
        call.add_arguments(fn["arguments"])
