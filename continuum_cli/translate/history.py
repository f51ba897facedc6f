"""Anthropic `messages` -> OpenAI chat messages (checklist §B–C, items 2, 7–9, 12, 14, 16, 48).

The invariants the backend's chat template needs, and that this module guarantees:

* every assistant `tool_calls` entry is answered by a `tool` message, immediately after it and
  in call order (item 7); a call the client never answered gets a synthetic answer (item 9);
* text, images and mid-conversation `role:"system"` turns that share a turn with tool results
  go in a user message *after* the tool messages (items 2, 7, 12);
* consecutive same-role messages are merged (item 8) and no message is empty (item 14);
* thinking goes to `reasoning_content`, `redacted_thinking` is dropped (item 16);
* server-tool history becomes tool_calls + tool messages (websearch.md §1.8).

A block of the wrong shape is a 400 naming it (`messages.3.content.0.input: must be an
object`), see `content`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.content import (
    Block,
    Part,
    arguments_json,
    as_string,
    block_type,
    is_blank,
    plain_text,
    text_part,
    tool_result_parts,
    user_parts,
)
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.server_blocks import (
    SERVER_CALL_TYPE,
    is_server_result,
    server_tool_call,
    server_tool_message,
)
from continuum_cli.wire.anthropic import Message

Msg = dict[str, Any]
SnippetOf = Callable[[Block], "str | None"]

INTERRUPTED = "Tool call was interrupted; no result was returned."
USER_SEP = "\n\n"


class _Assistant:
    """One assistant message under construction."""

    def __init__(self) -> None:
        self.text = ""
        self.reasoning: list[str] = []
        self.calls: list[Msg] = []

    def message(self) -> Msg | None:
        if not self.text.strip() and not self.calls:
            return None  # reasoning alone is not a turn a template can render
        msg: Msg = {"role": "assistant", "content": self.text if self.text.strip() else None}
        if self.reasoning:
            msg["reasoning_content"] = "\n\n".join(self.reasoning)
        if self.calls:
            msg["tool_calls"] = self.calls
        return msg


class History:
    """Feed Anthropic messages in order with `add`, then take `finish()`."""

    def __init__(self, names: ToolNameMap, snippet_of: SnippetOf | None = None) -> None:
        self.out: list[Msg] = []
        self._names = names
        self._snippet_of = snippet_of
        self._pending: list[str] = []  # tool_call ids of the last assistant, in call order
        self._deferred: list[Part] = []  # role:system text waiting for the tool results

    def add(self, msg: Message, where: str = "message") -> None:
        """`where` is the message's path in the request (`messages.3`), for error messages."""
        if msg.role == "assistant":
            self._close_pending({})
            self._add_assistant(msg.blocks(), f"{where}.content")
        elif msg.role == "user":
            self._add_user(msg.blocks(), f"{where}.content")
        else:
            self._add_system(msg.content, f"{where}.content")

    def finish(self) -> list[Msg]:
        self._close_pending({})
        return [_finalise(m) for m in self.out]

    # -- system ------------------------------------------------------------------------
    def _add_system(self, content: str | list[Block], where: str) -> None:
        text = plain_text(content, where=where)
        if is_blank(text):
            return  # Claude Code's --bare mode sends `content: []`
        if not text.lstrip().startswith("<system-reminder>"):
            # how Claude Code itself inlines this text for models without role:system turns
            text = f"<system-reminder>\n{text}\n</system-reminder>"
        if self._pending:
            self._deferred.append(text_part(text))  # keep assistant->tool adjacency (item 2)
        else:
            self._append_user([text_part(text)])

    # -- user --------------------------------------------------------------------------
    def _add_user(self, blocks: list[Block], where: str) -> None:
        results: dict[str, tuple[str, list[Part]]] = {}
        parts: list[Part] = []
        for i, block in enumerate(blocks):
            if block_type(block, f"{where}.{i}") == "tool_result":
                _merge_result(results, block, f"{where}.{i}")
            else:
                parts.extend(user_parts(block, f"{where}.{i}"))
        self._close_pending(results, parts)

    def _close_pending(
        self, results: dict[str, tuple[str, list[Part]]], parts: list[Part] | None = None
    ) -> None:
        images: list[Part] = []
        for call_id in self._pending:
            text, imgs = results.pop(call_id, (INTERRUPTED, []))
            self.out.append({"role": "tool", "tool_call_id": call_id, "content": text})
            images.extend(imgs)
        self._pending = []
        orphans = [_orphan_part(cid, text) for cid, (text, _) in results.items()]
        images.extend(img for _, imgs in results.values() for img in imgs)
        self._append_user(images + self._deferred + orphans + list(parts or []))
        self._deferred = []

    def _append_user(self, parts: list[Part]) -> None:
        if not parts:
            return
        last = self.out[-1] if self.out else None
        if last is not None and last["role"] == "user":
            last["content"].extend(parts)  # item 8
        else:
            self.out.append({"role": "user", "content": list(parts)})

    # -- assistant ---------------------------------------------------------------------
    def _add_assistant(self, blocks: list[Block], where: str) -> None:
        draft = _Assistant()
        client_calls: list[Msg] = []
        server_calls: dict[str, Block] = {}
        for i, block in enumerate(blocks):
            at = f"{where}.{i}"
            kind = block_type(block, at)
            if kind == "text":
                draft.text += _text_of(block, "text", at)
            elif kind == "thinking":
                if reasoning := _text_of(block, "thinking", at):
                    draft.reasoning.append(reasoning)
            elif kind == "tool_use":
                client_calls.append(self._client_call(block, at))
            elif kind == SERVER_CALL_TYPE:
                server_calls[str(block.get("id", ""))] = block
            elif is_server_result(block):
                _check_server_result(block, at)
                draft = self._server_pair(draft, block, server_calls)
        # client calls go last so their tool messages can follow (a server call's result is
        # already known and emitted right after it); unanswered server calls are dropped
        draft.calls.extend(client_calls)
        self._append_assistant(draft)
        self._pending = [c["id"] for c in client_calls]

    def _client_call(self, block: Block, where: str) -> Msg:
        arguments = block.get("input")
        if not isinstance(arguments, (dict, str, type(None))):
            raise InvalidRequest(f"{where}.input: must be an object")
        return {
            "id": as_string(block.get("id"), f"{where}.id"),
            "type": "function",
            "function": {
                "name": self._names.to_openai(as_string(block.get("name"), f"{where}.name")),
                "arguments": arguments_json(arguments),
            },
        }

    def _server_pair(self, draft: _Assistant, result: Block, calls: dict[str, Block]) -> _Assistant:
        call = calls.pop(str(result.get("tool_use_id", "")), None)
        if call is None:
            return draft  # a result without its call cannot be paired; drop it
        draft.calls.append(server_tool_call(call))
        self._append_assistant(draft)
        self.out.append(server_tool_message(result, call=call, snippet_of=self._snippet_of))
        return _Assistant()

    def _append_assistant(self, draft: _Assistant) -> None:
        msg = draft.message()
        if msg is None:
            return
        last = self.out[-1] if self.out else None
        if last is not None and last["role"] == "assistant" and "tool_calls" not in last:
            _merge_assistant(last, msg)  # item 8
        else:
            self.out.append(msg)


