"""Content a local model cannot read as sent, made readable before translation.

Runs at the edge, like image URL downloads (`upstream/images.py`), so `translate/` stays
pure: it rewrites the blocks of a parsed Messages request in place.

* `document` or `image` with `source.type: file` -> the uploaded file (`files/`): an image
  becomes base64 image data (a data URL for the backend), a text file becomes a text
  document, a PDF becomes text (below). Another key's file, or an unknown id: 404.
* `document` with a PDF (`base64`, `url` or `file`) -> its text with `--- page N ---`
  markers (`documents/reader.py`), `title` and `context` kept.
* `container_upload`, and files of other types (spreadsheets, archives, ...): they need
  Anthropic's code execution tool, which a local model does not have -> 400 saying so.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from continuum_cli.documents.reader import DocumentReader
from continuum_cli.errors import InvalidRequest
from continuum_cli.files import blob
from continuum_cli.files.store import FileRecord, FileStore
from continuum_cli.files.upload import canonical_type
from continuum_cli.wire.anthropic import MessagesRequest

Block = dict[str, Any]
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_TEXT_TYPES = ("application/json", "application/xml", "application/x-yaml",
               "application/yaml", "application/javascript", "application/x-sh",
               "application/sql", "application/toml", "application/x-python")
CODE_EXECUTION_ONLY = ("need Anthropic's code execution tool, which continuum does not run "
                       "(a local model reads PDFs, text files and images)")


def is_text_type(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


# C0 controls that text does not hold (tab, newlines, form feed and escape it may)
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def looks_like_text(data: bytes) -> bool:
    """UTF-8 without control bytes: source code and notes whose extension a client's type
    table gets wrong (`.ts` is `video/mp2t` to Python's) are still read as text."""
    if not data or _BINARY.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class Resolver:
    reader: DocumentReader
    files: FileStore | None
    viewer: str | None  # whose files may be used; None: everyone's (permissive mode)
    http: httpx.AsyncClient
    max_bytes: int  # documents.max_bytes: a file or download to read
    timeout: float = 30.0

    async def resolve(self, block: Block, where: str) -> None:
        kind = block.get("type")
        if kind == "container_upload":
            raise InvalidRequest(f"{where}: container_upload blocks {CODE_EXECUTION_ONLY}")
        source = block["source"]
        if source.get("type") == "file":
            await self._from_file(block, source, where)
        elif source.get("type") == "url":
            await self._from_url(block, str(source.get("url") or ""), where)
        else:
            data = await _decode(source.get("data"), f"{where}.source.data")
            await self._typed(block, data, str(source.get("media_type") or ""), where,
                              f"document ({source.get('media_type') or 'no media type'})")

    async def _from_file(self, block: Block, source: Block, where: str) -> None:
        file_id = source.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise InvalidRequest(f"{where}.source.file_id: field required")
        if self.files is None:
            raise InvalidRequest(f"{where}: file sources need the Files API")
        record = await self.files.get(file_id, self.viewer)
        if record.size_bytes > self.max_bytes:
            raise InvalidRequest(f"{where}: file {record.id} ({record.filename}) is "
                                 f"{record.size_bytes} bytes, more than documents.max_bytes "
                                 f"({self.max_bytes}) allows to read")
        data = await self._file_bytes(record)
        if block.get("type") == "document" and not block.get("title"):
            block["title"] = record.filename
        await self._typed(block, data, record.mime_type, where,
                          f"file {record.id} ({record.filename}, {record.mime_type})")

    async def _file_bytes(self, record: FileRecord) -> bytes:
        assert self.files is not None
        try:
            return await blob.read_bytes(self.files.path(record))
        except FileNotFoundError:
            raise InvalidRequest(f"file {record.id} has no content in files.dir (replicas "
                                 "must share files.dir)") from None

    async def _typed(self, block: Block, data: bytes, mime: str, where: str,
                     what: str) -> None:
        if mime in IMAGE_TYPES:
            block["type"] = "image"  # an image is an image, also when sent as a document
            block["source"] = {"type": "base64", "media_type": mime,
                               "data": base64.b64encode(data).decode("ascii")}
            for key in ("title", "context", "citations"):
                block.pop(key, None)
        elif block.get("type") == "image":
            raise InvalidRequest(f"{where}: {what} is not an image ({', '.join(IMAGE_TYPES)})")
        elif mime == "application/pdf" or data[:5] == b"%PDF-":
            await self._pdf(block, data, where)
        elif is_text_type(mime) or looks_like_text(data):
            _set_text(block, data.decode("utf-8", errors="replace"))
        else:
            raise InvalidRequest(f"{where}: {what}: files of this type {CODE_EXECUTION_ONLY}")

    async def _pdf(self, block: Block, data: bytes, where: str) -> None:
        outcome = await self.reader.pdf_text(data, _name(block, where))
        if not block.get("title") and outcome.title:
            block["title"] = outcome.title
        _set_text(block, outcome.text)

    async def _from_url(self, block: Block, url: str, where: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"{where}.source.url: must be an http(s) URL")
        data, mime = await self._download(url, where)
        await self._typed(block, data, mime, where, f"document {url[:100]} ({mime})")

    async def _download(self, url: str, where: str) -> tuple[bytes, str]:
        try:
            async with self.http.stream("GET", url, timeout=self.timeout,
                                        follow_redirects=True) as resp:
                if resp.status_code != 200:
                    raise InvalidRequest(f"{where}: could not fetch document {url[:100]}: "
                                         f"HTTP {resp.status_code}")
                mime = canonical_type(
                    resp.headers.get("content-type", "").split(";")[0].strip().lower())
                data = bytearray()
                async for part in resp.aiter_bytes():
                    data += part
                    if len(data) > self.max_bytes:
                        raise InvalidRequest(f"{where}: document {url[:100]} is larger than "
                                             f"documents.max_bytes ({self.max_bytes})")
        except httpx.HTTPError as exc:
            raise InvalidRequest(f"{where}: could not fetch document {url[:100]}: "
                                 f"{type(exc).__name__}") from None
        return bytes(data), mime or "application/octet-stream"


def _set_text(block: Block, text: str) -> None:
    block["source"] = {"type": "text", "media_type": "text/plain", "data": text}


def _name(block: Block, where: str) -> str:
    title = block.get("title")
    return f'"{title}" ({where})' if isinstance(title, str) and title else f"at {where}"


_OFF_LOOP = 1 << 20  # base64 longer than this is decoded by a thread, not the event loop


async def _decode(data: Any, where: str) -> bytes:
    if not isinstance(data, str):
        raise InvalidRequest(f"{where}: field required")
    try:
        if len(data) > _OFF_LOOP:
            return await asyncio.to_thread(base64.b64decode, data, validate=True)
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where}: base64 data is not valid") from None


