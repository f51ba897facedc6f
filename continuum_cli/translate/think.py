"""`<think>…</think>` reasoning inside `content`, for backends that do not split it out.

Checklist item 30: reasoning must become a thinking block that comes first; the tags may be
split across stream chunks; and when the chat template already opened `<think>` in the
prompt (DeepSeek-R1, Qwen3 thinking templates without a reasoning parser) the output holds
only the closing tag ("closing-tag-only", lobehub/lobehub#17453).

An opening tag counts only at the very start of the content (after whitespace): text that
merely mentions `<think>` later is left alone.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"
# How much leading content a stream may hold back while it cannot tell whether a lone
# `</think>` is coming (closing-tag-only case). Past this (~130 tokens), the content is text,
# so an ordinary answer from a model that does not think is delayed by a few seconds at most.
# Longer reasoning still works, degraded: it is shown as text and the stray tag is removed.
# Callers pass 0 when thinking is off (see `stream.think_probe_chars`).
DEFAULT_PROBE_CHARS = 512
# ... or for this long, whichever comes first: a slow backend must not keep the first words
# of an ordinary answer from the user for seconds. Time is the caller's (`now` per feed), so
# this module stays sans-I/O; a caller that passes no time gets the character bound alone.
DEFAULT_PROBE_SECONDS = 0.15

Segment = tuple[str, str]  # ("thinking" | "text", piece)


def split_think(content: str) -> tuple[str, str]:
    """(thinking, text) of a complete content string."""
    head = content.lstrip()
    if head.startswith(OPEN):
        thinking, sep, rest = head[len(OPEN):].partition(CLOSE)
        return thinking.strip(), rest if sep else ""
    if CLOSE in content and OPEN not in content:
        thinking, _, rest = content.partition(CLOSE)
        return thinking.strip(), rest
    return "", content


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkSplitter:
    """Incremental `split_think`: `feed()` pieces of content, `flush()` at the end."""

    def __init__(self, *, probe_chars: int = DEFAULT_PROBE_CHARS, thinking_open: bool = False,
                 probe_seconds: float = DEFAULT_PROBE_SECONDS):
        self._state = "thinking" if thinking_open else "start"
        self._buf = ""
        self._probe = probe_chars
        self._probe_seconds = probe_seconds
        self._since: float | None = None  # the caller's time of the first held piece

    @property
    def undecided(self) -> bool:
        return self._state == "start"

    def feed(self, piece: str, now: float | None = None) -> list[Segment]:
        self._buf += piece
        if self._state == "start":
            return self._feed_start(now)
        return self._drain()

    def expired(self, now: float | None) -> bool:
        """Whether held leading content has waited `probe_seconds` (the time bound)."""
        if now is None or self._state != "start":
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self._probe_seconds

    def settle(self) -> list[Segment]:
        """Stop probing: whatever is held is text (a tool call or a reasoning field arrived)."""
        if self._state != "start":
            return []
        self._state = "text"
        return self._drain()

    def flush(self) -> list[Segment]:
        if self._state == "start":
            thinking, text = split_think(self._buf)
            self._buf, self._state = "", "text"
            return [s for s in (("thinking", thinking), ("text", text)) if s[1]]
        kind, rest = self._state, self._buf
        self._buf = ""
        return [(kind, rest)] if rest else []

    def _feed_start(self, now: float | None) -> list[Segment]:
        expired = self.expired(now)
        head = self._buf.lstrip()
        if head.startswith(OPEN):
            self._state, self._buf = "thinking", head[len(OPEN):]
            return self._drain()
        if OPEN.startswith(head):
            return []  # still could be an opening tag (or only whitespace so far)
        if CLOSE in self._buf:
            self._state = "thinking"  # closing-tag-only: everything so far was reasoning
            return self._drain()
        if expired or len(self._buf) >= self._probe:
            self._state = "text"
            return self._drain()
        return []

    def _drain(self) -> list[Segment]:
        if "<" not in self._buf:  # no tag and no start of one: the per-chunk common case
            ready, self._buf = self._buf, ""
            return [(self._state, ready)] if ready else []
        out: list[Segment] = []
        while True:
            before, sep, after = self._buf.partition(CLOSE)
            if not sep:
                break
            if before:
                out.append((self._state, before))
            self._state, self._buf = "text", after  # a stray `</think>` in text is dropped
        keep = _partial_suffix(self._buf, CLOSE)
        ready, self._buf = self._buf[: len(self._buf) - keep], self._buf[len(self._buf) - keep:]
        if ready:
            out.append((self._state, ready))
        return out
