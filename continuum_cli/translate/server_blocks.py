"""Server-tool history (`server_tool_use` + `web_search_tool_result`) as OpenAI messages.

websearch.md §1.8 "Option A": a server call becomes an assistant `tool_calls` entry (function
`web_search`) and its result becomes the `tool` message answering it, rendered as text the
model can read (title, URL, page age, and a snippet when the caller can decode one from the
opaque `encrypted_content`). The request translator uses the per-block helpers; the web-search
loop can call `server_blocks_to_openai` on the pair it just produced.

A `server_tool_use` without a result (the mixed-turn case, §1.6) has nothing to answer it and
is dropped by the callers rather than left as an unpaired call (§1.8 "In both options").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from continuum_cli.translate.partial_json import INVALID_ARGUMENTS_KEY, object_text

Block = dict[str, Any]
SnippetOf = Callable[[Block], "str | None"]

SERVER_CALL_TYPE = "server_tool_use"


def is_server_result(block: Block) -> bool:
    """`web_search_tool_result`, `web_fetch_tool_result`, ... (server-side results)."""
    kind = str(block.get("type", ""))
    return kind.endswith("_tool_result") and kind != "tool_result"


def server_tool_call(block: Block) -> dict[str, Any]:
    """The OpenAI `tool_calls` entry for one `server_tool_use` block."""
    return {
        "id": str(block.get("id", "")),
        "type": "function",
        "function": {
            "name": str(block.get("name") or "web_search"),
            "arguments": _arguments(block.get("input")),
        },
    }


def _arguments(value: Any) -> str:
    """Always the text of a JSON object: a text input is read as JSON text, any other
    non-object is carried under `_unparsed_arguments` (chat templates parse arguments as an
    object; `true` or `[1]` would make the backend answer 500)."""
    if isinstance(value, str):
        return object_text(value)
    if value is None or isinstance(value, dict):
        return json.dumps(value or {}, ensure_ascii=False)
    return json.dumps({INVALID_ARGUMENTS_KEY: json.dumps(value, ensure_ascii=False)},
                      ensure_ascii=False)


def server_tool_message(
    result: Block, *, call: Block | None = None, snippet_of: SnippetOf | None = None
) -> dict[str, Any]:
    """The `tool` message answering a server call with its rendered result."""
    return {
        "role": "tool",
        "tool_call_id": str(result.get("tool_use_id", "")),
        "content": render_server_result(result, call=call, snippet_of=snippet_of),
    }


def render_server_result(
    result: Block, *, call: Block | None = None, snippet_of: SnippetOf | None = None
) -> str:
    """Plain text for a server result block; never empty."""
    kind = result.get("type")
    content = result.get("content")
    if isinstance(content, dict) and str(content.get("type", "")).endswith("_error"):
        return f"{_tool_label(kind)} error: {content.get('error_code', 'unavailable')}"
    if kind == "web_search_tool_result":
        return _render_search(content, _query(call), snippet_of)
    if kind == "web_fetch_tool_result" and isinstance(content, dict):
        return _render_fetch(content)
    return json.dumps(content, ensure_ascii=False) if content else "(no result)"


def server_blocks_to_openai(
    blocks: Iterable[Block], *, snippet_of: SnippetOf | None = None
) -> list[dict[str, Any]]:
    """Turn `[text?, server_tool_use, *_tool_result, text?, ...]` into OpenAI messages.

    Text before a call rides on the assistant message that carries the call; text after the
    last result becomes a final assistant message. Calls without a result are dropped.
    """
    out: list[dict[str, Any]] = []
    text: list[str] = []
    calls: dict[str, Block] = {}
    for block in blocks:
        kind = block.get("type")
        if kind == "text" and str(block.get("text", "")).strip():
            text.append(str(block["text"]))
        elif kind == SERVER_CALL_TYPE:
            calls[str(block.get("id", ""))] = block
        elif is_server_result(block):
            call = calls.pop(str(block.get("tool_use_id", "")), None)
            if call is not None:
                out.append(_assistant("\n\n".join(text), [server_tool_call(call)]))
                out.append(server_tool_message(block, call=call, snippet_of=snippet_of))
                text = []
    if text:
        out.append(_assistant("\n\n".join(text), []))
    return out


def _assistant(text: str, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def _tool_label(kind: Any) -> str:
    return "Web fetch" if kind == "web_fetch_tool_result" else "Web search"


def _query(call: Block | None) -> str:
    if not call or not isinstance(call.get("input"), dict):
        return ""
    return str(call["input"].get("query", ""))


def _render_search(content: Any, query: str, snippet_of: SnippetOf | None) -> str:
    results = [r for r in content or [] if isinstance(r, dict)]
    head = f'Web search results for "{query}"' if query else "Web search results"
    if not results:
        return f"{head}: no results."
    lines = [head + ":", ""]
    for n, item in enumerate(results, 1):
        lines.extend(_render_hit(n, item, snippet_of))
    return "\n".join(lines).rstrip()


def _render_hit(n: int, item: Block, snippet_of: SnippetOf | None) -> list[str]:
    lines = [f"{n}. {item.get('title') or item.get('url', '')}", f"   URL: {item.get('url', '')}"]
    if item.get("page_age"):
        lines.append(f"   Page age: {item['page_age']}")
    snippet = snippet_of(item) if snippet_of else None
    if snippet:
        lines.append(f"   {snippet}")
    lines.append("")
    return lines


def _render_fetch(content: Block) -> str:
    doc = content.get("content") if isinstance(content.get("content"), dict) else {}
    source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    title = f" ({doc['title']})" if doc.get("title") else ""
    body = source.get("data") if source.get("type") == "text" else None
    head = f"Fetched {content.get('url', '')}{title}"
    return f"{head}:\n{body}" if body else head
