"""Anthropic Messages request -> OpenAI chat-completions request (checklist §B–F).

`to_openai_request` is the one entry point. It returns the exact JSON body for
`POST /chat/completions` plus the tool-name map the response path needs to undo name
sanitising (item 18).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from continuum_cli.backends.profiles import BackendProfile
from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.content import Block, user_parts
from continuum_cli.translate.history import History
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.tools import exposed_tools, openai_tool_choice, openai_tools
from continuum_cli.wire.anthropic import MessagesRequest

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
SYSTEM_SEP = "\n\n"
# Anthropic effort levels -> OpenAI reasoning_effort; "max"/"xhigh" have no portable peer
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


@dataclass(frozen=True)
class OpenAIRequest:
    body: dict[str, Any]
    tool_names: ToolNameMap = field(default_factory=ToolNameMap)
    # the last message was an assistant prefill; the reply is its continuation (item 10)
    prefill: bool = False


def to_openai_request(
    req: MessagesRequest,
    *,
    upstream_model: str,
    profile: BackendProfile,
    snippet_of: Callable[[Block], str | None] | None = None,
    max_tokens_cap: int | None = None,
) -> OpenAIRequest:
    """Translate `req` for a backend described by `profile`.

    `snippet_of` lets the web-search module decode a snippet from the opaque
    `encrypted_content` of results it minted, when such results are replayed in history.
    `max_tokens_cap`, when the caller knows the backend's window, is the room left after the
    prompt: `max_tokens` is clamped to it instead of letting the backend refuse (item 25).
    """
    tools = exposed_tools(req)
    names = ToolNameMap.build([t.name for t in tools] + _history_tool_names(req))
    messages = _messages(req, names, snippet_of)
    prefill = _is_prefill(req, messages)
    body: dict[str, Any] = {"model": upstream_model, "messages": messages}
    if tools:  # an empty `tools` list is rejected by some servers (item 17)
        body["tools"] = openai_tools(tools, names)
        sent = {t["function"]["name"] for t in body["tools"]}
        body.update(openai_tool_choice(req.tool_choice, sent=sent, names=names, profile=profile))
    body.update(_sampling(req, profile, max_tokens_cap))
    body.update(thinking_params(req, profile))
    body.update(_stream_params(req))
    if prefill and profile.continue_final_message:
        # vLLM/SGLang continue the last assistant message instead of starting a new one
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    return OpenAIRequest(body=body, tool_names=names, prefill=prefill)


def system_prompt(req: MessagesRequest) -> str:
    """The single system string: blocks joined, Claude Code's billing block dropped.

    `x-anthropic-billing-header: ...; cch=<hex>;` changes on every request and would defeat
    the backend's prefix cache (item 6); `cache_control` is dropped with the block dicts.
    """
    system = req.system
    if isinstance(system, str):
        return _strip_billing_line(system)
    parts = [
        p for i, b in enumerate(system or [])
        if not str(b.get("text", "")).lstrip().startswith(BILLING_HEADER_PREFIX)
        for p in user_parts(b, f"system.{i}")
    ]
    return SYSTEM_SEP.join(p["text"] for p in parts if p["type"] == "text")


def _strip_billing_line(text: str) -> str:
    if text.lstrip().startswith(BILLING_HEADER_PREFIX):
        return text.lstrip().partition("\n")[2].lstrip("\n")
    return text


def _messages(
    req: MessagesRequest, names: ToolNameMap, snippet_of: Callable[[Block], str | None] | None
) -> list[dict[str, Any]]:
    history = History(names, snippet_of)
    for n, msg in enumerate(req.messages):
        history.add(msg, f"messages.{n}")
    messages = history.finish()
    if not messages:
        raise InvalidRequest("messages: every message is empty; nothing to send to the model")
    system = system_prompt(req)
    if system.strip():
        messages.insert(0, {"role": "system", "content": system})  # item 5: one, first
    return messages


def _history_tool_names(req: MessagesRequest) -> list[str]:
    return [
        str(b.get("name", ""))
        for m in req.messages if m.role == "assistant"
        for b in m.blocks() if b.get("type") == "tool_use"
    ]


def _is_prefill(req: MessagesRequest, messages: list[dict[str, Any]]) -> bool:
    last = messages[-1] if messages else {}
    return (
        req.messages[-1].role == "assistant"
        and last.get("role") == "assistant"
        and "tool_calls" not in last
        and bool(last.get("content"))
    )


def _sampling(req: MessagesRequest, profile: BackendProfile, cap: int | None) -> dict[str, Any]:
    """Items 25–28. `metadata` is never forwarded (item 3: some backends reject it)."""
    out: dict[str, Any] = {}
    if req.max_tokens is not None:
        out["max_tokens"] = req.max_tokens if cap is None else max(1, min(req.max_tokens, cap))
    if req.stop_sequences:
        out["stop"] = list(req.stop_sequences)
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["top_p"] = req.top_p
    if req.top_k is not None and profile.accepts_top_k:
        out["top_k"] = req.top_k
    return out


def _stream_params(req: MessagesRequest) -> dict[str, Any]:
    if not req.stream:
        return {"stream": False}
    # usage arrives in a trailer chunk only when asked for (item 36)
    return {"stream": True, "stream_options": {"include_usage": True}}


def thinking_mode(req: MessagesRequest) -> str | None:
    """None (not specified), "off", or an OpenAI effort level (item 29)."""
    thinking = req.thinking or {}
    kind = thinking.get("type")
    if kind == "disabled":
        return "off"
    if kind not in ("enabled", "adaptive"):
        return None
    effort = (req.output_config or {}).get("effort")
    if isinstance(effort, str) and effort in _EFFORTS:
        return _EFFORTS[effort]
    return _budget_effort(thinking.get("budget_tokens"))


def _budget_effort(budget: Any) -> str:
    if not isinstance(budget, int):
        return "medium"
    if budget < 4096:
        return "low"
    return "medium" if budget < 16384 else "high"


def thinking_params(req: MessagesRequest, profile: BackendProfile) -> dict[str, Any]:
    """The backend's thinking knob. Absent `thinking` leaves the backend default alone."""
    mode = thinking_mode(req)
    knob = profile.thinking_knob
    if mode is None or knob == "none":
        return {}
    on = mode != "off"
    if knob == "chat_template_kwargs":  # Qwen3 / GLM / DeepSeek templates on vLLM, llama.cpp
        return {"chat_template_kwargs": {"enable_thinking": on}}
    if knob == "reasoning_effort":
        return {"reasoning_effort": mode if on else "none"}
    if knob == "think":
        # `think` is Ollama's native switch; its /v1 endpoint only turns thinking off with
        # reasoning_effort "none" (ollama/ollama#12004, #14820), so send both when disabling
        return {"think": True} if on else {"think": False, "reasoning_effort": "none"}
    return {}
