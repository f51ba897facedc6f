"""The Files API: Anthropic's shape under /anthropic/v1/files, OpenAI's under /v1/files.

One store behind both (`files/`). Uploads arrive as a streamed body (`Request.body_stream`,
see `ContinuumApp.streams_body`) and go to disk as they arrive. In blocking `api_keys` mode
a file belongs to the key that uploaded it: other keys get the answer an unknown id gets.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

from continuum_cli.api.state import AppState
from continuum_cli.documents.openai_parts import file_parts, resolve_file_parts
from continuum_cli.documents.resolve import Resolver, resolve_sources
from continuum_cli.errors import FileNotFound, InvalidRequest
from continuum_cli.files import blob, shapes
from continuum_cli.files.ids import is_file_id
from continuum_cli.files.records import FileRecord, page
from continuum_cli.files.store import FileStore
from continuum_cli.files.upload import Upload, check_declared_length, receive
from continuum_cli.server.types import Request, Response, StreamingResponse, json_response
from continuum_cli.wire.anthropic import MessagesRequest

log = logging.getLogger("continuum.files")
# Anthropic: expires_in_seconds; OpenAI: expires_after[seconds] (both documented ranges)
_ANTHROPIC_EXPIRY = (3600, 7_776_000)
_OPENAI_EXPIRY = (3600, 2_592_000)
# the purposes OpenAI's upload endpoint takes (the openai SDK's `FilePurpose`)
OPENAI_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def owner_of(state: AppState, request: Request) -> str:
    """Who uploads: the caller's key name (for a gateway sign-in, the key the token was
    issued for), set on the request by the app."""
    return request.caller.name if request.caller is not None else "anonymous"


def viewer_of(state: AppState, request: Request) -> str | None:
    """Whose files a request may see: its own in blocking mode, every file otherwise."""
    if state.settings.api_keys.mode != "blocking":
        return None
    return owner_of(state, request)


def _resolver(state: AppState, request: Request) -> Resolver:
    return Resolver(state.documents, state.files, viewer_of(state, request), state.http,
                    state.settings.documents.max_bytes)


async def resolve_content(state: AppState, request: Request, req: MessagesRequest) -> None:
    """File ids, PDFs and document URLs in a Messages request, made readable in place
    (`documents/resolve.py`) before it is counted or translated."""
    await resolve_sources(req, _resolver(state, request))


async def resolve_openai_content(state: AppState, request: Request,
                                 body: dict[str, Any]) -> None:
    """`file` parts of an OpenAI chat body (file_id or file_data), made text or image parts
    in place (`documents/openai_parts.py`)."""
    if file_parts(body):
        await resolve_file_parts(body, _resolver(state, request))


def file_id_of(request: Request) -> str:
    segments = request.path.strip("/").split("/")
    return segments[segments.index("files") + 1]


def _store(state: AppState) -> FileStore:
    files: FileStore | None = state.files
    if files is None:
        raise InvalidRequest("the Files API is not available on this router")
    return files


# -- upload ------------------------------------------------------------------------------

async def _body(request: Request) -> AsyncIterator[bytes]:
    if request.body_stream is not None:
        async for chunk in request.body_stream:
            yield chunk
    elif request.body:
        yield request.body


async def _receive(state: AppState, request: Request) -> Upload:
    files = _store(state)
    check_declared_length(request.header("content-length"), files.max_bytes)
    return await receive(_body(request), request.header("content-type"), files.directory,
                         files.max_bytes)


async def _commit(state: AppState, request: Request, upload: Upload, purpose: str,
                  expires_in: int | None) -> FileRecord:
    assert upload.writer is not None
    mime = upload.mime_type()
    try:
        record = await _store(state).add(
            upload.writer, owner=owner_of(state, request),
            filename=upload.filename or _unnamed(mime), mime_type=mime, purpose=purpose,
            expires_in=expires_in)
    except BaseException:
        await upload.writer.abort()
        raise
    log.info("file %s uploaded: %d bytes, %s", record.id, record.size_bytes, record.mime_type)
    return record


def _unnamed(mime: str) -> str:
    import mimetypes

    return "unnamed" + (mimetypes.guess_extension(mime) or "")


def _expiry(value: str | None, name: str, bounds: tuple[int, int]) -> int | None:
    if value is None or not value.strip():
        return None
    low, high = bounds
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(f"{name} must be a whole number of seconds from {low} to {high}")
    return int(value)


def _anthropic_fields(fields: dict[str, str]) -> tuple[str, int | None]:
    expires = _expiry(fields.get("expires_in_seconds"), "expires_in_seconds",
                      _ANTHROPIC_EXPIRY)
    return "user_data", expires


def _openai_fields(fields: dict[str, str]) -> tuple[str, int | None]:
    purpose = fields.get("purpose", "").strip()
    if not purpose:
        raise InvalidRequest(f"purpose is required: one of {', '.join(OPENAI_PURPOSES)}")
    if purpose not in OPENAI_PURPOSES:
        raise InvalidRequest(f"purpose {purpose[:64]!r} is not one of "
                             f"{', '.join(OPENAI_PURPOSES)}")
    if fields.get("expires_after[anchor]", "created_at") != "created_at":
        raise InvalidRequest("expires_after[anchor] must be created_at")
    return purpose, _expiry(fields.get("expires_after[seconds]"), "expires_after[seconds]",
                            _OPENAI_EXPIRY)


async def _upload(state: AppState, request: Request,
                  read_fields: Callable[[dict[str, str]], tuple[str, int | None]]
                  ) -> FileRecord:
    """Receive the file, check it and the other fields (a bad one removes the file), commit
    it."""
    upload = await _receive(state, request)
    assert upload.writer is not None
    try:
        if upload.writer.size == 0:
            raise InvalidRequest("the file is empty: there is nothing to store")
        purpose, expires = read_fields(upload.fields)
    except InvalidRequest:
        await upload.writer.abort()
        raise
    return await _commit(state, request, upload, purpose, expires)


async def anthropic_upload(state: AppState, request: Request) -> Response:
    record = await _upload(state, request, _anthropic_fields)
    return json_response(200, shapes.anthropic_file(record))


async def openai_upload(state: AppState, request: Request) -> Response:
    record = await _upload(state, request, _openai_fields)
    return json_response(200, shapes.openai_file(record))


# -- list --------------------------------------------------------------------------------

def _query(request: Request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}


def _limit(value: str | None, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise InvalidRequest(f"limit must be a whole number from 1 to {maximum}")
    return int(value)


async def anthropic_list(state: AppState, request: Request) -> Response:
    query = _query(request)
    records = list(reversed(await _store(state).visible(viewer_of(state, request))))
    ids = [i for k, v in parse_qs(request.query).items() if k in ("ids", "ids[]") for i in v]
    if ids:
        wanted = set(ids[:100])
        return json_response(200, shapes.anthropic_list(
            [r for r in records if r.id in wanted], False))
    # a `page` cursor wins: the SDKs resend the first call's own query with it
    before, after = _cursor(query["page"]) if query.get("page") else \
        (_file_cursor(query, "before_id"), _file_cursor(query, "after_id"))
    limit = _limit(query.get("limit"), 20, 1000)
    found, more = page(records, limit, before, after)
    return json_response(200, shapes.anthropic_list(found, more, backwards=bool(before)
                                                    and not after))


def _cursor(value: str) -> tuple[str | None, str | None]:
    """(before_id, after_id) from a `next_page` value (`shapes.next_page`)."""
    if value.startswith(shapes.BEFORE_PREFIX) and is_file_id(value[len(shapes.BEFORE_PREFIX):]):
        return value[len(shapes.BEFORE_PREFIX):], None
    if value.startswith(shapes.PAGE_PREFIX) and is_file_id(value[len(shapes.PAGE_PREFIX):]):
        return None, value[len(shapes.PAGE_PREFIX):]
    raise InvalidRequest("page must be a next_page value from an earlier list answer")


def _file_cursor(query: dict[str, str], name: str) -> str | None:
    """A list cursor is a file id (one deleted since is fine: ids are compared by order)."""
    value = query.get(name) or None
    if value is not None and not is_file_id(value):
        raise InvalidRequest(f"{name} must be a file id from an earlier list answer")
    return value


async def openai_list(state: AppState, request: Request) -> Response:
    query = _query(request)
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc")
    records = await _store(state).visible(viewer_of(state, request))
    if query.get("purpose"):
        records = [r for r in records if r.purpose == query["purpose"]]
    if order == "desc":
        records.reverse()
    limit = _limit(query.get("limit"), 10_000, 10_000)
    found, more = page(records, limit, None, _file_cursor(query, "after"),
                       descending=order == "desc")
    return json_response(200, shapes.openai_list(found, more))


# -- one file ----------------------------------------------------------------------------

async def _record(state: AppState, request: Request) -> FileRecord:
    return await _store(state).get(file_id_of(request), viewer_of(state, request))


async def anthropic_retrieve(state: AppState, request: Request) -> Response:
    return json_response(200, shapes.anthropic_file(await _record(state, request)))


async def openai_retrieve(state: AppState, request: Request) -> Response:
    return json_response(200, shapes.openai_file(await _record(state, request)))


async def content(state: AppState, request: Request) -> StreamingResponse:
    """The file's bytes, streamed from disk with their length and type (both APIs)."""
    record = await _record(state, request)
    try:
        handle = await blob.open_blob(_store(state).path(record))
    except FileNotFoundError:
        log.warning("file %s has a record but no content in %s (replicas must share "
                    "files.dir)", record.id, _store(state).directory)
        raise FileNotFound(record.id) from None
    headers = {"content-length": str(record.size_bytes),
               "content-disposition": shapes.content_disposition(record.filename)}
    return StreamingResponse(200, blob.read_chunks(handle), record.mime_type, headers)


async def anthropic_delete(state: AppState, request: Request) -> Response:
    record = await _store(state).delete(file_id_of(request), viewer_of(state, request))
    log.info("file %s deleted", record.id)
    return json_response(200, shapes.anthropic_deleted(record.id))


async def openai_delete(state: AppState, request: Request) -> Response:
    record = await _store(state).delete(file_id_of(request), viewer_of(state, request))
    log.info("file %s deleted", record.id)
    return json_response(200, shapes.openai_deleted(record.id))


def routes() -> dict[str, dict[str, Any]]:
    """The Files API's routes; `{file_id}` matches one path segment."""
    return {
        "/anthropic/v1/files": {"POST": anthropic_upload, "GET": anthropic_list},
        "/anthropic/v1/files/{file_id}": {"GET": anthropic_retrieve,
                                          "DELETE": anthropic_delete},
        "/anthropic/v1/files/{file_id}/content": {"GET": content},
        "/v1/files": {"POST": openai_upload, "GET": openai_list},
        "/v1/files/{file_id}": {"GET": openai_retrieve, "DELETE": openai_delete},
        "/v1/files/{file_id}/content": {"GET": content},
    }


UPLOAD_PATHS = frozenset({"/anthropic/v1/files", "/v1/files"})
