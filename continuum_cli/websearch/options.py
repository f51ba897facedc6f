"""What a request asks of the web_search server tool, read once (websearch.md §1.2, §1.9).

Pure: the tool definition's options (`max_uses`, domain lists, `user_location`), Claude
Code's WebSearch sub-request pattern, the `web_search` function offered to the backend
model, and the tool_choice for each model turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from continuum_cli.backends.profiles import BackendProfile
from continuum_cli.errors import InvalidRequest
from continuum_cli.websearch.blocks import TOOL_NAME, normalize_domains
from continuum_cli.websearch.providers.base import UserLocation
from continuum_cli.wire.anthropic import MessagesRequest, ToolDef

SERVER_TOOL_PREFIX = "web_search_"
# Claude Code's sub-request text (websearch.md §1.9; REPORT.md §7.1)
_CLAUDE_CODE_QUERY = re.compile(r"^\s*Perform a web search for the query:\s*(.*?)\s*$", re.S)

WEB_SEARCH_FUNCTION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Search the web. Returns the top results (title, URL, age, snippet). Use it for "
            "current events, recent facts, or anything you are not sure about."
        ),
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "The search query"}},
            "required": ["query"],
        },
    },
}


@dataclass(frozen=True)
class SearchOptions:
    name: str = TOOL_NAME
    max_uses: int | None = None
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    user_location: UserLocation | None = None


def is_web_search_tool(tool: ToolDef) -> bool:
    """Any version of the server tool (§1.1: accept every `web_search_*`). A custom tool
    (Claude Code's own client tool `WebSearch` has an `input_schema`) never matches."""
    return str(tool.type or "").startswith(SERVER_TOOL_PREFIX)


def search_options(req: MessagesRequest) -> SearchOptions:
    """The first web_search server tool's options; both domain lists -> 400 (§1.2)."""
    position, tool = next((i, t) for i, t in enumerate(req.tools or []) if is_web_search_tool(t))
    data = tool.model_dump()
    allowed = normalize_domains(_strings(data.get("allowed_domains")))
    blocked = normalize_domains(_strings(data.get("blocked_domains")))
    if allowed and blocked:
        raise InvalidRequest(
            f"tools.{position}: allowed_domains and blocked_domains cannot both be set; "
            "use one of them"
        )
    location = data.get("user_location")
    return SearchOptions(
        name=tool.name or TOOL_NAME,
        max_uses=_max_uses(data.get("max_uses"), position),
        allowed_domains=allowed,
        blocked_domains=blocked,
        user_location=UserLocation.from_mapping(location if isinstance(location, dict) else None),
    )


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _max_uses(value: Any, position: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"tools.{position}.max_uses: must be a non-negative integer")
    return value


def claude_code_query(req: MessagesRequest) -> str | None:
    """The query of Claude Code's WebSearch sub-request, or None for any other request.

    The pattern (§1.9): one user message "Perform a web search for the query: <q>" and one
    tool, the web_search server tool. tool_choice may be `auto` or forced; the system
    prompt changes between releases, so it is not part of the check.
    """
    tools = req.tools or []
    if len(req.messages) != 1 or len(tools) != 1 or not is_web_search_tool(tools[0]):
        return None
    message = req.messages[0]
    if message.role != "user":
        return None
    text = "".join(str(b.get("text", "")) for b in message.blocks() if b.get("type") == "text")
    match = _CLAUDE_CODE_QUERY.match(text)
    return match.group(1) if match else None


def first_tool_choice(req: MessagesRequest, profile: BackendProfile, *, forced: bool) -> Any:
    """tool_choice for the first model turn: forced to web_search when the request forces
    it (or `forced`, Claude Code's sub-request), else the request's own choice mapped."""
    choice = req.tool_choice or {}
    kind, name = choice.get("type"), choice.get("name")
    named = {"type": "function", "function": {"name": TOOL_NAME}}
    if forced or (kind == "tool" and name == TOOL_NAME):
        return named
    if kind == "any":
        if not req.custom_tools():
            return named
        return "required" if profile.honours_required_tool_choice else "auto"
    if kind == "none":
        return "none"
    if kind == "tool":
        return {"type": "function", "function": {"name": str(name)}}
    return "auto"
