"""Token counting for `/v1/messages/count_tokens` and `message_start` (checklist items 41, 45).

`render_for_count` flattens what the backend's tokenizer would see -- the system prompt (as
sent, without Claude Code's billing block), every tool's name, description and schema, and
every message's text -- so a backend `/tokenize` endpoint can count it exactly. Images are
not text; `image_tokens` adds them. `estimate_tokens` is the fallback when no tokenizer is
reachable, and never returns 0 for a request (a 0 breaks Claude Code's `/context` and
auto-compaction, item 45).

The heuristic, documented:

* text: `CHARS_PER_TOKEN` = 3.5 characters per token. BPE tokenizers give ~4 for English
  prose and ~3 for code and JSON; erring high makes Claude Code compact a little early
  rather than overflow the backend's window.
* images: `IMAGE_TOKENS` = 1600 each. Anthropic documents `tokens ≈ width × height / 750`
  and downsizes anything above ~1.15 megapixels, so a full-size image is ~1,600 tokens.
  A PDF that cannot be shown as text is counted like one image.
* `MESSAGE_OVERHEAD` = 4 tokens per message (role markers of a chat template) and
  `TOOL_OVERHEAD` = 8 per tool definition (the function wrapper).
"""

from __future__ import annotations

import json
import math
from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.builtin_tools import builtin_function
from continuum_cli.translate.content import Block, document_text
from continuum_cli.translate.request import system_prompt
from continuum_cli.wire.anthropic import MessagesRequest, ToolDef, walk_blocks

CHARS_PER_TOKEN = 3.5
IMAGE_TOKENS = 1600
MESSAGE_OVERHEAD = 4
TOOL_OVERHEAD = 8


def render_for_count(req: MessagesRequest) -> str:
    """The request as the text a tokenizer would see (images excluded)."""
    parts = [system_prompt(req)]
    parts += [_render_tool(t) for t in req.tools or []]
    for msg in req.messages:
        body = "\n".join(filter(None, (_render_block(b) for b in walk_blocks(msg.blocks()))))
        parts.append(f"{msg.role}: {body}")
    return "\n\n".join(p for p in parts if p)


def image_tokens(req: MessagesRequest) -> int:
    """Tokens for the images (and non-text documents) a request carries."""
    return IMAGE_TOKENS * sum(_image_count(b) for m in req.messages
                              for b in walk_blocks(m.blocks()))


def estimate_tokens(req: MessagesRequest) -> int:
    """The documented heuristic above; at least 1."""
    text = math.ceil(len(render_for_count(req)) / CHARS_PER_TOKEN)
    overhead = MESSAGE_OVERHEAD * len(req.messages) + TOOL_OVERHEAD * len(req.tools or [])
    return max(1, text + image_tokens(req) + overhead)


def _render_tool(tool: ToolDef) -> str:
    description, schema = tool.description, tool.input_schema
    if tool.builtin_kind and not schema:  # what the backend is sent (translate/tools.py)
        description, schema = builtin_function(tool)
    lines = [tool.name]
    if description:
        lines.append(description)
    if schema:
        lines.append(json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines)


def _render_block(block: Block) -> str:
    """One block's text; the blocks of a tool_result's content list come separately, from
    `walk_blocks` (no recursion: nesting is the client's to choose)."""
    kind = block.get("type")
    if kind == "tool_use" or kind == "server_tool_use":
        arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
        return f"{block.get('name', '')} {arguments}"
    if kind == "tool_result":
        content = block.get("content")
        return content if isinstance(content, str) else ""
    if kind == "thinking":
        return str(block.get("thinking") or "")
    if kind == "document":
        return _document_or_empty(block)
    if kind == "web_search_tool_result":
        return json.dumps(block.get("content"), ensure_ascii=False)
    text = block.get("text")
    return text if isinstance(text, str) else ""


def _document_or_empty(block: Block) -> str:
    return "" if _unreadable(block) else document_text(block)


def _unreadable(block: Block) -> bool:
    """A document with no text form (a PDF): counted as an image by `_image_count`."""
    try:
        document_text(block)
    except InvalidRequest:
        return True
    return False


def _image_count(block: Block) -> int:
    kind = block.get("type")
    if kind == "image":
        return 1
    if kind == "document":
        return 1 if _unreadable(block) else 0
    return 0
