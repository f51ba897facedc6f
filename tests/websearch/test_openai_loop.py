"""`web_search.injection: always` on /v1/chat/completions: the loop against the scripted
OpenAI backend and a fake provider, over real sockets (the module's own entry point)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from continuum_cli.api.state import AppState
from continuum_cli.config.models import Backend, Settings, WebSearchSettings
from continuum_cli.routing import resolve
from continuum_cli.upstream.client import UpstreamClient
from continuum_cli.websearch import openai_loop
from tests.fakes.scripted_backend import ScriptedBackend, Text, ToolCalls
from tests.fakes.search_providers import FakeSearchServer

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "What is asyncio?"}]


@pytest.fixture
async def env(scripted: ScriptedBackend) -> AsyncIterator[tuple[AppState, Any, FakeSearchServer]]:
    with FakeSearchServer("serper") as search:
        settings = Settings(
            backends=(Backend(name="scripted", type="generic", url=scripted.url,
                              models=scripted.models),),
            web_search=WebSearchSettings(enabled=True, provider="serper", api_key=search.key,
                                         base_url=search.base_url, injection="always",
                                         max_tool_iterations=2))
        async with httpx.AsyncClient() as http:
            state = AppState(settings=settings, upstream=UpstreamClient(settings.backends),
                             http=http)
            route = resolve(scripted.models[0], settings, {})
            yield state, route, search
            await state.upstream.aclose()


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "test-model", "messages": list(USER), **extra}


@pytest.mark.parametrize(
    ("web_search", "tools", "wanted"),
    [
        pytest.param({"enabled": True, "api_key": "k", "injection": "always"}, [], True,
                     id="always"),
        pytest.param({"enabled": True, "api_key": "k"}, [], False, id="server_tool-only"),
        pytest.param({"enabled": False, "injection": "always"}, [], False, id="disabled"),
        pytest.param({"enabled": True, "api_key": "k", "injection": "always"},
                     [{"type": "function", "function": {"name": "web_search"}}], False,
                     id="client-owns-web_search"),
    ],
)
def test_wants_injection(web_search, tools, wanted):
    settings = Settings(web_search=WebSearchSettings(**web_search))
    assert openai_loop.wants_injection(settings, body(tools=tools)) is wanted


async def test_search_round_then_answer(env, scripted):
    state, route, search = env
    scripted.queue(ToolCalls([("web_search", '{"query": "python asyncio"}')]),
                   Text("asyncio is a library."))
    response = await openai_loop.handle(state, route, body())
    completion = json.loads(response.body)
    message = completion["choices"][0]["message"]
    assert message["content"] == "asyncio is a library." and "tool_calls" not in message
    assert search.queries == ["python asyncio"]
    first, second = (r.body for r in scripted.chat_requests())
    assert first["tool_choice"] == "auto" and first["stream"] is False
    assert [t["function"]["name"] for t in first["tools"]] == ["web_search"]
    tool = second["messages"][-1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_0"
    payload = json.loads(tool["content"])
    assert payload["query"] == "python asyncio"
    assert payload["results"][0] == {
        "title": "asyncio — Asynchronous I/O",
        "url": "https://docs.python.org/3/library/asyncio.html", "page_age": "March 3, 2025",
        "snippet": "asyncio is a library to write concurrent code using the async/await syntax."}


async def test_provider_error_goes_to_the_model(env, scripted):
    state, route, search = env
    search.mode = "server_error"
    scripted.queue(ToolCalls([("web_search", '{"query": "q"}')]), Text("No luck."))
    response = await openai_loop.handle(state, route, body())
    assert json.loads(response.body)["choices"][0]["message"]["content"] == "No luck."
    tool = scripted.chat_requests()[1].body["messages"][-1]
    assert json.loads(tool["content"]) == {"query": "q", "error": "unavailable"}


async def test_loop_is_bounded(env, scripted):
    state, route, search = env
    scripted.default = ToolCalls([("web_search", '{"query": "again"}')])
    response = await openai_loop.handle(state, route, body())
    message = json.loads(response.body)["choices"][0]
    assert "tool_calls" not in message["message"] and message["finish_reason"] == "stop"
    requests = scripted.chat_requests()
    assert len(requests) == 3 and requests[-1].body["tool_choice"] == "none"
    assert len(search.requests) == 2


async def test_client_tools_come_back_without_ours(env, scripted):
    state, route, search = env
    bash = {"type": "function", "function": {"name": "Bash", "parameters": {"type": "object"}}}
    scripted.queue(ToolCalls([("web_search", '{"query": "q"}'), ("Bash", '{"cmd": "ls"}')]))
    response = await openai_loop.handle(state, route, body(tools=[bash]))
    choice = json.loads(response.body)["choices"][0]
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["Bash"]
    assert choice["finish_reason"] == "tool_calls" and search.requests == []


async def test_streaming_client_gets_the_final_completion_as_chunks(env, scripted):
    state, route, _ = env
    scripted.queue(ToolCalls([("web_search", '{"query": "q"}')]), Text("Streamed answer."))
    response = await openai_loop.handle(
        state, route, body(stream=True, stream_options={"include_usage": True}))
    frames = [frame async for frame in response.chunks]
    assert frames[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(f[6:]) for f in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Streamed answer."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert all(r.body["stream"] is False for r in scripted.chat_requests())
