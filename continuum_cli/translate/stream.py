"""OpenAI chat.completion.chunk stream -> Anthropic SSE events (checklist §G, items 30–37).

`StreamTranslator` is a sans-I/O state machine: feed it parsed chunks, get back
`(event_name, payload)` pairs; `sse_encode` turns those into bytes. Its invariants:

* exactly one content block is open at a time; indexes go first_index, first_index+1, ...
  (item 31) -- Claude Code treats a missing `content_block_stop` as a broken stream;
* a block opens on its first real content, never speculatively: no empty text blocks
  (items 14, 32), whitespace before the first text is held back;
* thinking (reasoning fields or `<think>` tags) comes first as a thinking block and gets a
  `signature_delta` before it closes (item 30);
* a tool block opens on the first fragment that has a name; argument deltas concatenate to
  the final JSON; fragments of calls other than the open one are buffered and emitted in
  order once the open call is complete or the stream ends (items 33–34);
* text and thinking that arrive after tool calls started are emitted after the tool blocks;
* text that could be the start of a stop sequence is held back until more text shows it is
  not, so a stop sequence the backend left at the end of the text is cut off as the
  non-streaming path does (item 40);
* stop_reason and usage are decided at `close()`, because the usage trailer comes after the
  finish_reason chunk (item 36).
"""

from __future__ import annotations

from typing import Any

from continuum_cli.errors import UpstreamUnavailable
from continuum_cli.translate.ids import ToolIdAllocator, thinking_signature
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.response import (
    anthropic_usage,
    estimate_output_tokens,
    map_stop_reason,
    matched_stop_sequence,
    message_text,
    reasoning_text,
    tool_input,
)
from continuum_cli.translate.think import DEFAULT_PROBE_CHARS, Segment, ThinkSplitter
from continuum_cli.translate.tool_calls import Call, CallTracker, apply_fragment

Event = tuple[str, dict[str, Any]]
_TAIL = 256  # characters of emitted text kept to recognise a trailing stop sequence
_HELD_CHUNKS_PER_PING = 32  # keep bytes flowing while content is held back (stall watchdog)


