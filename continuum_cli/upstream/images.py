"""Image URLs fetched by the router for backends that cannot fetch them (checklist item 11).

Ollama's OpenAI endpoint rejects `image_url` with an http(s) URL; Anthropic clients may send
`{"type": "image", "source": {"type": "url", "url": ...}}`. For such backends every URL image
(also inside tool results) is downloaded once, checked, and rewritten in place to a base64
source, so the translator sends a data URL.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx

from continuum_cli.errors import InvalidRequest
from continuum_cli.wire.anthropic import MessagesRequest, walk_blocks

MAX_IMAGE_BYTES = 20 * 2**20
_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def url_images(req: MessagesRequest) -> Iterator[dict[str, Any]]:
    """Every image block with a URL source, in messages and in tool results."""
    for message in req.messages:
        if isinstance(message.content, list):
            for block in walk_blocks(message.content):
                source = block.get("source")
                if block.get("type") == "image" and isinstance(source, dict) \
                        and source.get("type") == "url":
                    yield block


async def inline_image_urls(http: httpx.AsyncClient, req: MessagesRequest,
                            timeout: float = 20.0) -> None:
    blocks = list(url_images(req))
    if blocks:
        await asyncio.gather(*(_inline(http, b, timeout) for b in blocks))


async def _inline(http: httpx.AsyncClient, block: dict[str, Any], timeout: float) -> None:
    url = str(block["source"].get("url", ""))
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest(f"image url must be http(s): {url[:100]}")
    data, media_type = await _download(http, url, timeout)
    block["source"] = {"type": "base64", "media_type": media_type,
                       "data": base64.b64encode(data).decode("ascii")}


async def _download(http: httpx.AsyncClient, url: str, timeout: float) -> tuple[bytes, str]:
    try:
        async with http.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise InvalidRequest(f"could not fetch image {url[:100]}: HTTP {resp.status_code}")
            media_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type not in _TYPES:
                raise InvalidRequest(f"image {url[:100]} is {media_type or 'untyped'}, not one "
                                     f"of {', '.join(_TYPES)}")
            data = bytearray()
            async for part in resp.aiter_bytes():
                data += part
                if len(data) > MAX_IMAGE_BYTES:
                    raise InvalidRequest(f"image {url[:100]} is larger than 20 MiB")
    except httpx.HTTPError as exc:
        raise InvalidRequest(f"could not fetch image {url[:100]}: {type(exc).__name__}") \
            from None
    return bytes(data), media_type
