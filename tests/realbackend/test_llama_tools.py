"""Tool calls made by a REAL llama.cpp server, through the router's Anthropic API.

llama.cpp runs SmolLM2-135M with `tests/fixtures/smollm2-tools.jinja` as its chat template
(`chat_template_file`): SmolLM2's turns plus a tool-call format llama.cpp knows. With
`tool_choice: any` the router sends `required` and llama.cpp's grammar forces a call of an
offered function with arguments that fit its schema, so even this tiny model makes real
`tool_calls`, streamed in llama.cpp's own way (a name chunk, then argument fragments). The
assertions are about structure, not the model's words: the arguments it picks may differ
between machines, their shape may not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from continuum_cli.config.models import Settings
from tests.fixtures_llama import LlamaServer
from tests.router import RouterThread

pytestmark = pytest.mark.realbackend

WEATHER = {"name": "get_weather", "description": "Get the current weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
TIME = {"name": "get_time", "description": "Get the local time in a time zone.",
        "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}},
                         "required": ["zone"]}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
RESULT = "rainy, 12 degrees"


class Recorder:
    """The OpenAI bodies the router sent the backend (wraps its upstream client)."""

    def __init__(self, router: RouterThread) -> None:
        self.bodies: list[dict[str, Any]] = []
        upstream = router.service.state.upstream
        chat, stream_chat = upstream.chat, upstream.stream_chat

        async def recorded_chat(backend: Any, body: dict[str, Any]) -> Any:
            self.bodies.append(body)
            return await chat(backend, body)

        def recorded_stream(backend: Any, body: dict[str, Any]) -> Any:
            self.bodies.append(body)
            return stream_chat(backend, body)

        upstream.chat, upstream.stream_chat = recorded_chat, recorded_stream


@pytest.fixture
def tools_router(llama_tools_server: LlamaServer,
                 router_factory: Callable[..., RouterThread]) -> tuple[RouterThread, Recorder]:
    backend = llama_tools_server.backend(request_defaults={"temperature": 0.0, "seed": 7})
    router = router_factory(Settings(backends=(backend,),
                                     model_aliases={"default": llama_tools_server.model}))
    return router, Recorder(router)


def client_for(router: RouterThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.anthropic_url, api_key="any-key",
                               max_retries=0, timeout=300)


def ask(client: anthropic.Anthropic, messages: list[Any], stream: bool,
        tools: list[dict[str, Any]], parallel: bool = True) -> tuple[Any, list[str]]:
    """One turn that must call a tool; the final message and the stream's event types."""
    choice: dict[str, Any] = {"type": "any", "disable_parallel_tool_use": not parallel}
    args: dict[str, Any] = {"model": "claude-haiku-4-5-20251001", "max_tokens": 160,
                            "messages": messages, "tools": tools, "tool_choice": choice}
    if not stream:
        return client.messages.create(**args), []
    with client.messages.stream(**args) as events:
        kinds = [f"{e.type}:{getattr(getattr(e, 'delta', None), 'type', '')}"
                 for e in events]
        return events.get_final_message(), kinds


def the_calls(message: Any, tools: list[dict[str, Any]]) -> list[Any]:
    """The message's tool_use blocks, each checked against the tool it names."""
    assert message.stop_reason == "tool_use", message
    calls = [b for b in message.content if b.type == "tool_use"]
    assert calls, message.content
    for call in calls:
        tool = next((t for t in tools if t["name"] == call.name), None)
        assert tool is not None, call.name  # one of the offered tools, by its Anthropic name
        assert call.id and len({c.id for c in calls}) == len(calls)
        (field,) = tool["input_schema"]["required"]
        assert isinstance(call.input, dict) and isinstance(call.input.get(field), str), call
    return calls


@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_a_forced_call_comes_back_as_tool_use(tools_router: tuple[RouterThread, Recorder],
                                              stream: bool) -> None:
    # One call per turn (`disable_parallel_tool_use`): allowed more, this small model may go
    # on calling until max_tokens.
    router, recorder = tools_router
    message, kinds = ask(client_for(router), ASK, stream, [WEATHER, TIME], parallel=False)
    assert len(the_calls(message, [WEATHER, TIME])) == 1
    sent = recorder.bodies[-1]
    assert sent["tool_choice"] == "required" and sent["stream"] is stream
    assert sent["parallel_tool_calls"] is False
    if stream:
        assert kinds.count("content_block_start:") == 1 and "message_stop:" in kinds
        assert "content_block_delta:input_json_delta" in kinds  # arguments arrive in pieces
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_tool_result_round_trip(tools_router: tuple[RouterThread, Recorder],
                                stream: bool) -> None:
    """tool_use out, tool_result back in: llama.cpp gets its own call and the result in its
    chat format (OpenAI `tool_calls` + a `tool` message, ids matched) and answers again."""
    router, recorder = tools_router
    client = client_for(router)
    first, _ = ask(client, ASK, stream, [WEATHER], parallel=False)
    (call,) = the_calls(first, [WEATHER])
    history = [*ASK, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                             "content": RESULT}]}]
    second, _ = ask(client, history, stream, [WEATHER], parallel=False)
    the_calls(second, [WEATHER])
    sent = recorder.bodies[-1]["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    tool = next(m for m in sent if m["role"] == "tool")
    (openai_call,) = assistant["tool_calls"]
    assert openai_call["function"]["name"] == "get_weather"
    assert json.loads(openai_call["function"]["arguments"]) == call.input
    assert tool["tool_call_id"] == openai_call["id"]
    assert RESULT in json.dumps(tool["content"])
    assert second.usage.input_tokens > first.usage.input_tokens  # the result was read
