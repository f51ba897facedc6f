"""Anthropic content blocks -> OpenAI content parts (checklist §C, items 11–14, 21–22).

Parts are OpenAI chat content parts: `{"type":"text","text":...}` and
`{"type":"image_url","image_url":{"url":...}}`. `cache_control` never survives because parts
are built fresh, never copied from the inbound block (item 15).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from continuum_cli.errors import InvalidRequest

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


def plain_text(content: str | list[Block] | None, sep: str = "\n\n") -> str:
    """Text of a string or a list of text-ish blocks (system prompts, role:system turns)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = [p["text"] for b in content for p in user_parts(b) if p["type"] == "text"]
    return sep.join(texts)


def user_parts(block: Block) -> list[Part]:
    """Parts for one block of a user turn. Blank text is dropped (item 14)."""
    kind = block.get("type")
    if kind == "image":
        return [image_part(block)]
    text = _block_text(block)
    return [] if is_blank(text) else [text_part(text)]


def _block_text(block: Block) -> str | None:
    kind = block.get("type")
    if kind == "text":
        return block.get("text")
    if kind == "document":
        return document_text(block)
    if kind == "tool_reference":
        # Claude Code's ToolSearch answer (REPORT.md §4.3); the schema is now in `tools`
        return f"Tool loaded: {block.get('tool_name', '')}"
    if kind == "search_result":
        return _search_result_text(block)
    if kind in ("thinking", "redacted_thinking"):
        return None
    # unknown block types are tolerated (item 1); keep any text they carry
    text = block.get("text")
    return text if isinstance(text, str) else None


def image_part(block: Block) -> Part:
    """base64 -> data URL, url -> url (item 11)."""
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "base64":
        media = source.get("media_type") or "image/png"
        url = f"data:{media};base64,{source.get('data', '')}"
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "url" and source.get("url"):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    if kind == "file":
        raise InvalidRequest(FILE_UNSUPPORTED)
    raise InvalidRequest("image block: source must be base64 or url")


def document_text(block: Block) -> str:
    """Text documents become text; PDFs fail loudly, never silently dropped (item 13)."""
    source = block.get("source") or {}
    body = _document_body(source)
    title = block.get("title")
    context = block.get("context")
    head = "\n".join(x for x in (title and f"Document: {title}", context) if x)
    return f"{head}\n\n{body}" if head else body


def _document_body(source: Block) -> str:
    kind = source.get("type")
    media = str(source.get("media_type") or "")
    if kind == "text":
        return str(source.get("data", ""))
    if kind == "content":
        return plain_text(source.get("content"), sep="\n")
    if media == "application/pdf" or kind == "url":
        raise InvalidRequest(PDF_UNSUPPORTED)
    if kind == "base64" and media.startswith("text/"):
        return _decode_text(source.get("data", ""))
    if kind == "file":
        raise InvalidRequest(FILE_UNSUPPORTED)
    media = media or "no media type"
    raise InvalidRequest(f"document block: unsupported source {kind!r} ({media})")


def _decode_text(data: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        raise InvalidRequest("document block: base64 data is not valid") from None


def _search_result_text(block: Block) -> str:
    lines = [str(block.get("title") or ""), f"Source: {block.get('source', '')}"]
    lines.append(plain_text(block.get("content"), sep="\n"))
    return "\n".join(x for x in lines if x)


def tool_result_parts(block: Block) -> tuple[str, list[Part]]:
    """(text, images) of a tool_result (items 12, 21, 22).

    The text goes in the `tool` message; images cannot (most backends only accept text
    there) and are returned separately for the user message that follows the tool messages.
    """
    content = block.get("content")
    if isinstance(content, str):
        text, images = content, []
    else:
        parts = [p for b in content or [] if isinstance(b, dict) for p in user_parts(b)]
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
    """OpenAI `function.arguments` for a tool_use `input` (always a JSON object text)."""
    if isinstance(value, str):
        return value if value.strip() else "{}"
    return json.dumps(value if value is not None else {}, ensure_ascii=False)
