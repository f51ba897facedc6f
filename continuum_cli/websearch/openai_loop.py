"""`web_search.injection: always`: the search loop for OpenAI clients on /v1/chat/completions.

The router offers the model a `web_search` function next to the client's own tools; when the
model calls it, the provider runs and the results go back as a `tool` message with the
JSON-encoded results, for at most `max_tool_iterations` rounds; the client gets the terminal
completion (websearch.md §4.1, "Router-Managed Web Search"). The loop runs the backend
without streaming; a streaming client gets the final completion replayed as chunks (the
approach LiteLLM takes, §5). Provider failures go to the model as `{"error": ...}`; they
never fail the request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from continuum_cli.api.state import AppState
from continuum_cli.config.models import Settings
from continuum_cli.routing import Route
from continuum_cli.server.types import Response, StreamingResponse, json_response
from continuum_cli.translate.response import tool_input
from continuum_cli.websearch.blocks import TOOL_NAME, Block, snippet_of
from continuum_cli.websearch.options import WEB_SEARCH_FUNCTION, SearchOptions
from continuum_cli.metrics.labels import record_usage
from continuum_cli.websearch.providers import make_provider
from continuum_cli.websearch.searcher import Searcher

log = logging.getLogger("continuum.websearch")
Body = dict[str, Any]


def wants_injection(settings: Settings, body: Body) -> bool:
    """`injection: always` with search enabled, and the client has no `web_search` of its own."""
    ws = settings.web_search
    if not (ws.enabled and ws.injection == "always"):
        return False
    return TOOL_NAME not in {_name(t) for t in body.get("tools") or []}


async def handle(state: AppState, route: Route, body: Body,
                 tags: dict[str, str] | None = None) -> Response | StreamingResponse:
    """Answer one /v1/chat/completions request (`body["model"]` already routed)."""
    completion = await chat_with_search(state, route, body)
    tags = dict(tags or {})
    record_usage(tags, completion.get("usage"))
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(200, _replay(completion, include_usage), "text/event-stream",
                                 {"cache-control": "no-cache"}, log=tags)
    response = json_response(200, completion)
    response.log.update(tags)
    return response


async def chat_with_search(state: AppState, route: Route, body: Body) -> Body:
    """The bounded loop; returns the terminal completion without our own calls in it."""
    ws = state.settings.web_search
    if state.search is None:
        state.search = make_provider(ws, state.http)
    searcher = Searcher(state.search, SearchOptions(), max_results=ws.max_results,
                        record=state.metrics.web_search if state.metrics else None)
    log.info("web_search injected into /v1/chat/completions provider=%s model=%s",
             searcher.provider_name, body.get("model"))
    messages = list(body.get("messages") or [])
    choice: Any = body.get("tool_choice") or "auto"
    for round_no in range(1, ws.max_tool_iterations + 2):
        final = round_no > ws.max_tool_iterations or searcher.exhausted
        request = _request(body, messages, "none" if final else choice)
        completion = await state.upstream.chat(route.backend, request)
        message = _message(completion)
        ours = [c for c in message.get("tool_calls") or [] if _name(c) == TOOL_NAME]
        if final or not ours or len(ours) != len(message.get("tool_calls") or []):
            break
        messages.append({**message, "content": message.get("content")})
        for call in ours:
            messages.append(await _answer(searcher, call))
        choice = "auto"
    return _without_our_calls(completion)


def _name(item: Any) -> Any:
    return (item.get("function") or {}).get("name") if isinstance(item, dict) else None


def _request(body: Body, messages: list[Any], tool_choice: Any) -> Body:
    tools = [t for t in body.get("tools") or [] if _name(t) != TOOL_NAME]
    request = {**body, "messages": messages, "tools": [*tools, WEB_SEARCH_FUNCTION],
               "tool_choice": tool_choice, "stream": False}
    request.pop("stream_options", None)
    return request


def _message(completion: Body) -> Body:
    choices = completion.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    return dict(first.get("message") or {})


async def _answer(searcher: Searcher, call: Body) -> Body:
    query = tool_input((call.get("function") or {}).get("arguments")).get("query")
    use = searcher.call(query.strip() if isinstance(query, str) else "")
    result = await searcher.answer(use)
    return {"role": "tool", "tool_call_id": str(call.get("id") or ""),
            "content": json.dumps(results_json(use, result), ensure_ascii=False)}


def results_json(use: Block, result: Block) -> Body:
    """`{query, results: [{title, url, page_age, snippet}]}` or `{query, error}`."""
    query = use["input"]["query"]
    content = result["content"]
    if isinstance(content, dict):
        return {"query": query, "error": content.get("error_code", "unavailable")}
    return {"query": query, "results": [
        {"title": r["title"], "url": r["url"], "page_age": r.get("page_age"),
         "snippet": snippet_of(r) or ""} for r in content]}


def _without_our_calls(completion: Body) -> Body:
    """The client never sees the router's own function: calls to it are removed (a mixed
    turn keeps the client's calls; a turn left with none finishes as `stop`)."""
    choices = []
    for choice in completion.get("choices") or []:
        message = dict(choice.get("message") or {})
        calls = [c for c in message.get("tool_calls") or [] if _name(c) != TOOL_NAME]
        had_ours = len(calls) != len(message.get("tool_calls") or [])
        if had_ours:
            message["tool_calls"] = calls or None
            if not calls:
                message.pop("tool_calls")
        finish = choice.get("finish_reason")
        if had_ours and not calls and finish == "tool_calls":
            finish = "stop"
        choices.append({**choice, "message": message, "finish_reason": finish})
    return {**completion, "choices": choices}


async def _replay(completion: Body, include_usage: bool) -> AsyncIterator[bytes]:
    for chunk in completion_chunks(completion, include_usage):
        yield b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def completion_chunks(completion: Body, include_usage: bool) -> list[Body]:
    """A finished chat.completion as the `chat.completion.chunk` stream a client expects."""
    head = {"id": completion.get("id") or "chatcmpl-continuum",
            "object": "chat.completion.chunk",
            "created": completion.get("created") or int(time.time()),
            "model": completion.get("model")}
    chunks = []
    for choice in completion.get("choices") or []:
        message = choice.get("message") or {}
        delta = {k: v for k, v in message.items() if k != "tool_calls"}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{**c, "index": i} for i, c in enumerate(message["tool_calls"])]
        index = choice.get("index", 0)
        chunks.append({**head, "choices": [{"index": index, "delta": delta,
                                            "finish_reason": None}]})
        chunks.append({**head, "choices": [{"index": index, "delta": {},
                                            "finish_reason": choice.get("finish_reason")}]})
    if include_usage and completion.get("usage"):
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks
