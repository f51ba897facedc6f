"""Tool calls a backend wrote as text, turned back into tool calls (checklist item 23).

A backend whose tool-call parser is missing or misconfigured (vLLM without
`--enable-auto-tool-choice --tool-call-parser …`, llama.cpp without `--jinja`, an Ollama
template without tools) answers a tool call as `content`: Qwen/Hermes style
`<tool_call>{"name": …, "arguments": …}</tool_call>` blocks, or a bare Llama-style
`{"name": "<tool>", "arguments"|"parameters": {…}}` object. Claude Code then prints JSON
instead of acting (musistudio/claude-code-router#376, ollama/ollama#15529).

Recovery is opt-in per backend (`backends[].recover_tool_calls`), only when the request
offered tools, and all-or-nothing: a malformed block leaves the whole text as it was. Both
paths use the same parser so they agree (item 39): `recover_tool_calls` on a finished answer,
`ToolTextRecovery` as a chunk filter in front of the stream translator. When the option is
off, a text tool call in a non-stream answer is logged once with the fix.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from continuum_cli.backends.profiles import profile_for
from continuum_cli.wire.json_text import loads as bounded_loads

if TYPE_CHECKING:
    from continuum_cli.config.models import Backend

log = logging.getLogger("continuum.translate")

Chunk = dict[str, Any]
OPEN, CLOSE = "<tool_call>", "</tool_call>"
# an unclosed last block counts: the closing tag is a stop token for some templates
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)
_ARGUMENT_KEYS = ("arguments", "parameters")
_BARE_KEYS = frozenset({"name", *_ARGUMENT_KEYS})
# how a bare call may begin (whitespace removed); anything else starting with `{` is text
_BARE_HEADS = ('{"name"', '{"arguments"', '{"parameters"')
_BARE_NAME = re.compile(r'^\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
# leading content judged without a verdict after this many characters is text
_MAX_UNDECIDED = 512


@dataclass(frozen=True)
class TextToolCall:
    name: str
    arguments: str  # JSON text, as OpenAI's `function.arguments`

    def openai(self, index: int) -> dict[str, Any]:
        """The call as an OpenAI `tool_calls` entry (no id: the translator mints one)."""
        return {"index": index, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


def recover_tool_calls(text: str, offered: Collection[str]) -> tuple[str, list[TextToolCall]]:
    """(remaining text, calls) for an answer's text; `(text, [])` when it holds no call."""
    if OPEN in text:
        return _tagged(text)
    call = _bare_call(_json_value(text.strip()), offered)
    return ("", [call]) if call else (text, [])


def _tagged(text: str) -> tuple[str, list[TextToolCall]]:
    calls: list[TextToolCall] = []
    kept: list[str] = []
    last = 0
    for match in _TAGGED.finditer(text):
        call = _call(_json_value(match.group(1)))
        if call is None:
            return text, []  # all-or-nothing: never half-convert an answer
        calls.append(call)
        kept.append(text[last:match.start()])
        last = match.end()
    kept.append(text[last:])
    return "".join(kept).strip(), calls


def _json_value(text: str) -> Any:
    try:
        return bounded_loads(text)
    except ValueError:
        return None


