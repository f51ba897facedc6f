"""File records in each API's own shape (checked against the official SDKs in the tests).

Anthropic (`/anthropic/v1/files`, beta Files API): `{id, type: "file", filename, mime_type,
size_bytes, created_at (RFC 3339), downloadable}`, lists `{data, has_more, first_id, last_id,
next_page}`, deletion `{id, type: "file_deleted"}`. OpenAI (`/v1/files`): `{id, object:
"file", bytes, created_at (Unix seconds), filename, purpose, status}`, lists `{object: "list",
data, has_more, first_id, last_id}`, deletion `{id, object: "file", deleted: true}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from continuum_cli.files.records import FileRecord

PAGE_PREFIX = "page_"  # next_page: the page after (older than) the id that follows
BEFORE_PREFIX = "page_before_"  # ... before (newer than) it, walking a before_id list


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def anthropic_file(record: FileRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id, "type": "file", "filename": record.filename,
        "mime_type": record.mime_type, "size_bytes": record.size_bytes,
        "created_at": rfc3339(record.created_at), "downloadable": True,
    }
    if record.expires_at is not None:
        body["expires_at"] = rfc3339(record.expires_at)
    return body


def anthropic_list(records: list[FileRecord], has_more: bool,
                   backwards: bool = False) -> dict[str, Any]:
    first = records[0].id if records else None
    last = records[-1].id if records else None
    return {"data": [anthropic_file(r) for r in records], "has_more": has_more,
            "first_id": first, "last_id": last,
            "next_page": next_page(first, last, has_more, backwards)}


def next_page(first: str | None, last: str | None, has_more: bool,
              backwards: bool) -> str | None:
    """The cursor of newer SDKs (`page`): the next page in the direction of the walk, past
    the last id (or, walking a `before_id` list towards newer files, before the first)."""
    if not has_more or first is None:
        return None
    return f"{BEFORE_PREFIX}{first}" if backwards else f"{PAGE_PREFIX}{last}"


def anthropic_deleted(file_id: str) -> dict[str, Any]:
    return {"id": file_id, "type": "file_deleted"}


def openai_file(record: FileRecord) -> dict[str, Any]:
    return {
        "id": record.id, "object": "file", "bytes": record.size_bytes,
        "created_at": int(record.created_at), "filename": record.filename,
        "purpose": record.purpose, "status": "processed", "status_details": None,
        "expires_at": int(record.expires_at) if record.expires_at is not None else None,
    }


def openai_list(records: list[FileRecord], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": [openai_file(r) for r in records],
            "has_more": has_more,
            "first_id": records[0].id if records else None,
            "last_id": records[-1].id if records else None}


def openai_deleted(file_id: str) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "deleted": True}


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the exact name per RFC 6266 / RFC 5987."""
    from urllib.parse import quote

    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
