"""Token counts read from an answer as it leaves the router, for both protocols.

`UsageObserver.feed(chunk)` takes the bytes sent to the client (a JSON body or SSE frames);
`result()` gives the counts. A stream that ends early is counted from what it produced: the
characters of its text, thinking and tool-input deltas (about 4 per token), unless a usage
record arrived. Cheap on the hot path: only data lines that can carry usage or deltas are
parsed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from continuum_cli.wire.json_text import loads as bounded_loads

CHARS_PER_TOKEN = 4.0  # the same rough rate the translator uses for unreported output


@dataclass
class Counts:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    web_searches: int = 0
    reported: bool = False  # a usage record was seen (else: estimated from output chars)


class UsageObserver:
    def __init__(self, scale: float | None = None) -> None:
        self.scale = scale  # backends[].scale_usage_to factor: reported counts are scaled
        self.counts = Counts()
        self._chars = 0
        self._buffer = b""

    # -- whole bodies --------------------------------------------------------------------
    def feed_body(self, body: bytes) -> None:
        try:
            data = bounded_loads(body)
        except (ValueError, UnicodeDecodeError):
            return
        if isinstance(data, dict) and isinstance(data.get("usage"), dict):
            self._usage(data["usage"])

    # -- SSE -----------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        data = self._buffer + chunk
        lines = data.split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            if b'"usage"' in line:
                self._line(line[5:].strip())
            elif b'delta"' in line:  # most of a stream: counted without parsing JSON
                self._chars += delta_chars(line)

    def _line(self, raw: bytes) -> None:
        try:
            data = bounded_loads(raw)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(data, dict):
            return
        if data.get("type") == "message_start":  # its output_tokens is a placeholder
            usage = (data.get("message") or {}).get("usage")
            if isinstance(usage, dict):
                self._usage(usage, output=False)
        elif isinstance(data.get("usage"), dict):
            self._usage(data["usage"])
        self._chars += _delta_chars(data)

    def _usage(self, usage: dict[str, Any], output: bool = True) -> None:
        c = self.counts
        if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI
            details = usage.get("prompt_tokens_details")
            cached = _int(details.get("cached_tokens") if isinstance(details, dict) else 0)
            c.cached_tokens = self._unscale(cached)
            c.input_tokens = self._unscale(max(0, _int(usage.get("prompt_tokens")) - cached))
            c.output_tokens = self._unscale(_int(usage.get("completion_tokens")))
            c.reported = "completion_tokens" in usage
            return
        # Anthropic: message_start carries input, message_delta the cumulative totals
        if "input_tokens" in usage:
            c.input_tokens = self._unscale(_int(usage.get("input_tokens")))
        if "cache_read_input_tokens" in usage:
            c.cached_tokens = self._unscale(_int(usage.get("cache_read_input_tokens")))
        server = usage.get("server_tool_use") or {}
        if isinstance(server, dict) and "web_search_requests" in server:
            c.web_searches = _int(server.get("web_search_requests"))
        if output and "output_tokens" in usage:
            c.output_tokens = self._unscale(_int(usage.get("output_tokens")))
            c.reported = True

    def result(self) -> Counts:
        if not self.counts.reported and self._chars:
            self.counts.output_tokens = math.ceil(self._chars / CHARS_PER_TOKEN)
        return self.counts

    def _unscale(self, value: int) -> int:
        return round(value / self.scale) if self.scale else value


_MARKERS = (b'"text":"', b'"thinking":"', b'"partial_json":"', b'"content":"',
            b'"reasoning_content":"', b'"arguments":"')


def delta_chars(line: bytes) -> int:
    """Produced characters in one SSE data line, found with byte searches: the string value
    after the first delta marker (escapes count as written; an estimate, like ~4 per token)."""
    for marker in _MARKERS:
        start = line.find(marker)
        if start < 0:
            continue
        start += len(marker)
        end = line.find(b'"', start)
        while end > 0 and line[end - 1] == 0x5C:  # an escaped quote: look further
            end = line.find(b'"', end + 1)
        return max(0, (end if end >= 0 else len(line)) - start)
    return 0


def _delta_chars(data: dict[str, Any]) -> int:
    """Characters of produced output in one SSE event (either protocol)."""
    delta = data.get("delta")
    if isinstance(delta, dict):  # Anthropic content_block_delta
        return sum(len(delta.get(k) or "") for k in ("text", "thinking", "partial_json")
                   if isinstance(delta.get(k), str))
    total = 0
    for choice in data.get("choices") or ():  # OpenAI chunk
        d = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(d, dict):
            total += len(d.get("content") or "") + len(d.get("reasoning_content") or "")
            for call in d.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    total += len(fn.get("arguments") or "")
    return total


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON 1e400
        return 0


def estimate_openai_tokens(body: dict[str, Any]) -> int:
    """The router's own input count for an OpenAI chat request: the characters of its
    messages and tools at 3.5 per token (the rate of translate/tokens.py), at least 1."""
    size = 0
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            size += _text_size(message.get("content")) + 16  # role and template markers
    if body.get("tools"):
        size += len(json.dumps(body["tools"], separators=(",", ":")))
    return max(1, math.ceil(size / 3.5))


def _text_size(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(_text_size(part.get("text")) if isinstance(part, dict) else 0
                   for part in content)
    return 0