def _call(value: Any) -> TextToolCall | None:
    """A call from a decoded `{"name": …, "arguments"|"parameters": …}` object."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) \
            or not value["name"]:
        return None
    args = next((value[k] for k in _ARGUMENT_KEYS if k in value), None)
    if args is None:
        return TextToolCall(value["name"], "{}")
    text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return TextToolCall(value["name"], text)


def _bare_call(value: Any, offered: Collection[str]) -> TextToolCall | None:
    """A bare object is a call only with an offered name, arguments, and no other keys:
    an answer that happens to be JSON (a package.json) stays text."""
    if not isinstance(value, dict) or not set(value) <= _BARE_KEYS \
            or not any(k in value for k in _ARGUMENT_KEYS) or value.get("name") not in offered:
        return None
    return _call(value)


@dataclass(frozen=True)
class ToolTextPolicy:
    """What to do about text tool calls for one request to one backend."""

    backend: str
    recover: bool
    fix: str
    offered: frozenset[str]

    @classmethod
    def for_request(cls, backend: Backend, body: Mapping[str, Any]) -> ToolTextPolicy:
        """`body` is the OpenAI request sent: its `tools` are the names the model saw."""
        return cls(backend.name, backend.recover_tool_calls,
                   profile_for(backend.type).tool_parser_fix, offered_names(body))

    def apply(self, text: str) -> tuple[str, list[TextToolCall]]:
        """Recover when enabled; otherwise leave the text and say once how to fix it."""
        if not self.offered:
            return text, []
        remaining, calls = recover_tool_calls(text, self.offered)
        if calls and not self.recover:
            log.warning("backend %s answered a tool call as text, so the client will not run "
                        "it; fix: %s (or set recover_tool_calls: true on this backend)",
                        self.backend, self.fix)
            return text, []
        return remaining, calls


def offered_names(body: Mapping[str, Any]) -> frozenset[str]:
    """Function names in an OpenAI request's `tools`."""
    tools = body.get("tools") or []
    return frozenset(
        str(t["function"]["name"]) for t in tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
        and t["function"].get("name")
    )


class ToolTextRecovery:
    """Chunk filter: `feed(chunk) -> chunks`, `finish() -> chunks` (sans-I/O).

    Chunks pass untouched until the first content; content that may open a text tool call
    (`<tool_call>`, or `{"name"`/`{"arguments"`/`{"parameters"`) is held with its chunks
    until it is clearly text (all held chunks are released unchanged) or the answer ends,
    when `recover_tool_calls` decides on the whole text: the calls go out as one OpenAI
    `tool_calls` delta (and any other text as one content delta) before the finishing
    chunk, whose content is removed with that of every held chunk. In text, a `<tool_call>`
    may still come ("I'll check.\n<tool_call>…", as the non-stream path finds it): a chunk
    ending in what may be the start of the tag keeps that end back until the next one.
    """

    def __init__(self, offered: Collection[str]) -> None:
        self._offered = frozenset(offered)
        # start -> holding -> committed -> passing; holding/start -> text -> committed
        self._state = "start"
        self._held: list[Chunk] = []
        self._parts: list[str] = []
        self._pending = ""  # text that may be the start of `<tool_call>`
        self.recovered = 0  # calls recovered so far

    @classmethod
    def for_request(cls, backend: Backend, body: Mapping[str, Any]
                    ) -> ToolTextRecovery | None:
        """A filter when the backend opted in and the request offered tools, else None."""
        names = offered_names(body)
        return cls(names) if backend.recover_tool_calls and names else None

    def feed(self, chunk: Chunk) -> list[Chunk]:
        """The chunks to hand on now for one upstream chunk (none while holding)."""
        if self._state == "passing":
            return [chunk]
        delta = _delta(chunk)
        if delta.get("tool_calls"):  # the backend's own parser works: step aside
            return self._release([chunk])
        content = _content(delta)
        if self._state == "text":
            return self._text(chunk, content)
        if self._state == "start" and not content:
            return [chunk]
        self._held.append(chunk)
        self._parts.append(content)
        if self._state != "committed":
            self._state = _verdict("".join(self._parts), self._offered)
            if self._state == "text":  # the last piece may still hold (part of) the tag
                last, text = self._held.pop(), self._parts[-1]
                return self._release([], then="text") + self._text(last, text)
        return self.finish() if _finish_reason(chunk) else []

    def _text(self, chunk: Chunk, content: str) -> list[Chunk]:
        """A chunk after plain text began: pass it, unless it holds (part of) the tag."""
        text = self._pending + content
        at = text.find(OPEN)
        if at < 0:
            keep = 0 if _finish_reason(chunk) else _open_prefix_len(text)
            self._pending = text[len(text) - keep:] if keep else ""
            emit = text[:len(text) - keep]
            return [chunk] if emit == content else [_with_content(chunk, emit)]
        self._pending, self._state = "", "committed"
        self._held, self._parts = [_with_content(chunk, text[at:])], [text[at:]]
        before = [_chunk({"content": text[:at]})] if text[:at] else []
        return before + (self.finish() if _finish_reason(chunk) else [])

    def finish(self) -> list[Chunk]:
        """Decide on whatever is held (the stream ended); call once at the end."""
        if self._pending:
            pending, self._pending = self._pending, ""
            return [_chunk({"content": pending})]
        if not self._held:
            return []
        remaining, calls = recover_tool_calls("".join(self._parts), self._offered)
        if not calls:
            return self._release([])
        self.recovered += len(calls)
        stripped = [_without_content(c) for c in self._held]
        last = stripped.pop() if _finish_reason(self._held[-1]) else None
        made = ([_chunk({"content": remaining})] if remaining else []) + [
            _chunk({"tool_calls": [c.openai(i) for i, c in enumerate(calls)]})]
        self._held, self._parts, self._state = [], [], "passing"
        return stripped + made + ([last] if last else [])

    def _release(self, extra: list[Chunk], then: str = "passing") -> list[Chunk]:
        pending = [_chunk({"content": self._pending})] if self._pending else []
        out = self._held + pending + extra
        self._held, self._parts, self._pending, self._state = [], [], "", then
        return out


