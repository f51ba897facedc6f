"""Value types that cross the server/api boundary. No I/O, no h11."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # raw path + query, as received
    path: str  # path without the query
    query: str
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    client: str = ""
    scheme: str = "http"  # "https" on a TLS listener (server.tls)
    caller: Any = None  # continuum_cli.auth.Caller, set by the app once authenticated
    # per-request values the app's layers hand each other (e.g. "meter": the usage meter)
    context: dict[str, Any] = field(default_factory=dict)
    # routes that take large uploads get the body as it arrives instead of `body`
    # (`App.streams_body`); iterating it reads from the socket, bounded by the route itself
    body_stream: AsyncIterator[bytes] | None = None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # filled by handlers for the access log and metrics: backend name, model served and,
    # once known, input_tokens / output_tokens (ints)
    log: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamingResponse:
    """A response written chunk by chunk. `chunks` is consumed by the server, which awaits
    `drain()` after each chunk and closes (cancels) the generator when the client goes away."""

    status: int
    chunks: AsyncIterator[bytes]
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)  # as Response.log; a stream adds tokens
    # awaited once the response is over (sent, failed or abandoned); releases upstream resources
    on_close: Callable[[], Awaitable[None]] | None = None


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8",
                                                                                 "replace")
    return Response(status, body, "application/json", dict(headers or {}))
