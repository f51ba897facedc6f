"""POST /anthropic/v1/messages: parse, route, translate, call the backend, translate back.

Streaming: the upstream stream is opened (its headers awaited) before we answer, so upstream
errors before the first byte become real HTTP statuses; after our 200 they become one
`event: error` frame and the stream ends (checklist item 44).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from continuum_cli.api.common import flavor_of, for_flavor
from continuum_cli.api.files import resolve_content
from continuum_cli.api.openai_passthrough import log_route
from continuum_cli.api.state import AppState
from continuum_cli.api.streaming import PING, batches_with_keepalive
from continuum_cli.backends.profiles import profile_for
from continuum_cli.errors import ApiError, InvalidRequest, PromptTooLong, envelope
from continuum_cli.fleet import Ticket
from continuum_cli.metrics.labels import record_usage
from continuum_cli.routing import Route
from continuum_cli.server.types import Request, Response, StreamingResponse, json_response
from continuum_cli.translate.ids import new_message_id
from continuum_cli.translate.request import OpenAIRequest, thinking_mode, to_openai_request
from continuum_cli.translate.response import to_anthropic_message
from continuum_cli.translate.sse_encode import coalesce_deltas, encode_event
from continuum_cli.translate.stream import StreamTranslator, think_probe_chars
from continuum_cli.translate.tokens import estimate_tokens
from continuum_cli.translate.tool_text import ToolTextPolicy, ToolTextRecovery, recovered_chunks
from continuum_cli.translate.usage_scale import scale_events, scale_message
from continuum_cli.upstream.errors import refit_max_tokens
from continuum_cli.usage import meter as usage_meter
from continuum_cli.upstream.images import inline_image_urls
from continuum_cli.websearch import emulation
from continuum_cli.websearch.blocks import snippet_of
from continuum_cli.websearch.options import is_web_search_tool
from continuum_cli.wire.anthropic import MessagesRequest, parse_messages_request

log = logging.getLogger("continuum.api")
T = TypeVar("T")


async def create_message(state: AppState, request: Request) -> Response | StreamingResponse:
    req = parse_messages_request(request.body)
    _refuse_safeguards(req)
    route = await state.route(req.model)
    await resolve_content(state, request, req)  # documents become text before counting
    _warn_unsupported_server_tools(req)
    estimate = estimate_tokens(req)
    # limits and budgets: the check starts now and is awaited before anything goes upstream
    # (the request is translated while the state store answers)
    usage_meter.begin(request, route, estimate)
    message_id = new_message_id()
    if emulation.wants_emulation(req):
        await usage_meter.admitted(request)
        log_route(route, request)
        return await emulation.handle(state, req, route, requested_model=req.model,
                                      message_id=message_id, stream=req.stream)

    async def attempt(route: Route, ticket: Ticket) -> Response | StreamingResponse:
        log_route(route, request)
        usage_meter.serving(request, route)
        return await _answer(state, req, route, ticket, message_id, request, estimate)

    return await state.send(route, attempt)


async def _answer(state: AppState, req: MessagesRequest, route: Route, ticket: Ticket,
                  message_id: str, request: Request, estimate: int
                  ) -> Response | StreamingResponse:
    """One attempt on one backend (the fleet may try the next one if this one fails)."""
    path = request.path
    profile = profile_for(route.backend.type)
    if profile.inline_image_urls:  # fetches: only for an admitted request
        await usage_meter.admitted(request)
        await inline_image_urls(state.http, req)
    try:
        translated = to_openai_request(req, upstream_model=route.upstream_model,
                                       profile=profile,
                                       snippet_of=snippet_of,
                                       max_tokens_cap=state.max_tokens_cap(route.backend,
                                                                           estimate))
    except ApiError:
        await usage_meter.admitted(request)  # over a limit: that answer comes first
        raise
    await usage_meter.admitted(request)
    tags: dict[str, Any] = {"backend": route.backend.name, "model": route.upstream_model}
    if req.stream:
        return await _stream(state, req, route, translated, message_id, tags, path,
                             estimate, ticket)
    completion = await _fit_max_tokens(
        translated, lambda body: state.upstream.chat(route.backend, body))
    message = to_anthropic_message(completion, model=req.model, message_id=message_id,
                                   tool_names=translated.tool_names,
                                   stop_sequences=req.stop_sequences,
                                   input_tokens=estimate,
                                   tool_text=ToolTextPolicy.for_request(route.backend,
                                                                        translated.body))
    record_usage(tags, message.get("usage"))
    response = json_response(200, scale_message(message, state.usage_scale(route.backend)))
    response.log.update(tags)
    return response


def _refuse_safeguards(req: MessagesRequest) -> None:
    """Claude Code's auto mode asks the upstream for its safety check with a top-level
    `safeguards` field and reads `safeguard_results` from the reply. No local model runs
    that check, so the request is refused in the way the gateway protocol prescribes ("Messages
    -- required": 400 invalid_request_error naming `safeguards`): the client then sends it
    again without them and runs the check itself with ordinary requests. Silently dropping
    the field would leave the client waiting for results that never come."""
    extra = req.model_extra or {}
    if extra.get("safeguards") is not None:
        raise InvalidRequest("safeguards: this router cannot run the safeguards check "
                             "(its models are not Anthropic's); send the request without "
                             "`safeguards`")


def _warn_unsupported_server_tools(req: MessagesRequest) -> None:
    """Server tools other than web search (`web_fetch_*`, `code_execution_*`, ...) run on
    Anthropic's side and have no local equivalent: the request is answered without them,
    and the log says so instead of dropping them silently."""
    left_out = [str(t.type) for t in req.server_tools() if not is_web_search_tool(t)]
    if left_out:
        log.warning("server tools not supported by continuum, answered without them: %s",
                    ", ".join(left_out))


async def _stream(state: AppState, req: MessagesRequest, route: Route,
                  translated: OpenAIRequest, message_id: str, tags: dict[str, Any],
                  path: str, estimate: int, ticket: Ticket) -> StreamingResponse:
    stack = contextlib.AsyncExitStack()

    async def open_stream(body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return await stack.enter_async_context(state.upstream.stream_chat(route.backend, body))

    try:
        chunks = await _fit_max_tokens(translated, open_stream)
    except BaseException:
        await stack.aclose()
        raise
    ticket.hold()  # closed when the stream ends (sse_frames): in flight until then
    stack.callback(ticket.release)
    # tool calls a backend writes as text (checklist item 23), when the backend opted in
    chunks = recovered_chunks(chunks, ToolTextRecovery.for_request(route.backend,
                                                                   translated.body))
    translator = StreamTranslator(
        model=req.model, message_id=message_id, tool_names=translated.tool_names,
        input_tokens=estimate, stop_sequences=req.stop_sequences,
        think_probe_chars=_probe_chars(req),
    )
    frames = sse_frames(translator, chunks, state.settings.server.ping_interval, path,
                        state.usage_scale(route.backend), ticket, tags)
    return StreamingResponse(200, frames, "text/event-stream", _SSE_HEADERS, log=tags,
                             on_close=stack.aclose)


async def _fit_max_tokens(translated: OpenAIRequest,
                          send: Callable[[dict[str, Any]], Awaitable[T]]) -> T:
    """Send; if the engine refused because prompt + max_tokens exceed its window while the
    prompt alone fits, send once more with the room that is left (checklist item 25)."""
    try:
        return await send(translated.body)
    except PromptTooLong as exc:
        room = refit_max_tokens(exc)
        if room is None:
            raise
        log.info("max_tokens %s does not fit the backend's window after the prompt; retrying "
                 "with max_tokens %d", translated.body.get("max_tokens"), room)
        return await send({**translated.body, "max_tokens": room})


def _probe_chars(req: MessagesRequest) -> int:
    # Holding back leading text to catch a "closing </think> only" answer (checklist item 30)
    # is only worth its latency when the client asked for thinking.
    mode = thinking_mode(req)
    return 0 if mode in (None, "off") else think_probe_chars(mode)


_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def sse_frames(translator: StreamTranslator, chunks: AsyncIterator[dict[str, Any]],
                     ping_interval: float, path: str,
                     usage_scale: float | None = None,
                     ticket: Ticket | None = None,
                     tags: dict[str, Any] | None = None) -> AsyncIterator[bytes]:
    """Anthropic SSE bytes for an upstream chunk stream, with pings and in-stream errors;
    usage scaled by `usage_scale` (`backends[].scale_usage_to`). `ticket` (the fleet's, for
    the backend) is closed with how the stream ended; the token counts go into `tags` (the
    access tags) at the end."""
    yield _encode(scale_events(translator.start_events(), usage_scale))
    try:
        async for batch in batches_with_keepalive(chunks, ping_interval):
            events = []
            now = time.monotonic()  # one clock read per batch: bounds the </think> hold-back
            for chunk in batch:
                if chunk is PING:
                    events.extend(translator.tick(now))
                    events.append(("ping", _PING))
                else:
                    events.extend(translator.feed(chunk, now))
            if events:
                if tags is not None and "first_token_at" not in tags:
                    _mark_first_token(tags, events)
                yield _encode(scale_events(coalesce_deltas(events), usage_scale))
    except Exception as exc:
        if ticket is not None:
            ticket.done(exc)
        log.warning("stream failed after the response started: %s", getattr(exc, "message", exc))
        _, body = envelope(for_flavor(exc, flavor_of(path)), "anthropic")
        yield encode_event("error", body)
        return
    if ticket is not None:
        ticket.done()
    finished = translator.finish()
    if tags is not None:
        record_usage(tags, translator.usage)
    yield _encode(scale_events(finished, usage_scale))


_PING = {"type": "ping"}


def _mark_first_token(tags: dict[str, Any], events: list[tuple[str, Any]]) -> None:
    """When the model's first output (text, thinking or a tool call) goes out: the time to
    first token in the metrics, rather than the `message_start` sent before the model ran."""
    for name, _ in events:
        if name == "content_block_delta":
            tags["first_token_at"] = time.perf_counter()
            return


def _encode(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(encode_event(name, payload) for name, payload in events)