def _verdict(text: str, offered: frozenset[str]) -> str:
    """"holding" (cannot tell yet), "committed" (a call: hold to the end) or "text"."""
    head = text.lstrip()
    if not head:
        return "holding" if len(text) < _MAX_UNDECIDED else "text"
    if head.startswith(OPEN):
        return "committed"
    if head.startswith("<"):
        return "holding" if OPEN.startswith(head) else "text"
    if not head.startswith("{") or len(text) >= _MAX_UNDECIDED:
        return "text"
    return _bare_verdict(head, offered)


def _bare_verdict(head: str, offered: frozenset[str]) -> str:
    squeezed = "".join(head[:64].split())
    if not any(h.startswith(squeezed) or squeezed.startswith(h) for h in _BARE_HEADS):
        return "text"
    if not squeezed.startswith('{"name"'):
        return "committed" if len(squeezed) >= len('{"parameters"') else "holding"
    match = _BARE_NAME.match(head)
    if match is None:
        return "holding"
    return "committed" if _json_value(f'"{match.group(1)}"') in offered else "text"


def _open_prefix_len(text: str) -> int:
    """Length of the longest end of `text` that `<tool_call>` starts with (0 if none)."""
    return next((k for k in range(len(OPEN) - 1, 0, -1) if text.endswith(OPEN[:k])), 0)


def _delta(chunk: Chunk) -> dict[str, Any]:
    choice = _choice(chunk)
    delta = choice.get("delta") if choice else None
    return delta if isinstance(delta, dict) else {}


def _choice(chunk: Chunk) -> dict[str, Any] | None:
    for choice in chunk.get("choices") or []:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _content(delta: dict[str, Any]) -> str:
    content = delta.get("content")
    return content if isinstance(content, str) else ""


def _finish_reason(chunk: Chunk) -> bool:
    choice = _choice(chunk)
    return bool(choice and choice.get("finish_reason"))


def _without_content(chunk: Chunk) -> Chunk:
    return _with_content(chunk, None)


def _with_content(chunk: Chunk, text: str | None) -> Chunk:
    """A copy of `chunk` whose first choice's content is `text` (None: no content key)."""
    def edit(delta: dict[str, Any]) -> dict[str, Any]:
        rest = {k: v for k, v in delta.items() if k != "content"}
        return rest if text is None else {**rest, "content": text}

    choices = [
        {**c, "delta": edit(c["delta"])}
        if isinstance(c, dict) and c.get("index", 0) == 0 and isinstance(c.get("delta"), dict)
        else c
        for c in chunk.get("choices") or []
    ]
    return {**chunk, "choices": choices}


def _chunk(delta: dict[str, Any]) -> Chunk:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}


def recovered_chunks(chunks: AsyncIterator[Chunk], recovery: ToolTextRecovery | None
                     ) -> AsyncIterator[Chunk]:
    """`chunks` through `recovery` (unchanged when it is None). Pure: no I/O of its own."""
    return chunks if recovery is None else _filtered(chunks, recovery)


async def _filtered(chunks: AsyncIterator[Chunk], recovery: ToolTextRecovery
                    ) -> AsyncIterator[Chunk]:
    async for chunk in chunks:
        for out in recovery.feed(chunk):
            yield out
    for out in recovery.finish():
        yield out
