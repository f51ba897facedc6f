"""Receiving an upload: a multipart body, as it arrives, into a blob in `files.dir`.

The `file` part goes to disk piece by piece and its size is checked while it is received: past
`max_bytes` the upload stops with 413 and the partial file is removed. Other fields (`purpose`,
`expires_in_seconds`, ...) are small and kept in memory, bounded. Nothing of the file is held
in memory beyond the blob writer's buffer and the first bytes kept to recognise its type.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from continuum_cli.errors import InvalidRequest, RequestTooLarge
from continuum_cli.files.blob import BlobWriter
from continuum_cli.files.multipart import (
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)

MAX_FIELD_BYTES = 64 * 1024
MAX_FILENAME = 255  # characters, as most file systems allow for one name
_SNIFF_BYTES = 4096
# a body larger than the file limit by more than this cannot hold an acceptable upload
MULTIPART_SLACK = 1024 * 1024


@dataclass
class Upload:
    writer: BlobWriter | None = None
    filename: str = ""
    content_type: str | None = None
    head: bytes = b""  # the file's first bytes, to recognise its type
    fields: dict[str, str] = field(default_factory=dict)

    def mime_type(self) -> str:
        return guess_mime_type(self.content_type, self.filename, self.head)


def check_declared_length(content_length: str, max_bytes: int) -> None:
    """413 before reading anything when the declared body cannot fit (saves the upload)."""
    if content_length.isdigit() and int(content_length) > max_bytes + MULTIPART_SLACK:
        raise too_large(max_bytes)


def too_large(max_bytes: int) -> RequestTooLarge:
    return RequestTooLarge(f"the file is larger than the {max_bytes} byte limit "
                           "(files.max_bytes)")


async def receive(body: AsyncIterator[bytes], content_type: str, directory: Path,
                  max_bytes: int, file_field: str = "file") -> Upload:
    """Read the whole multipart body; the file ends up in an open (uncommitted) writer."""
    try:
        parser = MultipartParser(boundary_of(content_type), max_parts=32)
    except MultipartError as exc:
        raise InvalidRequest(f"{exc}; upload the file as multipart/form-data with a "
                             f"`{file_field}` field") from None
    receiver = _Receiver(directory, max_bytes, file_field)
    try:
        async for chunk in body:
            for event in parser.feed(chunk):
                await receiver.on(event)
        parser.close()
    except MultipartError as exc:
        await receiver.abort()
        raise InvalidRequest(f"malformed upload: {exc}") from None
    except BaseException:
        await receiver.abort()
        raise
    return receiver.finish()


class _Receiver:
    def __init__(self, directory: Path, max_bytes: int, file_field: str) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.file_field = file_field
        self.upload = Upload()
        self._field: str | None = None  # the text field being read
        self._value = bytearray()
        self._in_file = False

    async def on(self, event: PartStart | PartData | PartEnd) -> None:
        if isinstance(event, PartStart):
            await self._start(event)
        elif isinstance(event, PartData):
            await self._data(event.data)
        else:
            self._end()

    async def _start(self, part: PartStart) -> None:
        if part.name == self.file_field:
            if self.upload.writer is not None:
                raise InvalidRequest(f"only one `{self.file_field}` part may be uploaded")
            self.upload.filename = _final_component(part.filename or "")
            self.upload.writer = BlobWriter(self.directory)
            await self.upload.writer.open()
            self.upload.content_type = part.content_type
            self._in_file = True
        else:
            self._field, self._value = part.name, bytearray()

    async def _data(self, data: bytes) -> None:
        if self._in_file:
            writer = self.upload.writer
            assert writer is not None
            if writer.size + len(data) > self.max_bytes:
                raise too_large(self.max_bytes)
            if len(self.upload.head) < _SNIFF_BYTES:
                self.upload.head += data[:_SNIFF_BYTES - len(self.upload.head)]
            await writer.write(data)
            return
        self._value += data
        if len(self._value) > MAX_FIELD_BYTES:
            raise InvalidRequest(f"multipart field `{self._field}` is longer than "
                                 f"{MAX_FIELD_BYTES} bytes")

    def _end(self) -> None:
        if self._in_file:
            self._in_file = False
        elif self._field is not None:
            self.upload.fields[self._field] = self._value.decode("utf-8", errors="replace")
            self._field = None

    def finish(self) -> Upload:
        if self.upload.writer is None:
            raise InvalidRequest(f"the upload has no `{self.file_field}` part; send the file "
                                 f"as multipart/form-data field `{self.file_field}`")
        return self.upload

    async def abort(self) -> None:
        if self.upload.writer is not None:
            await self.upload.writer.abort()


def _final_component(filename: str) -> str:
    """Only the last path component of a client's filename is kept (browsers and SDKs may
    send a whole path, with either separator). A longer name than `MAX_FILENAME` is refused:
    cutting it would lose its extension, which says what the file is."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if len(name) > MAX_FILENAME:
        raise InvalidRequest(f"the filename is {len(name)} characters long; at most "
                             f"{MAX_FILENAME} are allowed")
    return name


# the signatures of the types a message can use as they are (PDF and the vision formats)
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"),
          (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def _sniff(head: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


# names clients use for a type that has another registered name (IANA)
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
            "application/x-pdf": "application/pdf", "application/acrobat": "application/pdf"}


def canonical_type(mime: str) -> str:
    return _ALIASES.get(mime, mime)


def guess_mime_type(declared: str | None, filename: str, head: bytes) -> str:
    """The part's own Content-Type when it says something, else the filename's extension,
    else the content itself (a PDF, an image, text), else application/octet-stream."""
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream":
        return canonical_type(declared)
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    if guessed:
        return guessed
    if sniffed := _sniff(head):
        return sniffed
    if head and b"\x00" not in head and _is_utf8(head):
        return "text/plain"
    return "application/octet-stream"


def _is_utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the sniffed bytes
    return True