def _text_of(block: Block, key: str, where: str) -> str:
    """The text a text or thinking block carries; blank text is dropped (item 14)."""
    text = as_string(block.get(key), f"{where}.{key}")
    return "" if is_blank(text) else text


def _check_server_result(block: Block, where: str) -> None:
    content = block.get("content")
    if content is not None and not isinstance(content, (list, dict)):
        raise InvalidRequest(f"{where}.content: must be a list of results or an error object")


def _merge_result(results: dict[str, tuple[str, list[Part]]], block: Block, where: str) -> None:
    """Several tool_result blocks for one id are joined, not split (BerriAI/litellm#16711)."""
    call_id = as_string(block.get("tool_use_id"), f"{where}.tool_use_id")
    text, images = tool_result_parts(block, where)
    if call_id in results:
        old_text, old_images = results[call_id]
        text, images = f"{old_text}\n{text}", old_images + images
    results[call_id] = (text, images)


def _orphan_part(call_id: str, text: str) -> Part:
    # a result whose call is not in the history (e.g. after compaction): a `tool` message
    # would reference an unknown id and be rejected, so it travels as user text
    return text_part(f"Result of tool call {call_id}:\n{text}")


def _merge_assistant(into: Msg, msg: Msg) -> None:
    texts = [t for t in (into.get("content"), msg.get("content")) if t]
    into["content"] = "\n\n".join(texts) if texts else None
    reasoning = [r for r in (into.get("reasoning_content"), msg.get("reasoning_content")) if r]
    if reasoning:
        into["reasoning_content"] = "\n\n".join(reasoning)
    if "tool_calls" in msg:
        into["tool_calls"] = msg["tool_calls"]


def _finalise(msg: Msg) -> Msg:
    """User content becomes a plain string unless it carries images (items 5, 10)."""
    if msg["role"] != "user":
        return msg
    parts = msg["content"]
    if all(p["type"] == "text" for p in parts):
        return {"role": "user", "content": USER_SEP.join(p["text"] for p in parts)}
    return msg
