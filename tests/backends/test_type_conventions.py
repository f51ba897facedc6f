"""Backend-type conventions (README "Backend types") seen on the wire, per type.

The router runs in front of the scripted backend configured as each `type`; every test looks
at what the router sent or answered. The llama.cpp types are also checked against a real
llama.cpp server in tests/realbackend/test_llama_conventions.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fakes.scripted_backend import Error, ScriptedBackend
from tests.router import RouterThread

TYPES = ["vllm", "ollama", "llamacpp", "lmstudio", "mlxcel", "generic"]
WITH_TOKENIZER = {"vllm", "llamacpp"}
WITH_HEALTH = {"vllm", "llamacpp"}
REQUIRED_AS = {"vllm": "required", "ollama": "auto", "llamacpp": "required",
               "lmstudio": "required", "mlxcel": "required", "generic": "required"}
THINKING_ON: dict[str, dict[str, Any]] = {
    "vllm": {"chat_template_kwargs": {"enable_thinking": True}},
    "llamacpp": {"chat_template_kwargs": {"enable_thinking": True}},
    "mlxcel": {"chat_template_kwargs": {"enable_thinking": True}},
    "ollama": {"think": True},
    "lmstudio": {"reasoning_effort": "medium"},
    "generic": {},
}
KNOB_KEYS = ("chat_template_kwargs", "think", "reasoning_effort")
OVERFLOW_TEXTS = {
    "vllm": "This model's maximum context length is 4096 tokens. However, you requested 5000 "
            "tokens (4990 in the messages, 10 in the completion). Please reduce the length.",
    "llamacpp": "request (5000 tokens) exceeds the available context size (4096 tokens), "
                "try increasing it",
}
GENERIC_OVERFLOW = "This model's maximum context length is 4096 tokens. However, your " \
                   "messages resulted in 5000 tokens."
TOOL = {"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def start(scripted: ScriptedBackend, router_factory: Callable[..., RouterThread]
          ) -> Callable[..., RouterThread]:
    def run(backend_type: str, url: str | None = None, models: list[str] | None = None
            ) -> RouterThread:
        backend = {"name": "b", "type": backend_type, "url": url or scripted.url,
                   "models": list(scripted.models) if models is None else models}
        return router_factory({"backends": [backend],
                               "model_aliases": {"default": scripted.models[0]}})
    return run


def post(router: RouterThread, **body: Any) -> httpx.Response:
    payload = {"model": "claude-haiku-4-5-20251001", "max_tokens": 64,
               "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(router.anthropic_url + "/v1/messages", json=payload, timeout=30)


@pytest.mark.parametrize("backend_type", TYPES)
@pytest.mark.parametrize("suffix", ["", "/", "/v1/", "/v1/chat/completions"],
                         ids=["root", "slash", "v1", "endpoint"])
def test_url_is_normalised_to_the_openai_base(backend_type: str, suffix: str,
                                              scripted: ScriptedBackend, start: Any) -> None:
    root = scripted.url.removesuffix("/v1")
    assert post(start(backend_type, url=root + suffix)).status_code == 200
    assert scripted.chat_requests()[-1].path == "/v1/chat/completions"


@pytest.mark.parametrize("backend_type", TYPES)
def test_models_are_discovered_when_not_configured(backend_type: str, start: Any) -> None:
    router = start(backend_type, models=[])
    listed = httpx.get(router.url + "/v1/models", timeout=10).json()["data"]
    assert "test-model" in [m["id"] for m in listed]


@pytest.mark.parametrize("backend_type", TYPES)
def test_readiness(backend_type: str, scripted: ScriptedBackend, start: Any) -> None:
    """Types with a health endpoint report 503 there as "loading"; the others are judged by
    their model list, which still answers."""
    router = start(backend_type)
    scripted.health_status = 503
    health = httpx.get(router.url + "/health", timeout=10)
    expected = "loading" if backend_type in WITH_HEALTH else "ready"
    assert health.json()["backends"][0]["status"] == expected
    assert health.status_code == (503 if expected == "loading" else 200)


@pytest.mark.parametrize("backend_type", TYPES)
def test_count_tokens_uses_the_tokenizer_where_there_is_one(
    backend_type: str, scripted: ScriptedBackend, start: Any
) -> None:
    router = start(backend_type)
    text = "one two three four five six seven eight nine ten"
    resp = httpx.post(router.anthropic_url + "/v1/messages/count_tokens", timeout=10, json={
        "model": "test-model", "messages": [{"role": "user", "content": text}]})
    assert resp.status_code == 200 and resp.json()["input_tokens"] > 0
    asked = [r for r in scripted.requests if r.path.endswith("/tokenize")]
    assert bool(asked) is (backend_type in WITH_TOKENIZER)
    if asked:  # the scripted tokenizer counts words, so the count is exactly its answer
        assert asked[0].path == "/tokenize"
        assert resp.json()["input_tokens"] == len(asked[0].body["content"].split())


@pytest.mark.parametrize("backend_type", TYPES)
def test_thinking_knob(backend_type: str, scripted: ScriptedBackend, start: Any) -> None:
    post(start(backend_type), max_tokens=16000,
         thinking={"type": "enabled", "budget_tokens": 8192})
    sent = {k: v for k, v in scripted.last_body.items() if k in KNOB_KEYS}
    assert sent == THINKING_ON[backend_type]


@pytest.mark.parametrize("backend_type", TYPES)
def test_required_tool_choice(backend_type: str, scripted: ScriptedBackend, start: Any) -> None:
    post(start(backend_type), tools=[TOOL], tool_choice={"type": "any"})
    assert scripted.last_body["tool_choice"] == REQUIRED_AS[backend_type]


@pytest.mark.parametrize("backend_type", TYPES)
def test_overflow_text_becomes_prompt_too_long(backend_type: str, scripted: ScriptedBackend,
                                               start: Any) -> None:
    text = OVERFLOW_TEXTS.get(backend_type, GENERIC_OVERFLOW)
    scripted.queue(Error(400, {"error": {"message": text, "type": "invalid_request_error"}}))
    resp = post(start(backend_type))
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("prompt is too long: ")
    assert "tokens > 4096 maximum" in error["message"]