class StreamTranslator:
    def __init__(
        self,
        *,
        model: str,
        message_id: str,
        tool_names: ToolNameMap,
        input_tokens: int = 0,
        stop_sequences: list[str] | None = None,
        first_index: int = 0,
        think_probe_chars: int = DEFAULT_PROBE_CHARS,
        thinking_open: bool = False,
    ) -> None:
        self.model = model
        self.message_id = message_id
        self.next_index = first_index
        self.blocks: list[dict[str, Any]] = []  # the content as a client will accumulate it
        self.finish_reason: str | None = None
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.usage: dict[str, int] | None = None
        self._names = tool_names
        self._input_tokens = input_tokens
        self._stop_sequences = stop_sequences
        self._first_index = first_index
        self._splitter = ThinkSplitter(probe_chars=think_probe_chars, thinking_open=thinking_open)
        self._calls = CallTracker()
        self._ids = ToolIdAllocator(message_id)
        self._open: str | None = None  # kind of the open block
        self._open_call: Call | None = None
        self._last_kind: str | None = None
        self._held_ws = ""
        self._tail: list[Segment] = []  # text/thinking that arrived after tool calls began
        self._text_tail = ""
        self._held_stop = ""  # text that may be the start of a stop sequence
        self._matched_stop: str | None = None
        self._out_chars = 0
        self._backend_stop: Any = None
        self._raw_usage: dict[str, Any] | None = None
        self._held_chunks = 0
        self._closed = False
        # text/thinking of the open block, joined into `blocks` when it closes: appending to
        # the dict value would copy the whole block on every delta (quadratic in its length)
        self._parts: list[str] = []
        self._now: float | None = None

    # -- public API ----------------------------------------------------------------------
    def start_events(self) -> list[Event]:
        """`message_start` (input_tokens = the estimate, item 41) and a first `ping`."""
        usage = anthropic_usage(None, input_fallback=self._input_tokens, output_fallback=1)
        message = {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage,
        }
        return [("message_start", {"type": "message_start", "message": message}),
                ("ping", {"type": "ping"})]

    def feed(self, chunk: dict[str, Any], now: float | None = None) -> list[Event]:
        """Events for one parsed `chat.completion.chunk`. `now` (the caller's monotonic
        seconds) bounds how long leading text is held back for a lone `</think>`."""
        self._now = now
        if chunk.get("error") and not chunk.get("choices"):
            raise UpstreamUnavailable(f"backend error mid-stream: {_error_text(chunk['error'])}")
        if chunk.get("usage"):
            self._raw_usage = chunk["usage"]  # the last chunk that has it wins
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events + self._keepalive(events)

    def tick(self, now: float) -> list[Event]:
        """Release leading text held for a lone `</think>` once the time bound passed, also
        when no chunk arrives (the caller calls this on its keep-alive timer)."""
        if not self._splitter.expired(now):
            return []
        return self._segments(self._splitter.settle())

    def close(self) -> list[Event]:
        """Close every block; afterwards `stop_reason`, `stop_sequence`, `usage` are set."""
        if self._closed:
            return []
        events = self._segments(self._splitter.flush())
        events += self._drain_calls()
        tail, self._tail = self._tail, []
        events += self._segments(tail, after_tools=True)
        events += self._final_text()
        events += self._close_open()
        self._decide()
        self._closed = True
        return events

    def end_events(self) -> list[Event]:
        """`message_delta` (stop reason + cumulative usage) and `message_stop`.

        Call `close()` first; if it was not, its events are included here.
        """
        events = self.close()
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        return events + [
            ("message_delta", {"type": "message_delta", "delta": delta, "usage": self.usage}),
            ("message_stop", {"type": "message_stop"}),
        ]

    def finish(self) -> list[Event]:
        """`close()` + `end_events()`: everything after the last chunk."""
        return self.end_events()

    # -- chunk handling ------------------------------------------------------------------
    def _choice(self, choice: dict[str, Any]) -> list[Event]:
        delta = choice.get("delta") or choice.get("message") or {}
        events: list[Event] = []
        reasoning = reasoning_text(delta)
        if reasoning:
            events += self._segments(self._splitter.settle())  # the backend splits reasoning
            events += self._segments([("thinking", reasoning)])
        content = message_text(delta.get("content"))
        if content:
            events += self._segments(self._splitter.feed(content, self._now))
        for fragment in delta.get("tool_calls") or []:
            if isinstance(fragment, dict):
                events += self._tool_fragment(fragment)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            self._backend_stop = choice.get("stop_reason")
        return events

    def _keepalive(self, events: list[Event]) -> list[Event]:
        if events or not self._splitter.undecided:
            self._held_chunks = 0
            return []
        self._held_chunks += 1
        if self._held_chunks % _HELD_CHUNKS_PER_PING:
            return []
        return [("ping", {"type": "ping"})]

    def _segments(self, segments: list[Segment], *, after_tools: bool = False) -> list[Event]:
        events: list[Event] = []
        for kind, piece in segments:
            if self._calls.calls and not after_tools:
                self._tail.append((kind, piece))
            elif kind == "thinking":
                events += self._thinking(piece)
            else:
                events += self._text(piece)
        return events

    def _thinking(self, piece: str) -> list[Event]:
        events = self._switch_to("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        self._parts.append(piece)
        self._out_chars += len(piece)
        return events + [self._delta({"type": "thinking_delta", "thinking": piece})]

    def _text(self, piece: str) -> list[Event]:
        if not self._stop_sequences:
            return self._text_out(piece)
        held = self._held_stop + piece
        keep = _stop_prefix_len(held, self._stop_sequences)
        piece, self._held_stop = held[:len(held) - keep], held[len(held) - keep:]
        return self._text_out(piece) if piece else []

    def _release_text(self) -> list[Event]:
        """Held text goes out as it is: another block follows it, so it ended nothing."""
        held, self._held_stop = self._held_stop, ""
        return self._text_out(held) if held else []

    def _final_text(self) -> list[Event]:
        """The end of the text: a stop sequence the backend left there is cut off."""
        held, self._held_stop = self._held_stop, ""
        self._matched_stop = matched_stop_sequence(
            self._backend_stop, self._text_tail + held, self._stop_sequences)
        if self._matched_stop and held.endswith(self._matched_stop):
            held = held[: -len(self._matched_stop)]
        return self._text_out(held) if held else []

    def _text_out(self, piece: str) -> list[Event]:
        if self._open != "text":
            if not piece.strip():
                self._held_ws += piece  # never open a block for whitespace alone
                return []
            piece, self._held_ws = self._held_ws + piece, ""
            if self._last_kind == "thinking":
                piece = piece.lstrip()  # the blank line a template leaves after </think>
        events = self._switch_to("text", {"type": "text", "text": ""})
        self._parts.append(piece)
        self._out_chars += len(piece)
        if self._stop_sequences:  # only read to recognise a trailing stop sequence
            self._text_tail = (self._text_tail + piece)[-_TAIL:]
        return events + [self._delta({"type": "text_delta", "text": piece})]

    def _tool_fragment(self, fragment: dict[str, Any]) -> list[Event]:
        events = self._segments(self._splitter.settle())  # held content was text, before the call
        call = self._calls.call_for(fragment)
        apply_fragment(call, fragment)
        if call is self._open_call:
            return events + self._send_arguments(call)
        return events + self._advance()

    def _advance(self) -> list[Event]:
        """Open the next named call once the open one is complete (or none is open).

        A call without a name waits (item 32); fragments of a call that is not the open one
        are buffered in its `Call` until it gets its turn (item 33).
        """
        events: list[Event] = []
        while self._open_call is None or _finished(self._open_call):
            waiting = [c for c in self._calls.calls if c.block is None and c.name is not None]
            if not waiting:
                break
            events += self._open_tool(waiting[0])
            events += self._send_arguments(waiting[0])
        return events

    # -- blocks --------------------------------------------------------------------------
    def _switch_to(self, kind: str, start: dict[str, Any]) -> list[Event]:
        if self._open == kind:
            return []
        events = [] if kind == "text" else self._release_text()
        events += self._close_open()
        index = self.next_index
        self.next_index += 1
        self._open = self._last_kind = kind
        self.blocks.append(dict(start))
        payload = {"type": "content_block_start", "index": index, "content_block": start}
        return events + [("content_block_start", payload)]

    def _open_tool(self, call: Call) -> list[Event]:
        events = self._release_text() + self._close_open()  # one block per call
        call.block = self.next_index
        block = {"type": "tool_use", "id": self._ids.allocate(call.id),
                 "name": self._names.to_anthropic(call.name or ""), "input": {}}
        events += self._switch_to("tool", block)
        self._open_call = call
        return events

    def _send_arguments(self, call: Call) -> list[Event]:
        piece = call.take_pending()
        if not piece:
            return []
        self._out_chars += len(piece)
        return [self._delta({"type": "input_json_delta", "partial_json": piece})]

    def _close_open(self) -> list[Event]:
        if self._open is None:
            return []
        events: list[Event] = []
        if self._open in ("text", "thinking"):
            self.blocks[-1][self._open] = "".join(self._parts)
            self._parts.clear()
        if self._open == "thinking":
            signature = thinking_signature(self.blocks[-1]["thinking"])
            self.blocks[-1]["signature"] = signature
            events.append(self._delta({"type": "signature_delta", "signature": signature}))
        elif self._open == "tool" and self._open_call is not None:
            events += self._finish_call(self._open_call)
        index = self.next_index - 1
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        self._open, self._open_call = None, None
        return events

    def _finish_call(self, call: Call) -> list[Event]:
        # the deltas must add up to one JSON object even when the backend's did not
        # (items 34, 39): `finish` completes, repairs or wraps them
        rest, arguments = call.finish()
        self.blocks[-1]["input"] = tool_input(arguments)
        if not rest:
            return []
        self._out_chars += len(rest)
        return [self._delta({"type": "input_json_delta", "partial_json": rest})]

    def _drain_calls(self) -> list[Event]:
        """At the end: finish the open call, then every buffered call in order."""
        events: list[Event] = []
        for call in self._calls.calls:
            if call.block is None and call.name is not None:
                events += self._open_tool(call)
                events += self._send_arguments(call)
        return events

    def _delta(self, delta: dict[str, Any]) -> Event:
        index = self.next_index - 1
        payload = {"type": "content_block_delta", "index": index, "delta": delta}
        return ("content_block_delta", payload)

    def _decide(self) -> None:
        has_calls = any(b.get("type") == "tool_use" for b in self.blocks)
        self.stop_reason, self.stop_sequence = map_stop_reason(
            self.finish_reason, has_tool_calls=has_calls, matched_stop=self._matched_stop)
        self.usage = anthropic_usage(self._raw_usage, input_fallback=self._input_tokens,
                                     output_fallback=estimate_output_tokens(self._out_chars))


def think_probe_chars(thinking_mode: str | None) -> int:
    """The `think_probe_chars` to use for a request whose `request.thinking_mode()` is given:
    no hold-back when thinking was turned off, since no reasoning is expected."""
    return 0 if thinking_mode == "off" else DEFAULT_PROBE_CHARS


def _stop_prefix_len(text: str, stop_sequences: list[str] | None) -> int:
    """Length of the longest end of `text` that is a stop sequence or the start of one."""
    longest = 0
    for stop in stop_sequences or []:
        for size in range(min(len(stop), len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def _finished(call: Call) -> bool:
    """Whether the open call can be closed for the next one (its arguments parse)."""
    return call.complete


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)
