"""The Anthropic API of the router in front of a REAL llama.cpp server (SmolLM2-135M).

Official `anthropic` SDK, real sockets. Assertions are about structure, never exact wording or
speed: a different CPU or thread count may change the model's tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest

from continuum_cli.config.models import Settings
from tests.fixtures_llama import LlamaServer
from tests.router import RouterThread

pytestmark = pytest.mark.realbackend

QUESTION = "What is the capital of France? Answer in one sentence."
SYSTEM = "You are a helpful assistant. Answer briefly and plainly."

# count_tokens vs. llama.cpp's own count of the prompt it renders (chat template + /tokenize).
# The router counts the request's text with the backend's /tokenize; the chat template's role
# markers (`<|im_start|>system\n`, `<|im_end|>\n`, the assistant header) are not in that text,
# about 5 tokens per message. Documented margin: 10 % of the true count, at least 16 tokens.
COUNT_MARGIN_RATIO = 0.10
COUNT_MARGIN_MIN = 16
# This SDK version has no `temperature` argument; the Messages API still takes the field.
GREEDY = {"temperature": 0}


def client_for(router: RouterThread, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.anthropic_url, api_key="any-key",
                               max_retries=0, timeout=120, **kwargs)


def test_non_streamed_turn_returns_text(llama_router: RouterThread, llama_server: LlamaServer
                                        ) -> None:
    message = client_for(llama_router).messages.create(
        model="claude-haiku-4-5-20251001", max_tokens=24, extra_body=GREEDY, system=SYSTEM,
        messages=[{"role": "user", "content": QUESTION}])
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "claude-haiku-4-5-20251001"  # the requested name is echoed
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_streamed_turn_returns_text(llama_router: RouterThread) -> None:
    client = client_for(llama_router)
    with client.messages.stream(
        model=llama_router.settings.model_aliases["default"], max_tokens=24, extra_body=GREEDY,
        system=SYSTEM, messages=[{"role": "user", "content": QUESTION}],
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "content_block_start" in events and "content_block_stop" in events
    assert events.count("text") >= 1  # the SDK's per-delta text events
    assert final.content[0].type == "text" and final.content[0].text.strip()
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens > 0


def llama_prompt_tokens(server: LlamaServer, messages: list[dict[str, str]]) -> int:
    """The server's own count: render with its chat template, then /tokenize that prompt."""
    headers = {"authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.root, headers=headers, timeout=60) as http:
        prompt = http.post("/apply-template", json={"messages": messages}).json()["prompt"]
        return len(http.post("/tokenize", json={"content": prompt}).json()["tokens"])


def test_count_tokens_matches_llama_tokenizer(llama_router: RouterThread,
                                              llama_server: LlamaServer) -> None:
    question = " ".join([QUESTION] * 12)  # a few hundred tokens: the margin stays meaningful
    truth = llama_prompt_tokens(llama_server, [{"role": "system", "content": SYSTEM},
                                               {"role": "user", "content": question}])
    counted = client_for(llama_router).messages.count_tokens(
        model="claude-opus-5-5", system=SYSTEM,
        messages=[{"role": "user", "content": question}]).input_tokens
    margin = max(COUNT_MARGIN_MIN, COUNT_MARGIN_RATIO * truth)
    assert abs(counted - truth) <= margin, (counted, truth, margin)


def test_count_tokens_agrees_with_usage_of_a_real_turn(llama_router: RouterThread) -> None:
    client = client_for(llama_router)
    request: dict[str, Any] = {"model": "claude-opus-5-5", "system": SYSTEM,
                               "messages": [{"role": "user", "content": QUESTION * 6}]}
    counted = client.messages.count_tokens(**request).input_tokens
    usage = client.messages.create(max_tokens=1, **request).usage
    # llama.cpp reuses the cached prefix of earlier prompts; Anthropic usage reports that part
    # as cache reads, not input, so the prompt is the sum.
    used = usage.input_tokens + (usage.cache_read_input_tokens or 0)
    assert abs(counted - used) <= max(COUNT_MARGIN_MIN, COUNT_MARGIN_RATIO * used), usage


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_prompt_over_the_context_is_prompt_too_long(llama_router: RouterThread,
                                                    llama_server: LlamaServer,
                                                    stream: bool) -> None:
    words = " ".join(["context"] * (llama_server.n_ctx + 200))  # > n_ctx tokens
    with pytest.raises(anthropic.BadRequestError) as caught:
        client_for(llama_router).messages.create(
            model="default-model", max_tokens=8, stream=stream,
            messages=[{"role": "user", "content": words}])
    err = caught.value
    assert err.status_code == 400
    assert err.body["type"] == "error"  # type: ignore[index]
    assert err.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "prompt is too long" in err.body["error"]["message"]  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_wrong_backend_key_is_an_authentication_error(
    llama_server: LlamaServer, router_factory: Callable[..., RouterThread], stream: bool
) -> None:
    backend = llama_server.backend(api_key="not-the-key")
    router = router_factory(Settings(backends=(backend,)))
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client_for(router).messages.create(
            model=llama_server.model, max_tokens=8, stream=stream,
            messages=[{"role": "user", "content": "hi"}])
    err = caught.value
    assert err.status_code == 401
    assert err.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    message = err.body["error"]["message"]  # type: ignore[index]
    assert "backends[].api_key" in message and "not-the-key" not in message


def test_thinking_request_is_accepted_by_llama(llama_router: RouterThread) -> None:
    """Claude Code sends `thinking`; the router's llama.cpp knob (chat_template_kwargs) must
    not make the real server refuse the request."""
    message = client_for(llama_router).messages.create(
        model="claude-opus-5-5", max_tokens=1100, extra_body=GREEDY,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Say hi."}])
    assert any(block.type == "text" for block in message.content)