def _needs_work(block: Block) -> bool:
    kind = block.get("type")
    if kind == "container_upload":
        return True
    source = block.get("source")
    if kind not in ("document", "image") or not isinstance(source, dict):
        return False
    if source.get("type") == "file":
        return True
    if kind != "document":
        return False
    pdf = source.get("type") == "base64" and source.get("media_type") == "application/pdf"
    return pdf or source.get("type") == "url"


_KINDS = frozenset({"document", "image", "container_upload"})


def pending_blocks(req: MessagesRequest) -> Iterator[tuple[Block, str]]:
    """Every block that needs the resolver, with its path in the request: message content
    and the content of tool results (one fixed level, no recursion: a tool result's own
    blocks are all that can carry a document). Runs on every request: cheap per block."""
    for i, message in enumerate(req.messages):
        if not isinstance(message.content, list):
            continue
        for j, block in enumerate(message.content):
            kind = block.get("type") if isinstance(block, dict) else None
            if _kind_in(kind) and _needs_work(block):
                yield block, f"messages.{i}.content.{j}"
            elif kind == "tool_result" and isinstance(block.get("content"), list):
                for k, part in enumerate(block["content"]):
                    if isinstance(part, dict) and _kind_in(part.get("type")) \
                            and _needs_work(part):
                        yield part, f"messages.{i}.content.{j}.content.{k}"


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _kind_in(kind: object) -> bool:
    # a client's `type` may be any JSON value (a list is unhashable: no set lookup)
    return isinstance(kind, str) and kind in _KINDS


async def resolve_sources(req: MessagesRequest, resolver: Resolver) -> None:
    """Rewrite every block that needs it, concurrently; the first failure is the answer."""
    tasks = [asyncio.ensure_future(resolver.resolve(block, where))
             for block, where in pending_blocks(req)]
    try:
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # after a failure the others' work is no longer wanted
            task.cancel()
            # a task that fails after the answer was decided (it was mid-download when
            # cancelled): its error is retrieved, not logged as "never retrieved"
            task.add_done_callback(_retrieve)
