"""Tool definitions and tool_choice for OpenAI backends (checklist §D, items 17–19).

Server tools (`web_search_*`, `web_fetch_*`, ...) are not functions: they are stripped here
and emulated by the websearch module (item 48). Anthropic-defined client tools (`bash_*`,
`text_editor_*`, ...) are functions with Anthropic's schemas (translate/builtin_tools.py).
Deferred tools (`defer_loading: true`) follow Anthropic's tool-search semantics: the model
only sees them once a `tool_reference` block in the conversation names them (REPORT.md
§4.3), so `DeferredToolPlaceholder` never reaches the backend and the prompt stays small.
"""

from __future__ import annotations

from typing import Any

from continuum_cli.backends.profiles import BackendProfile
from continuum_cli.translate.builtin_tools import builtin_function
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.wire.anthropic import MessagesRequest, ToolDef

Schema = dict[str, Any]


def referenced_tools(req: MessagesRequest) -> set[str]:
    """Names loaded through ToolSearch (`tool_reference` blocks, also inside tool results)."""
    names: set[str] = set()
    for msg in req.messages:
        for block in msg.blocks():
            inner = block.get("content") if block.get("type") == "tool_result" else None
            for b in [block, *(inner if isinstance(inner, list) else [])]:
                if isinstance(b, dict) and b.get("type") == "tool_reference":
                    names.add(str(b.get("tool_name", "")))
    return names


def exposed_tools(req: MessagesRequest) -> list[ToolDef]:
    """Custom tools the model may call now."""
    loaded = referenced_tools(req)
    return [
        t for t in req.custom_tools()
        if not getattr(t, "defer_loading", False) or t.name in loaded
    ]


def openai_tools(tools: list[ToolDef], names: ToolNameMap) -> list[dict[str, Any]]:
    """`{name, description, input_schema}` -> `{"type":"function","function":{...}}` (item 17)."""
    return [_function(t, names) for t in tools]


def _function(tool: ToolDef, names: ToolNameMap) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": names.to_openai(tool.name)}
    description, schema = tool.description, tool.input_schema
    if tool.builtin_kind and not schema:  # bash_*, text_editor_*, ...: Anthropic's schema
        description, schema = builtin_function(tool)
    if description:
        fn["description"] = description
    fn["parameters"] = normalise_schema(schema)
    return {"type": "function", "function": fn}


def normalise_schema(schema: Schema | None) -> Schema:
    """An object-rooted JSON schema with `properties`, as strict backends require.

    LM Studio rejects tools without `parameters.properties`; `required: null` breaks
    validators (anthropics/claude-code#49637); `$schema` is noise to grammar engines.
    Only the schema itself is copied, so `cache_control`/`defer_loading` (tool-level keys)
    never end up in `parameters`.
    """
    out = {k: v for k, v in (schema or {}).items() if k != "$schema"}
    if out.get("type") not in (None, "object"):
        return {"type": "object", "properties": {}}
    out["type"] = "object"
    if not isinstance(out.get("properties"), dict):
        out["properties"] = {}
    if "required" in out and not isinstance(out["required"], list):
        out["required"] = []
    return out


def openai_tool_choice(
    choice: dict[str, Any] | None,
    *,
    sent: set[str],
    names: ToolNameMap,
    profile: BackendProfile,
) -> dict[str, Any]:
    """Body fields for tool_choice / disable_parallel_tool_use (item 19).

    Nothing is sent when no tools are: backends reject a tool_choice without tools.
    """
    if not choice or not sent:
        return {}
    out: dict[str, Any] = {}
    value = _choice_value(choice, sent=sent, names=names, profile=profile)
    if value is not None:
        out["tool_choice"] = value
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out


def _choice_value(
    choice: dict[str, Any], *, sent: set[str], names: ToolNameMap, profile: BackendProfile
) -> Any:
    kind = choice.get("type")
    if kind == "auto" or kind == "none":
        return kind
    if kind == "any":
        # Ollama accepts "required" but does not enforce it; "auto" is the honest equivalent
        # there. The prompt still lists the tools.
        return "required" if profile.honours_required_tool_choice else "auto"
    if kind == "tool":
        name = names.to_openai(str(choice.get("name", "")))
        if name in sent:
            return {"type": "function", "function": {"name": name}}
    return None
