"""POST /v1/chat/completions: OpenAI passthrough to the backend that serves the model.

The body is forwarded as sent, with only `model` rewritten by routing; a streamed answer is
relayed chunk by chunk as the backend produces it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from continuum_cli.api.common import note_route, parse_json_body
from continuum_cli.api.files import resolve_openai_content
from continuum_cli.api.state import AppState
from continuum_cli.errors import ApiError, InvalidRequest, envelope
from continuum_cli.fleet import Ticket
from continuum_cli.metrics.labels import record_usage
from continuum_cli.wire.json_text import loads as bounded_loads
from continuum_cli.routing import Route
from continuum_cli.server.types import Request, Response, StreamingResponse
from continuum_cli.usage import meter as usage_meter
from continuum_cli.usage.observe import estimate_openai_tokens
from continuum_cli.websearch import openai_loop

log = logging.getLogger("continuum.api")


async def chat_completions(state: AppState, request: Request) -> Response | StreamingResponse:
    body = parse_json_body(request.body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("`model` is required and must be a string")
    route = await state.route(model)
    await resolve_openai_content(state, request, body)  # `file` parts: text for the model
    await usage_meter.admit(request, route, estimate_openai_tokens(body))  # before upstream

    async def attempt(route: Route, ticket: Ticket) -> Response | StreamingResponse:
        log_route(route, request)
        usage_meter.serving(request, route)
        return await _forward(state, route, dict(body), ticket)

    return await state.send(route, attempt)


async def _forward(state: AppState, route: Route, body: dict[str, Any],
                   ticket: Ticket) -> Response | StreamingResponse:
    """One attempt on one backend: the body with its `model` and `request_defaults`."""
    tags: dict[str, Any] = {"backend": route.backend.name, "model": route.upstream_model}
    body["model"] = route.upstream_model
    for key, value in route.backend.request_defaults.items():
        body.setdefault(key, value)
    if openai_loop.wants_injection(state.settings, body):
        return await openai_loop.handle(state, route, body, tags)
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8",
                                                                                "replace")
    if body.get("stream"):
        return await _relay_stream(state, route, payload, tags, ticket)
    resp = await state.upstream.post(route.backend, "/chat/completions", payload)
    record_usage(tags, usage_in(resp.content))
    return Response(200, resp.content, resp.headers.get("content-type", "application/json"),
                    log=tags)


async def _relay_stream(state: AppState, route: Route, payload: bytes,
                        tags: dict[str, Any], ticket: Ticket) -> StreamingResponse:
    stack = contextlib.AsyncExitStack()
    try:
        resp = await stack.enter_async_context(
            state.upstream.open(route.backend, "/chat/completions", payload))
    except BaseException:
        await stack.aclose()
        raise
    ticket.hold()  # closed when the stream ends: in flight until then
    stack.callback(ticket.release)

    async def relay() -> AsyncIterator[bytes]:
        last_usage = b""  # the last piece that mentions usage: parsed once, at the end
        try:
            async for raw in state.upstream.iter_raw(route.backend, resp):
                if b'"usage"' in raw:
                    last_usage = raw
                if "first_token_at" not in tags and _FIRST_TOKEN.search(raw):
                    tags["first_token_at"] = time.perf_counter()  # metrics: time to first token
                yield raw
            record_usage(tags, usage_in_events(last_usage))
        except ApiError as exc:  # after the 200: an OpenAI-style error event, then the end
            ticket.done(exc)
            _, error = envelope(exc, "openai")
            yield b"data: " + json.dumps(error).encode() + b"\n\n"
            return
        ticket.done()

    content_type = resp.headers.get("content-type", "text/event-stream")
    return StreamingResponse(200, relay(), content_type, {"cache-control": "no-cache"},
                             log=tags, on_close=stack.aclose)


# a chunk carrying model output: non-empty content or reasoning, or a tool call (the first
# chunk, `"role":"assistant","content":""`, comes before the model produced anything)
_FIRST_TOKEN = re.compile(
    rb'"(?:content|reasoning_content|reasoning)":\s*"[^"]|"tool_calls":\s*\[\s*\{')


def usage_in(body: bytes) -> Any:
    """The `usage` of a completion body, parsed only when the body has one."""
    if b'"usage"' not in body:
        return None
    try:
        data = bounded_loads(body)
    except ValueError:  # JsonTooDeep included: a hostile backend cannot exhaust the stack
        return None
    return data.get("usage") if isinstance(data, dict) else None


def usage_in_events(raw: bytes) -> Any:
    """The last `usage` object among the SSE `data:` lines of `raw` (a stream's usage chunk,
    sent when the client asked for `stream_options.include_usage`)."""
    for line in reversed(raw.split(b"\n")):
        if line.startswith(b"data:") and b'"usage"' in line:
            usage = usage_in(line[5:].strip())
            if isinstance(usage, dict):
                return usage
    return None


def log_route(route: Route, request: Request) -> None:
    note_route(route.backend.name, route.upstream_model)
    if route.rewritten:
        log.info("Rewrote request.model via model_aliases: %s -> %s (%s)", route.requested,
                 route.upstream_model, route.rule)
    log.info("%s %s forwarded to %s (model %s)", request.method, request.path,
             route.backend.name, route.upstream_model)
