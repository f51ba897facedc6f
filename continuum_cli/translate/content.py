"""Anthropic content blocks -> OpenAI content parts (checklist §C, items 11–14, 21–22).

Parts are OpenAI chat content parts: `{"type":"text","text":...}` and
`{"type":"image_url","image_url":{"url":...}}`. `cache_control` never survives because parts
are built fresh, never copied from the inbound block (item 15).

Blocks are plain dicts (item 1: unknown fields and block types are tolerated), so every
accessor checks the shape of the fields it reads and answers a wrong one with a 400 naming it
(`messages.0.content.1.source: must be an object`), never an AttributeError that would be a
500 -- which Claude Code retries ten times. `where` is the path of the block in the request.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.partial_json import INVALID_ARGUMENTS_KEY, object_text

Block = dict[str, Any]
Part = dict[str, Any]

PDF_UNSUPPORTED = "PDF documents are not supported by this backend"
FILE_UNSUPPORTED = (
    "content that references an uploaded file (file_id) is not supported by continuum; "
    "send it inline instead"
)
EMPTY_TOOL_RESULT = "(no output)"


def text_part(text: str) -> Part:
    return {"type": "text", "text": text}


def is_blank(text: Any) -> bool:
    return not isinstance(text, str) or not text.strip()


# -- shape checks ---------------------------------------------------------------------------
def as_object(value: Any, where: str) -> Block:
    if value is None:
        raise InvalidRequest(f"{where}: field required")
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}: must be an object")
    return value


def as_string(value: Any, where: str) -> str:
    if value is None:
        raise InvalidRequest(f"{where}: field required")
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}: must be a string")
    return value


def optional_string(value: Any, where: str) -> str | None:
    return None if value is None else as_string(value, where)


def block_type(block: Block, where: str) -> str:
    """The `type` of a block; every block has one (unknown values are tolerated, item 1)."""
    return as_string(block.get("type"), f"{where}.type")


def content_blocks(content: Any, where: str) -> list[Block]:
    """A `content` list, checked to hold block objects (callers handle a plain string)."""
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: must be a string or a list of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict):
            raise InvalidRequest(f"{where}.{i}: must be an object")
    return content


# -- blocks -> parts ------------------------------------------------------------------------
def plain_text(content: str | list[Block] | None, sep: str = "\n\n", where: str = "content"
               ) -> str:
    """Text of a string or a list of text-ish blocks (system prompts, role:system turns)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    blocks = content_blocks(content, where)
    parts = (p for i, b in enumerate(blocks) for p in user_parts(b, f"{where}.{i}"))
    return sep.join(p["text"] for p in parts if p["type"] == "text")


def user_parts(block: Block, where: str = "content") -> list[Part]:
    """Parts for one block of a user turn. Blank text is dropped (item 14)."""
    kind = block_type(block, where)
    if kind == "image":
        return [image_part(block, where)]
    text = _block_text(block, kind, where)
    return [] if is_blank(text) else [text_part(text or "")]


def _block_text(block: Block, kind: str, where: str) -> str | None:
    if kind == "text":
        return as_string(block.get("text"), f"{where}.text")
    if kind == "document":
        return document_text(block, where)
    if kind == "tool_reference":
        # Claude Code's ToolSearch answer (REPORT.md §4.3); the schema is now in `tools`
        return f"Tool loaded: {block.get('tool_name', '')}"
    if kind == "search_result":
        return _search_result_text(block, where)
    if kind in ("thinking", "redacted_thinking"):
        return None
    # unknown block types are tolerated (item 1); keep any text they carry
    text = block.get("text")
    return text if isinstance(text, str) else None


def image_part(block: Block, where: str = "image") -> Part:
    """base64 -> data URL, url -> url (item 11)."""
    where = f"{where}.source"
    source = as_object(block.get("source"), where)
    kind = source.get("type")
    if kind == "base64":
        media = optional_string(source.get("media_type"), f"{where}.media_type") or "image/png"
        data = as_string(source.get("data"), f"{where}.data")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url":
        url = as_string(source.get("url"), f"{where}.url")
        if not url.strip():
            raise InvalidRequest(f"{where}.url: must not be empty")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "file":
        raise InvalidRequest(FILE_UNSUPPORTED)
    raise InvalidRequest(f"{where}.type: an image source must be 'base64' or 'url'")


