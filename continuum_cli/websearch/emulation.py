"""Emulate Anthropic's web_search server tool on any OpenAI-compatible backend (issue 4).

Two paths, logged by the `web_search server tool emulated` line:

* `direct`: Claude Code's sub-request ("Perform a web search for the query: ...",
  websearch.md §1.9) already carries the query. Search at once, then ONE backend turn
  writes the summary from the snippets (tool_choice `none`), streamed through as text.
* `model`: any other request (or `web_search.query_extraction: model`). The server tool is
  offered to the model as a `web_search` function; each round the model's calls are run
  against the provider and answered with `tool` messages, for at most
  `max_tool_iterations` rounds, all inside one Anthropic message (§4.1 "Loop").

Both modes build one event sequence (§1.5 order: `server_tool_use` with its query as an
`input_json_delta`, the result block whole in `content_block_start`); a non-streaming
client gets the same blocks folded into one message. Search failures never fail the HTTP
request: they become `web_search_tool_result_error` blocks (§1.4).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from continuum_cli.api.state import AppState
from continuum_cli.api.streaming import PING, with_keepalive
from continuum_cli.backends.profiles import profile_for
from continuum_cli.config.models import PROVIDER_KEY_ENV, Backend
from continuum_cli.errors import ApiError, PromptTooLong, envelope
from continuum_cli.fleet import Ticket
from continuum_cli.fleet.failover import watched
from continuum_cli.routing import Route
from continuum_cli.server.types import Response, StreamingResponse, json_response
from continuum_cli.translate.request import thinking_mode, to_openai_request
from continuum_cli.translate.server_blocks import server_tool_call, server_tool_message
from continuum_cli.translate.sse_encode import PING_FRAME, encode_event
from continuum_cli.translate.stream import StreamTranslator, think_probe_chars
from continuum_cli.translate.tokens import estimate_tokens
from continuum_cli.upstream.errors import refit_max_tokens
from continuum_cli.websearch.accumulate import MessageAccumulator
from continuum_cli.websearch.blocks import (
    TOOL_NAME,
    Block,
    Event,
    render_error,
    result_block_events,
    results_text,
    server_tool_use_events,
    server_usage,
    snippet_of,
    text_block_events,
)
from continuum_cli.websearch.calls import CallSplitter
from continuum_cli.websearch.options import (
    WEB_SEARCH_FUNCTION,
    claude_code_query,
    first_tool_choice,
    is_web_search_tool,
    search_options,
)
from continuum_cli.metrics.labels import record_usage
from continuum_cli.websearch.providers import SearchProvider, make_provider
from continuum_cli.websearch.searcher import Searcher
from continuum_cli.wire.anthropic import MessagesRequest

log = logging.getLogger("continuum.websearch")
Batch = list[Event]
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def wants_emulation(req: MessagesRequest) -> bool:
    """Any `web_search_*` server tool. Claude Code's client tool `WebSearch` (a custom
    tool with an `input_schema`) is never intercepted."""
    return any(is_web_search_tool(t) for t in req.tools or [])


async def handle(
    state: AppState,
    req: MessagesRequest,
    route: Route,
    *,
    requested_model: str,
    message_id: str,
    stream: bool,
) -> Response | StreamingResponse:
    route = route.on(state.pick(route))  # translated for a ready backend's type and window
    run = _Run(state, req, route, requested_model=requested_model, message_id=message_id)
    tags = run.tags
    if not stream:
        response = json_response(200, await _collect(run.events()))
        response.log.update(tags)
        return response
    frames = _frames(run.events(), state.settings.server.ping_interval)
    try:
        # the first frame waits for the backend's first answer, so a backend that fails
        # before anything was sent still gets a real HTTP status (checklist item 44)
        first = await frames.__anext__()
    except BaseException:
        await frames.aclose()
        raise
    return StreamingResponse(200, _prepend(first, frames), "text/event-stream",
                             dict(_SSE_HEADERS), log=tags)


async def _collect(events: AsyncIterator[Batch]) -> dict[str, Any]:
    acc = MessageAccumulator()
    async for batch in events:
        for name, payload in batch:
            acc.feed(name, payload)
    return acc.result()


async def _frames(events: AsyncIterator[Batch], ping_interval: float) -> AsyncIterator[bytes]:
    """SSE bytes, with a `ping` whenever nothing was sent for `ping_interval` seconds (while
    the provider runs, §1.5). After the first frame an error becomes one `event: error`."""
    started = False
    try:
        async for batch in with_keepalive(events, ping_interval):
            if batch is PING:
                if started:  # nothing goes out before the backend accepted the request
                    yield PING_FRAME
                continue
            started = True
            yield b"".join(encode_event(name, payload) for name, payload in batch)
    except Exception as exc:
        if not started:
            raise
        log.warning("web_search stream failed after the response started: %s",
                    getattr(exc, "message", exc))
        yield encode_event("error", envelope(exc, "anthropic")[1])


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for frame in rest:
        yield frame


def _provider(state: AppState) -> SearchProvider | None:
    settings = state.settings.web_search
    env = PROVIDER_KEY_ENV[settings.provider]
    if not settings.enabled:
        log.warning(
            "web_search server tool requested but web search is disabled; answering "
            "web_search_tool_result_error unavailable. Enable it in config.yaml: web_search: "
            '{enabled: true, provider: %s, api_key: "${%s}"}', settings.provider, env)
        return None
    if settings.injection == "off":
        log.warning("web_search server tool requested but web_search.injection is off; "
                    "answering unavailable. Set web_search.injection: server_tool to enable it")
        return None
    if state.search is None:
        state.search = make_provider(settings, state.http)
    return state.search


class _Run:
    """One emulated request: the translated base request, the searcher, block indexes and
    the usage summed over every backend turn."""

    def __init__(self, state: AppState, req: MessagesRequest, route: Route, *,
                 requested_model: str, message_id: str) -> None:
        options = search_options(req)  # both domain lists -> 400 before anything runs
        settings = state.settings.web_search
        self.state, self.req, self.route = state, req, route
        self.model, self.message_id = requested_model, message_id
        self.profile = profile_for(route.backend.type)
        self.input_estimate = estimate_tokens(req)
        self.translated = to_openai_request(
            req, upstream_model=route.upstream_model, profile=self.profile,
            snippet_of=snippet_of,
            max_tokens_cap=state.max_tokens_cap(route.backend, self.input_estimate))
        self.searcher = Searcher(_provider(state), options, max_results=settings.max_results,
                                 record=state.metrics.web_search if state.metrics else None)
        # access tags: metrics and accounting; the token counts are added at the end
        self.tags: dict[str, Any] = {"backend": route.backend.name,
                                     "model": route.upstream_model}
        self.query = claude_code_query(req)
        direct = self.query is not None and settings.query_extraction == "direct"
        self.path = "direct" if direct else "model"
        self.max_rounds = settings.max_tool_iterations
        self.max_tokens: int | None = None  # lowered once a backend says it does not fit
        # holding back leading text to spot a bare `</think>` costs latency; only worth it
        # when the client asked for thinking (the same rule as the plain Messages path)
        mode = thinking_mode(req)
        self.probe_chars = 0 if mode in (None, "off") else think_probe_chars(mode)
        self.usage = {"input_tokens": 0, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 0}
        log.info("web_search server tool emulated path=%s provider=%s max_uses=%s model=%s",
                 self.path, self.searcher.provider_name, options.max_uses, requested_model)

    def events(self) -> AsyncIterator[Batch]:
        if self.path == "direct":
            return self._direct(str(self.query))
        return self._loop()

    # -- the direct path (Claude Code's sub-request) --------------------------------------

    async def _direct(self, query: str) -> AsyncIterator[Batch]:
        translator = self._translator(first_index=2)
        yield translator.start_events()
        use = self.searcher.call(query)
        yield server_tool_use_events(0, use)
        result = await self.searcher.answer(use)
        yield result_block_events(1, result)
        stop = "end_turn"
        if isinstance(result["content"], list) and result["content"]:
            async for batch in self._summary(translator, use, result):
                yield batch
            stop = _final_stop(translator.stop_reason)
        else:
            yield text_block_events(2, _no_results_text(query, result))
        yield self._end_events(stop, None)

    async def _summary(self, translator: StreamTranslator, use: Block,
                       result: Block) -> AsyncIterator[Batch]:
        """The one backend turn that writes the answer from the snippets. If the backend
        fails here, the client still gets the results, rendered as text."""
        messages = [*self.translated.body["messages"], *_round_messages("", [(use, result)])]
        splitter = CallSplitter()
        try:
            async for batch in self._turn(self._body(messages, "none"), translator, splitter):
                yield batch
        except ApiError as exc:
            log.warning("web_search summary turn failed (%s); answering with the results as "
                        "text", exc.message)
            yield translator.close()
        if not splitter.text.strip():
            yield text_block_events(translator.next_index, results_text(use, result))

    # -- the model path (general clients) ---------------------------------------------------

    async def _loop(self) -> AsyncIterator[Batch]:
        messages = list(self.translated.body["messages"])
        choice = first_tool_choice(self.req, self.profile, forced=self.query is not None)
        index, splitter, translator = 0, CallSplitter(), self._translator(0)
        for round_no in range(1, self.max_rounds + 2):
            final = round_no > self.max_rounds or self.searcher.exhausted
            translator, splitter = self._translator(index), CallSplitter()
            body = self._body(messages, "none" if final else choice)
            async for batch in self._turn(body, translator, splitter, first=round_no == 1):
                yield batch
            index, choice = translator.next_index, "auto"
            if final or not splitter.queries:
                break
            pairs: list[tuple[Block, Block]] = []
            async for batch in self._search_all(splitter.queries, index, pairs):
                yield batch
            index += 2 * len(pairs)
            messages += _round_messages(splitter.text, pairs)
            if splitter.has_client_calls:
                break
        stop = "tool_use" if splitter.has_client_calls else _final_stop(translator.stop_reason)
        yield self._end_events(stop, translator.stop_sequence)

    async def _search_all(self, queries: list[str], index: int,
                          pairs: list[tuple[Block, Block]]) -> AsyncIterator[Batch]:
        for query in queries:
            use = self.searcher.call(query)
            yield server_tool_use_events(index, use)
            result = await self.searcher.answer(use)
            yield result_block_events(index + 1, result)
            pairs.append((use, result))
            index += 2

    # -- backend turns ----------------------------------------------------------------------

    async def _turn(self, body: dict[str, Any], translator: StreamTranslator,
                    splitter: CallSplitter, *, first: bool = False) -> AsyncIterator[Batch]:
        """One streamed backend turn through the translator, web_search calls split off."""
        async with contextlib.AsyncExitStack() as stack:
            chunks = await self._open(stack, body)
            if first:
                yield translator.start_events()
            async for chunk in chunks:
                events = translator.feed(splitter.feed(chunk))
                if events:
                    yield events
        yield translator.close()
        for key, value in (translator.usage or {}).items():
            self.usage[key] = self.usage.get(key, 0) + value

    async def _open(self, stack: contextlib.AsyncExitStack,
                    body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Open the backend stream on a ready backend of the model (the fleet fails over
        while the turn has not started)."""
        async def attempt(route: Route, ticket: Ticket) -> AsyncIterator[dict[str, Any]]:
            chunks = await self._open_on(stack, route.backend, body)
            ticket.hold()
            stack.callback(ticket.release)
            return watched(chunks, ticket)

        return await self.state.send(self.route, attempt)

    async def _open_on(self, stack: contextlib.AsyncExitStack, backend: Backend,
                       body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Claude Code asks for 32k-128k max_tokens; an engine that counts them against its
        window (vLLM) gets the room that is left (checklist item 25)."""
        try:
            return await stack.enter_async_context(self.state.upstream.stream_chat(backend, body))
        except PromptTooLong as exc:
            room = refit_max_tokens(exc)
            if room is None:
                raise
            self.max_tokens = room
            log.info("max_tokens %s does not fit the backend's window; retrying the "
                     "web_search turn with max_tokens %d", body.get("max_tokens"), room)
            body = {**body, "max_tokens": self.max_tokens}
            return await stack.enter_async_context(self.state.upstream.stream_chat(backend, body))

    def _translator(self, first_index: int) -> StreamTranslator:
        return StreamTranslator(
            model=self.model, message_id=self.message_id, tool_names=self.translated.tool_names,
            input_tokens=self.input_estimate, stop_sequences=self.req.stop_sequences,
            first_index=first_index, think_probe_chars=self.probe_chars,
        )

    def _body(self, messages: list[dict[str, Any]], tool_choice: Any) -> dict[str, Any]:
        """The translated request with the `web_search` function offered. The backend is
        always streamed; a non-streaming client gets the folded message."""
        body = dict(self.translated.body)
        tools = [t for t in body.get("tools") or []
                 if (t.get("function") or {}).get("name") != TOOL_NAME]
        body.update(messages=messages, tools=[*tools, WEB_SEARCH_FUNCTION],
                    tool_choice=tool_choice, stream=True,
                    stream_options={"include_usage": True})
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def _end_events(self, stop_reason: str, stop_sequence: str | None) -> Batch:
        usage = {**self.usage, "server_tool_use": server_usage(self.searcher.executed)}
        if not usage["input_tokens"]:
            usage["input_tokens"] = self.input_estimate
        record_usage(self.tags, usage)
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        return [("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
                ("message_stop", {"type": "message_stop"})]


def _round_messages(text: str, pairs: list[tuple[Block, Block]]) -> list[dict[str, Any]]:
    """The assistant turn that called web_search and the `tool` messages answering it, in
    the same rendering the translator uses for replayed history (websearch.md §1.8)."""
    assistant = {"role": "assistant", "content": text if text.strip() else None,
                 "tool_calls": [server_tool_call(use) for use, _ in pairs]}
    answers = [server_tool_message(result, call=use, snippet_of=snippet_of)
               for use, result in pairs]
    return [assistant, *answers]


def _final_stop(reason: str | None) -> str:
    # our own calls were split off, so a leftover tool_use means nothing for the client
    return "end_turn" if reason in (None, "tool_use") else reason


def _no_results_text(query: str, result: Block) -> str:
    content = result["content"]
    if isinstance(content, dict):
        return render_error(query, str(content.get("error_code", "unavailable")))
    return f'The web search for "{query}" returned no results.'
