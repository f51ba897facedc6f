"""OpenAI chat completion -> Anthropic Message (checklist items 20, 30, 39–41).

Block order is always thinking, text, tool_use (item 30: thinking first; CCR's non-stream
path puts it last and Claude Code misreads the turn). The helpers for stop reasons, usage and
tool input are shared with the stream translator so both paths agree (item 39).
"""

from __future__ import annotations

import json
from typing import Any

from continuum_cli.translate.ids import ToolIdAllocator, thinking_signature
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.partial_json import INVALID_ARGUMENTS_KEY, loads, object_text
from continuum_cli.translate.think import split_think
from continuum_cli.translate.tool_text import ToolTextPolicy

Block = dict[str, Any]
# Rough output size when a backend reports no usage: ~4 characters per token.
CHARS_PER_OUTPUT_TOKEN = 4


def map_stop_reason(
    finish_reason: str | None, *, has_tool_calls: bool, matched_stop: str | None = None
) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) per checklist item 40."""
    if finish_reason == "length":
        return "max_tokens", None  # wins even when (truncated) tool calls were parsed
    if has_tool_calls:
        return "tool_use", None  # also when the backend said "stop" (Ollama, mlx, OVMS)
    if finish_reason == "content_filter":
        return "refusal", None
    if matched_stop is not None:
        return "stop_sequence", matched_stop
    return "end_turn", None


def matched_stop_sequence(
    backend_stop: Any, text: str, stop_sequences: list[str] | None
) -> str | None:
    """Which stop sequence ended the turn: vLLM reports it per choice (`stop_reason`, a
    string; an int is a stop *token*), other backends only leave it at the end of the text."""
    if not stop_sequences:
        return None
    if isinstance(backend_stop, str) and backend_stop in stop_sequences:
        return backend_stop
    return next((s for s in stop_sequences if s and text.endswith(s)), None)


def anthropic_usage(
    usage: dict[str, Any] | None, *, input_fallback: int = 0, output_fallback: int = 0
) -> dict[str, int]:
    """Item 41: input is net of cached tokens; the cache keys are always present."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = _int(details.get("cached_tokens"))
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    return {
        "input_tokens": max(0, _int(prompt) - cached) if prompt is not None else input_fallback,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": _int(completion) if completion is not None else output_fallback,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def estimate_output_tokens(chars: int) -> int:
    return max(1, -(-chars // CHARS_PER_OUTPUT_TOKEN)) if chars else 0


def tool_input(arguments: Any) -> dict[str, Any]:
    """`function.arguments` (JSON text, object, or double-encoded) -> a tool_use `input`.

    Invalid text is repaired or handed over under `INVALID_ARGUMENTS_KEY`, exactly as the
    stream translator ends a tool block (`partial_json`), so both paths agree (item 39).
    """
    if isinstance(arguments, dict):
        return arguments
    if arguments is None:
        return {}
    if not isinstance(arguments, str):
        return {INVALID_ARGUMENTS_KEY: json.dumps(arguments, ensure_ascii=False)}
    value: dict[str, Any] = loads(object_text(arguments))
    return value


def message_text(content: Any) -> str:
    """`message.content` as a string (some backends answer with a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def reasoning_text(message: dict[str, Any]) -> str:
    value = message.get("reasoning_content") or message.get("reasoning") or ""
    return value if isinstance(value, str) else ""


def to_anthropic_message(
    completion: dict[str, Any],
    *,
    model: str,
    message_id: str,
    tool_names: ToolNameMap,
    stop_sequences: list[str] | None,
    input_tokens: int | None = None,
    tool_text: ToolTextPolicy | None = None,
) -> dict[str, Any]:
    """A full Anthropic Message for a non-streaming completion.

    `input_tokens` is the estimate used when the backend reports no usage. `tool_text`
    says whether tool calls the backend wrote as text are recovered (item 23); None leaves
    the text alone.
    """
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    thinking, text = _thinking_and_text(message)
    matched = matched_stop_sequence(choice.get("stop_reason"), text, stop_sequences)
    if matched and text.endswith(matched):
        text = text[: -len(matched)]
    if tool_text is not None:
        message, text = _recover_text_calls(message, text, tool_text)
    calls = _tool_blocks(message, message_id, tool_names)
    blocks = _leading_blocks(thinking, text) + calls
    reason, sequence = map_stop_reason(choice.get("finish_reason"), has_tool_calls=bool(calls),
                                       matched_stop=matched)
    out_chars = len(thinking) + len(text) + sum(len(json.dumps(c["input"])) for c in calls)
    usage = anthropic_usage(completion.get("usage"), input_fallback=input_tokens or 0,
                            output_fallback=estimate_output_tokens(out_chars))
    return {
        "id": message_id, "type": "message", "role": "assistant", "model": model,
        "content": blocks, "stop_reason": reason, "stop_sequence": sequence, "usage": usage,
    }


def _recover_text_calls(message: dict[str, Any], text: str, policy: ToolTextPolicy
                        ) -> tuple[dict[str, Any], str]:
    """Tool calls written into the text become `tool_calls` (item 23), unless the backend
    already parsed some: then the text is what the model said around them."""
    if message.get("tool_calls") or message.get("function_call"):
        return message, text
    text, recovered = policy.apply(text)
    if recovered:
        message = {**message, "tool_calls": [c.openai(i) for i, c in enumerate(recovered)]}
    return message, text


def _thinking_and_text(message: dict[str, Any]) -> tuple[str, str]:
    tagged, text = split_think(message_text(message.get("content")))
    parts = [p for p in (reasoning_text(message).strip(), tagged) if p]
    thinking = "\n\n".join(parts)
    if thinking:
        text = text.lstrip()  # the blank line a template leaves after </think>
    return thinking, text


def _leading_blocks(thinking: str, text: str) -> list[Block]:
    blocks: list[Block] = []
    if thinking:
        blocks.append({"type": "thinking", "thinking": thinking,
                       "signature": thinking_signature(thinking)})
    if text.strip():  # never an empty text block (item 14)
        blocks.append({"type": "text", "text": text})
    return blocks


def _tool_blocks(message: dict[str, Any], message_id: str, names: ToolNameMap) -> list[Block]:
    calls = message.get("tool_calls") or []
    if not calls and isinstance(message.get("function_call"), dict):
        calls = [{"function": message["function_call"]}]  # legacy single-call shape
    ids = ToolIdAllocator(message_id)
    blocks = []
    for call in calls:
        fn = call.get("function") or {}
        blocks.append({
            "type": "tool_use",
            "id": ids.allocate(call.get("id")),
            "name": names.to_anthropic(str(fn.get("name", ""))),
            "input": tool_input(fn.get("arguments")),
        })
    return blocks
