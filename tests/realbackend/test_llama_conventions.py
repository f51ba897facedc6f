"""Backend-type conventions (profiles.py, README table) checked against a REAL llama.cpp server.

What can run here runs here: base-URL normalisation, model discovery through /v1/models,
/health 503-while-loading then 200, /tokenize, the overflow error text, the thinking knob.
Conventions of engines that cannot run on this machine (vLLM, Ollama, LM Studio, MLX) are
checked against the scripted backend elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from continuum_cli.backends.embedded import EmbeddedServer
from continuum_cli.backends.profiles import normalize_base_url, profile_for, server_root
from continuum_cli.errors import PromptTooLong
from continuum_cli.upstream.client import UpstreamClient
from continuum_cli.upstream.errors import map_status
from tests.fixtures_llama import MODEL_CACHE, LlamaServer, LoopThread, embedded_backend

pytestmark = pytest.mark.realbackend

LLAMA_TYPES = ["llamacpp", "embedded"]


def auth(server: LlamaServer) -> dict[str, str]:
    return {"authorization": f"Bearer {server.api_key}"}


@pytest.mark.parametrize("suffix", [
    pytest.param("", id="bare-root"),
    pytest.param("/", id="trailing-slash"),
    pytest.param("/v1", id="with-v1"),
    pytest.param("/v1/", id="with-v1-slash"),
    pytest.param("/v1/chat/completions", id="full-endpoint"),
])
@pytest.mark.parametrize("backend_type", LLAMA_TYPES)
def test_configured_url_normalises_to_a_working_base(llama_server: LlamaServer, suffix: str,
                                                     backend_type: str) -> None:
    base = normalize_base_url(llama_server.root + suffix, backend_type)
    assert base == llama_server.base_url
    resp = httpx.get(base + "/models", headers=auth(llama_server), timeout=30)
    assert resp.status_code == 200


def test_url_without_scheme_gets_http(llama_server: LlamaServer) -> None:
    bare = llama_server.root.removeprefix("http://")
    assert normalize_base_url(bare, "llamacpp") == llama_server.base_url


def test_model_discovery_lists_the_served_aliases(llama_server: LlamaServer,
                                                  llama_loop: LoopThread) -> None:
    backend = llama_server.backend(models=())

    async def discover() -> list[str]:
        client = UpstreamClient((backend,))
        try:
            return await client.list_models(backend)
        finally:
            await client.aclose()

    assert llama_loop.run(discover()) == [llama_server.model]


@pytest.mark.parametrize("backend_type", LLAMA_TYPES)
def test_tokenize_endpoint_counts_like_the_server(llama_server: LlamaServer,
                                                  llama_loop: LoopThread,
                                                  backend_type: str) -> None:
    profile = profile_for(backend_type)
    assert profile.tokenize_path == "/tokenize"
    text = "The quick brown fox jumps over the lazy dog. " * 5
    direct = httpx.post(server_root(llama_server.base_url) + profile.tokenize_path,
                        json={"content": text}, headers=auth(llama_server), timeout=30)
    expected = len(direct.json()["tokens"])
    backend = llama_server.backend(type=backend_type, url=llama_server.base_url)

    async def count() -> int | None:
        client = UpstreamClient((backend,))
        client.set_base_url(backend.name, llama_server.base_url)
        try:
            return await client.tokenize(backend, text)
        finally:
            await client.aclose()

    assert llama_loop.run(count()) == expected > 10


@pytest.mark.parametrize("backend_type", LLAMA_TYPES)
def test_overflow_text_is_recognised(llama_server: LlamaServer, backend_type: str) -> None:
    words = " ".join(["overflow"] * (llama_server.n_ctx + 100))
    resp = httpx.post(llama_server.base_url + "/chat/completions", headers=auth(llama_server),
                      json={"messages": [{"role": "user", "content": words}], "max_tokens": 4},
                      timeout=120)
    assert resp.status_code == 400
    assert profile_for(backend_type).matches_overflow(resp.text)
    backend = llama_server.backend(type=backend_type)
    error = map_status(backend, resp.status_code, resp.text, resp.headers)
    assert isinstance(error, PromptTooLong)
    assert error.maximum == llama_server.n_ctx and error.tokens and error.tokens > error.maximum
    assert error.message.startswith("prompt is too long")


def test_thinking_knob_is_accepted(llama_server: LlamaServer) -> None:
    knob = profile_for("llamacpp").thinking_knob
    assert knob == "chat_template_kwargs"
    resp = httpx.post(llama_server.base_url + "/chat/completions", headers=auth(llama_server),
                      json={"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8,
                            knob: {"enable_thinking": False}}, timeout=120)
    assert resp.status_code == 200, resp.text


def test_health_is_503_while_loading_then_200(llama_model_path: Path,
                                              llama_loop: LoopThread) -> None:
    """llama.cpp listens before its model is loaded and answers /health 503 meanwhile."""
    server = EmbeddedServer(embedded_backend(llama_model_path, name="second", api_key=None),
                            cache_dir=MODEL_CACHE)
    statuses = llama_loop.run(_poll_health_during_start(server))
    try:
        assert statuses[-1] == (200, "ok")
        loading = [s for s in statuses if s[0] != 200]
        assert loading, "never saw the server while it was loading"
        assert all(s == (503, "Loading model") for s in loading), loading
    finally:
        llama_loop.run(server.stop())


async def _poll_health_during_start(server: EmbeddedServer) -> list[tuple[int, str]]:
    start = asyncio.ensure_future(server.start())
    statuses: list[tuple[int, str]] = []
    async with httpx.AsyncClient(timeout=5) as http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (start.done() and start.exception()):
            if server.base_url is not None:
                status = await _health(http, server.base_url)
                if status is not None:
                    statuses.append(status)
                    if status[0] == 200:
                        break
            await asyncio.sleep(0.01)
    await start
    return statuses


async def _health(http: httpx.AsyncClient, base_url: str) -> tuple[int, str] | None:
    try:
        resp = await http.get(server_root(base_url) + "/health")
    except httpx.TransportError:
        return None  # not listening yet
    data = resp.json()
    return resp.status_code, data.get("status") or data.get("error", {}).get("message", "")


def required_call(server: LlamaServer) -> dict[str, Any]:
    tool = {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}
    resp = httpx.post(server.base_url + "/chat/completions", headers=auth(server),
                      json={"messages": [{"role": "user", "content": "Weather in Paris?"}],
                            "tools": [tool], "tool_choice": "required", "max_tokens": 40,
                            "parallel_tool_calls": False,
                            "temperature": 0}, timeout=300)
    assert resp.status_code == 200, resp.text
    choice: dict[str, Any] = resp.json()["choices"][0]
    return choice


def test_required_tool_choice_depends_on_the_chat_template(
        llama_server: LlamaServer, llama_tools_server: LlamaServer) -> None:
    """The profile sends "required" to llama.cpp (README, backend table notes). This build
    accepts it everywhere; it forces a call when the chat template has a tool-call format
    llama.cpp knows (the tools template: Functionary-style lines), and SmolLM2's own
    template has no tool support at all, so there the tools are ignored and it answers in
    prose."""
    assert all(profile_for(t).honours_required_tool_choice for t in LLAMA_TYPES)
    plain = required_call(llama_server)
    assert plain["finish_reason"] != "tool_calls" and not plain["message"].get("tool_calls")
    forced = required_call(llama_tools_server)
    assert forced["finish_reason"] == "tool_calls", forced
    (call,) = forced["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"])["city"], str)
