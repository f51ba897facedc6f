"""`backends[].scale_usage_to` through the real router with the anthropic SDK: every token
count the client sees (message usage, streamed usage, count_tokens) is scaled by
`scale_usage_to ÷ context window`, so Claude Code's compaction sees the real fraction used."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from continuum_cli.translate.usage_scale import scale_events, scaled_count, scaled_usage
from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend, Text, usage

USER = [{"role": "user", "content": "hi"}]


def scaled_router(router_factory, scripted: ScriptedBackend, **backend: object):
    config = basic_config(scripted)
    config["backends"][0].update(backend)
    return router_factory(config)


def client(router) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_usage_is_scaled(router_factory, scripted: ScriptedBackend, stream: bool) -> None:
    router = scaled_router(router_factory, scripted, context_window=32_000,
                           scale_usage_to=200_000)  # x 6.25
    scripted.queue(Text("Hello.", usage=usage(prompt=1000, completion=10, cached=200)))
    kwargs = dict(model="sonnet", max_tokens=50, messages=USER)
    if stream:
        with client(router).messages.stream(**kwargs) as s:
            events = list(s)
            message = s.get_final_message()
        start = next(e for e in events if e.type == "message_start")
        assert start.message.usage.input_tokens > 0
    else:
        message = client(router).messages.create(**kwargs)
    assert message.usage.input_tokens == 5000  # (1000 - 200 cached) x 6.25
    assert message.usage.cache_read_input_tokens == 1250
    assert message.usage.output_tokens == 62  # 62.5, rounded to even
    assert message.content[0].text == "Hello."


def test_count_tokens_is_scaled(router_factory, scripted: ScriptedBackend) -> None:
    plain = scaled_router(router_factory, scripted)
    scaled = scaled_router(router_factory, scripted, context_window=20_000,
                           scale_usage_to=200_000)
    count = [client(r).messages.count_tokens(model="sonnet", messages=USER).input_tokens
             for r in (plain, scaled)]
    assert count[1] == count[0] * 10


def test_unscaled_without_a_known_window(router_factory, scripted: ScriptedBackend) -> None:
    router = scaled_router(router_factory, scripted, scale_usage_to=200_000)
    scripted.queue(Text("Hello.", usage=usage(prompt=1000, completion=10)))
    message = client(router).messages.create(model="sonnet", max_tokens=50, messages=USER)
    assert message.usage.input_tokens == 1000


def test_health_reports_the_configured_window(router_factory, scripted) -> None:
    router = scaled_router(router_factory, scripted, context_window=32_000)
    health = httpx.get(router.url + "/health").json()
    assert health["backends"][0]["context_window"] == 32_000


@pytest.mark.parametrize(("count", "factor", "expected"), [
    pytest.param(0, 6.25, 0, id="zero-stays-zero"),
    pytest.param(1, 0.1, 1, id="never-rounded-to-zero"),
    pytest.param(1000, 6.25, 6250, id="up"),
    pytest.param(1000, 0.5, 500, id="down"),
])
def test_scaled_count(count: int, factor: float, expected: int) -> None:
    assert scaled_count(count, factor) == expected


def test_only_usage_events_change() -> None:
    start = ("message_start", {"type": "message_start",
                               "message": {"id": "m", "usage": {"input_tokens": 10,
                                                                "output_tokens": 1}}})
    delta = ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                               "usage": {"output_tokens": 4, "server_tool_use": None}})
    text = ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": "10"}})
    out = scale_events([start, delta, text], 2.0)
    assert out[0][1]["message"]["usage"] == {"input_tokens": 20, "output_tokens": 2}
    assert out[1][1]["usage"] == {"output_tokens": 8, "server_tool_use": None}
    assert out[2] == text and out[2][1] is text[1]
    assert start[1]["message"]["usage"]["input_tokens"] == 10  # the input is not changed
    assert scaled_usage({"input_tokens": 3}, 1.0) == {"input_tokens": 3}