def document_text(block: Block, where: str = "document") -> str:
    """Text documents become text; PDFs fail loudly, never silently dropped (item 13)."""
    source = as_object(block.get("source"), f"{where}.source")
    body = _document_body(source, f"{where}.source")
    title = optional_string(block.get("title"), f"{where}.title")
    context = optional_string(block.get("context"), f"{where}.context")
    head = "\n".join(x for x in (title and f"Document: {title}", context) if x)
    return f"{head}\n\n{body}" if head else body


def _document_body(source: Block, where: str) -> str:
    kind = source.get("type")
    media = str(source.get("media_type") or "")
    if kind == "text":
        return as_string(source.get("data"), f"{where}.data")
    if kind == "content":
        return nested_text(source.get("content"), f"{where}.content")
    if media == "application/pdf" or kind == "url":
        raise InvalidRequest(PDF_UNSUPPORTED)
    if kind == "base64" and media.startswith("text/"):
        return _decode_text(as_string(source.get("data"), f"{where}.data"), f"{where}.data")
    if kind == "file":
        raise InvalidRequest(FILE_UNSUPPORTED)
    media = media or "no media type"
    raise InvalidRequest(f"{where}: unsupported document source {kind!r} ({media})")


# blocks that hold content of their own: one level of them is read, never a nest (Anthropic
# allows only text and image blocks inside a document's or a search result's content)
_CONTAINERS = frozenset({"document", "search_result", "tool_result"})


def nested_text(content: Any, where: str) -> str:
    """The text of a document's (`source.type: content`) or a search result's content: a
    string, or its text blocks joined by newlines. Images there are not text; a document,
    search result or tool result nested inside is a 400, which also keeps a hostile nesting
    from recursing through this module."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for i, block in enumerate(content_blocks(content, where)):
        kind = block_type(block, f"{where}.{i}")
        if kind in _CONTAINERS:
            raise InvalidRequest(f"{where}.{i}: a {kind} block cannot be nested here; use "
                                 "text and image blocks")
        text = block.get("text")
        if kind == "image":
            image_part(block, f"{where}.{i}")  # checked, as everywhere; not text
        elif kind == "text":
            texts.append(as_string(text, f"{where}.{i}.text"))
        elif isinstance(text, str) and kind not in ("thinking", "redacted_thinking"):
            texts.append(text)  # unknown block types are tolerated (item 1)
    return "\n".join(t for t in texts if not is_blank(t))


def _decode_text(data: str, where: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where}: base64 data is not valid") from None


def _search_result_text(block: Block, where: str) -> str:
    lines = [str(block.get("title") or ""), f"Source: {block.get('source', '')}"]
    lines.append(nested_text(block.get("content"), f"{where}.content"))
    return "\n".join(x for x in lines if x)


def tool_result_parts(block: Block, where: str = "tool_result") -> tuple[str, list[Part]]:
    """(text, images) of a tool_result (items 12, 21, 22).

    The text goes in the `tool` message; images cannot (most backends only accept text
    there) and are returned separately for the user message that follows the tool messages.
    """
    content = block.get("content")
    if isinstance(content, str):
        text, images = content, []
    else:
        where = f"{where}.content"
        blocks = content_blocks(content if content is not None else [], where)
        parts = [p for i, b in enumerate(blocks) for p in user_parts(b, f"{where}.{i}")]
        images = [p for p in parts if p["type"] == "image_url"]
        text = "\n".join(p["text"] for p in parts if p["type"] == "text")
    if images:
        note = f"[{len(images)} image(s) attached in the next user message]"
        text = f"{text}\n{note}" if text.strip() else note
    if block.get("is_error"):
        # OpenAI has no error flag: keep the signal in the text (item 22)
        text = f"Error: {text}" if text.strip() else "Error"
    return (text if text.strip() else EMPTY_TOOL_RESULT), images


def arguments_json(value: Any) -> str:
    """OpenAI `function.arguments` for a tool_use `input` (always a JSON object text).

    A string `input` (some clients send the arguments as JSON text) goes through
    `object_text`: an object text is kept, a double-encoded or repairable one fixed, and
    anything else carried under `_unparsed_arguments` -- never forwarded as it is, because
    chat templates parse `arguments` as an object and a backend would answer 500."""
    if isinstance(value, str):
        return object_text(value)
    if value is None or isinstance(value, dict):
        return json.dumps(value or {}, ensure_ascii=False)
    return json.dumps({INVALID_ARGUMENTS_KEY: json.dumps(value, ensure_ascii=False)},
                      ensure_ascii=False)
