"""OpenAI chat `file` content parts made readable for local models (`/v1/chat/completions`).

OpenAI's chat API takes a file as `{"type": "file", "file": {"file_id" | "file_data",
"filename"}}` (`file_data` is a `data:` URL or bare base64). Local engines do not read
them; each such part becomes a text part (a PDF's page-marked text, a text file's text) or an
image part, through the same `Resolver` as the Anthropic route. Bodies without file parts
are forwarded untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from continuum_cli.documents.resolve import Resolver
from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.content import document_text

Part = dict[str, Any]


def file_parts(body: dict[str, Any]) -> list[tuple[list[Any], int, str]]:
    """(content list, index, path) of every `file` part in the body's messages."""
    found = []
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else []):
            if isinstance(part, dict) and part.get("type") == "file":
                found.append((content, j, f"messages.{i}.content.{j}"))
    return found


def _as_document(part: Part, where: str) -> dict[str, Any]:
    spec = part.get("file")
    if not isinstance(spec, dict):
        raise InvalidRequest(f"{where}.file: must be an object")
    block: dict[str, Any] = {"type": "document"}
    if isinstance(spec.get("filename"), str) and spec["filename"]:
        block["title"] = spec["filename"]
    if isinstance(spec.get("file_id"), str) and spec["file_id"]:
        block["source"] = {"type": "file", "file_id": spec["file_id"]}
        return block
    data = spec.get("file_data")
    if not isinstance(data, str) or not data:
        raise InvalidRequest(f"{where}.file: needs file_id or file_data")
    media, _, payload = data.partition(";base64,") if data.startswith("data:") else \
        ("data:application/pdf", "", data)
    block["source"] = {"type": "base64", "media_type": media[5:] or "application/pdf",
                       "data": payload}
    return block


async def _resolve_part(resolver: Resolver, part: Part, where: str) -> Part:
    block = _as_document(part, where)
    await resolver.resolve(block, where)
    if block["type"] == "image":
        source = block["source"]
        return {"type": "image_url",
                "image_url": {"url": f"data:{source['media_type']};base64,{source['data']}"}}
    return {"type": "text", "text": document_text(block, where)}


async def resolve_file_parts(body: dict[str, Any], resolver: Resolver) -> None:
    """Replace every `file` part of `body` in place; the first failure is the answer."""
    found = file_parts(body)
    if not found:
        return
    tasks = [asyncio.ensure_future(_resolve_part(resolver, content[j], where))
             for content, j, where in found]
    try:
        parts = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    for (content, j, _), part in zip(found, parts, strict=True):
        content[j] = part
