"""The web_search server-tool emulation end to end: the real router on a port, the official
`anthropic` SDK (stream and non-stream), the scripted OpenAI backend, a local fake provider,
and Claude Code's captured WebSearch sub-requests (tests/fixtures/claude_code/)."""

from __future__ import annotations

import base64
import inspect
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from continuum_cli.websearch.blocks import decode_encrypted_content
from tests.conftest import basic_config
from tests.fakes.scripted_backend import Error, ScriptedBackend, Text, ToolCalls
from tests.fakes.search_providers import FakeSearchServer

CAPTURES = Path(__file__).parent.parent / "fixtures" / "claude_code"
QUERY = "capture server secret word"
SUMMARY = "The secret word is PINEAPPLE-42."
ID = re.compile(r"^srvtoolu_[A-Za-z0-9]{24}$")
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search"}


def capture(name: str) -> dict[str, Any]:
    body = json.loads((CAPTURES / name).read_text())["body"]
    body.pop("stream", None)
    return body


def user_request(tool: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-opus-5-5", "max_tokens": 200,
            "messages": [{"role": "user", "content": "What is asyncio?"}],
            "tools": [tool or SEARCH_TOOL], **extra}


@pytest.fixture
def search() -> Any:
    with FakeSearchServer("brave") as fake:
        yield fake


def search_config(fake: FakeSearchServer, **over: Any) -> dict[str, Any]:
    return {"enabled": True, "provider": fake.provider, "api_key": fake.key,
            "base_url": fake.base_url, **over}


Start = Callable[..., tuple[anthropic.Anthropic, str]]


@pytest.fixture
def start(scripted: ScriptedBackend, router_factory: Any, search: FakeSearchServer) -> Start:
    """Start the router; returns (SDK client, router base URL for /anthropic)."""

    def go(web_search: dict[str, Any] | None = None, **extra: Any) -> Any:
        config = basic_config(scripted, web_search=web_search or search_config(search), **extra)
        router = router_factory(config)
        client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="test-key",
                                     max_retries=0, timeout=30)
        return client, router.anthropic_url

    return go


def send(client: anthropic.Anthropic, body: dict[str, Any], stream: bool) -> dict[str, Any]:
    method = client.messages.stream if stream else client.messages.create
    known = inspect.signature(method).parameters
    params = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}  # as captured, e.g. temperature
    if stream:
        with client.messages.stream(**params, extra_body=extra) as events:
            return events.get_final_message().model_dump()
    return client.messages.create(**params, extra_body=extra).model_dump()


def types_of(message: dict[str, Any]) -> list[str]:
    return [block["type"] for block in message["content"]]


def searches(message: dict[str, Any]) -> int:
    return message["usage"]["server_tool_use"]["web_search_requests"]


def assert_paired(use: dict[str, Any], result: dict[str, Any], query: str) -> None:
    assert ID.match(use["id"]) and result["tool_use_id"] == use["id"]
    assert use["name"] == "web_search" and use["input"] == {"query": query}


# -- Claude Code's sub-request: the direct path --------------------------------------------


@pytest.mark.parametrize(
    ("name", "stream"),
    [
        pytest.param("websearch-intermediate.json", True, id="auto-choice-stream"),
        pytest.param("websearch-intermediate-sonnet-4-5.json", True, id="forced-choice-stream"),
        pytest.param("websearch-intermediate-nonstream.json", False, id="nonstream"),
        pytest.param("websearch-tools-flag-intermediate.json", False, id="tools-flag-nonstream"),
    ],
)
def test_claude_code_sub_request(start, scripted, search, caplog, name, stream):
    client, _ = start()
    scripted.queue(Text(SUMMARY))
    with caplog.at_level(logging.INFO, logger="continuum"):
        message = send(client, capture(name), stream)

    assert types_of(message) == ["server_tool_use", "web_search_tool_result", "text"]
    use, result, text = message["content"]
    assert_paired(use, result, QUERY)
    assert [r["url"] for r in result["content"]] == [r["url"] for r in search.results]
    assert [r["title"] for r in result["content"]] == [r["title"] for r in search.results]
    assert result["content"][0]["page_age"] == "March 3, 2025"
    assert all(decode_encrypted_content(r["encrypted_content"]) for r in result["content"])
    assert text["text"] == SUMMARY
    assert searches(message) == 1 and message["stop_reason"] == "end_turn"
    assert search.queries == [QUERY]
    assert "web_search server tool emulated path=direct provider=brave max_uses=8" in caplog.text
    assert re.search(r"web_search loop round complete provider=brave query='capture server "
                     r"secret word' results=3 ms=\d+", caplog.text)


def test_direct_path_runs_one_summary_turn_with_the_snippets(start, scripted, search):
    client, _ = start()
    scripted.queue(Text(SUMMARY))
    send(client, capture("websearch-intermediate.json"), stream=True)
    (turn,) = scripted.chat_requests()
    body = turn.body
    assert body["tool_choice"] == "none"
    assert [t["function"]["name"] for t in body["tools"]] == ["web_search"]
    call, answer = body["messages"][-2:]
    assert call["tool_calls"][0]["function"]["name"] == "web_search"
    assert answer["role"] == "tool" and answer["tool_call_id"] == call["tool_calls"][0]["id"]
    assert "async/await syntax" in answer["content"]  # the snippet, not only title and url
    assert "https://docs.python.org/3/library/asyncio.html" in answer["content"]


def test_claude_code_query_through_the_model_when_configured(start, scripted, search, caplog):
    client, _ = start(web_search=search_config(search, query_extraction="model"))
    scripted.queue(ToolCalls([("web_search", json.dumps({"query": "secret word capture"}))]),
                   Text(SUMMARY))
    with caplog.at_level(logging.INFO, logger="continuum.websearch"):
        message = send(client, capture("websearch-intermediate.json"), stream=True)
    assert types_of(message) == ["server_tool_use", "web_search_tool_result", "text"]
    assert_paired(message["content"][0], message["content"][1], "secret word capture")
    first, second = scripted.chat_requests()
    # Claude Code's sub-request means "search": the tool is forced even under tool_choice auto
    assert first.body["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
    assert second.body["tool_choice"] == "auto"
    assert "path=model" in caplog.text and search.queries == ["secret word capture"]


def test_stream_order_and_pings_while_the_provider_runs(start, scripted, search):
    search.mode, search.delay = "slow", 0.5
    _, url = start(server={"ping_interval": "0.1s"})
    scripted.queue(Text(SUMMARY))
    events = raw_stream(url, capture("websearch-intermediate.json"))
    names = [n for n, _ in events if n != "ping"]
    text_deltas = len(names) - 10
    assert text_deltas >= 1
    assert names == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_stop",
        "content_block_start", *["content_block_delta"] * text_deltas,
        "content_block_stop", "message_delta", "message_stop"]
    payloads = [p for n, p in events if n != "ping"]
    summary = "".join(p["delta"]["text"] for p in payloads[7:7 + text_deltas])
    assert summary == SUMMARY
    use_start, use_delta = payloads[1], payloads[2]
    assert use_start["content_block"]["input"] == {} and use_start["index"] == 0
    assert use_delta["delta"]["type"] == "input_json_delta"
    assert json.loads(use_delta["delta"]["partial_json"]) == {"query": QUERY}
    result_start = payloads[4]
    assert result_start["index"] == 1 and len(result_start["content_block"]["content"]) == 3
    assert payloads[6]["index"] == 2 and payloads[6]["content_block"]["type"] == "text"
    assert payloads[-2]["usage"]["server_tool_use"]["web_search_requests"] == 1
    between = [n for n, _ in events[events.index(("content_block_stop", payloads[3])):
                                     events.index(("content_block_start", result_start))]]
    assert "ping" in between  # keep-alive while the 0.5 s search runs


def raw_stream(url: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", url + "/v1/messages", json={**body, "stream": True},
                      headers=headers, timeout=30) as response:
        assert response.status_code == 200
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                events.append((name, json.loads(line[6:])))
    return events


# -- errors become result blocks, never HTTP errors -------------------------------------------


@pytest.mark.parametrize(
    ("mode", "key", "code"),
    [
        pytest.param("rate_limited", None, "too_many_requests", id="429"),
        pytest.param("server_error", None, "unavailable", id="5xx"),
        pytest.param("ok", "wrong-key", "unavailable", id="bad-key"),
        pytest.param("slow", None, "unavailable", id="timeout"),
    ],
)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
def test_provider_errors_in_the_direct_path(start, scripted, search, caplog, mode, key, code,
                                            stream):
    search.mode, search.delay = mode, 1.0
    client, _ = start(web_search=search_config(search, api_key=key or search.key,
                                               timeout="0.3s"))
    message = send(client, capture("websearch-intermediate.json"), stream)
    assert types_of(message) == ["server_tool_use", "web_search_tool_result", "text"]
    use, result, text = message["content"]
    assert_paired(use, result, QUERY)
    assert result["content"] == {"type": "web_search_tool_result_error", "error_code": code}
    assert code in text["text"]
    assert searches(message) == 0 and message["stop_reason"] == "end_turn"
    assert scripted.chat_requests() == []  # no summary turn over nothing
    if key:
        assert "BRAVE_API_KEY" in caplog.text and "wrong-key" not in caplog.text


def test_query_too_long(start, scripted, search):
    client, _ = start()
    body = capture("websearch-intermediate.json")
    body["messages"][0]["content"][0]["text"] = "Perform a web search for the query: " + "x" * 401
    message = send(client, body, stream=True)
    assert message["content"][1]["content"]["error_code"] == "query_too_long"
    assert search.requests == []


def test_empty_query_from_the_model_is_invalid_tool_input(start, scripted, search):
    client, _ = start()
    scripted.queue(ToolCalls([("web_search", '{"query": ""}')]), Text("No search."))
    message = send(client, user_request(), stream=False)
    assert types_of(message) == ["server_tool_use", "web_search_tool_result", "text"]
    assert message["content"][1]["content"]["error_code"] == "invalid_tool_input"
    assert search.requests == [] and searches(message) == 0


def test_disabled_web_search_still_answers_with_blocks(scripted, router_factory, caplog):
    router = router_factory(basic_config(scripted))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    with caplog.at_level(logging.WARNING, logger="continuum.websearch"):
        message = send(client, capture("websearch-intermediate.json"), stream=True)
    assert types_of(message) == ["server_tool_use", "web_search_tool_result", "text"]
    assert message["content"][1]["content"]["error_code"] == "unavailable"
    assert "web search is disabled" in caplog.text and "enabled: true" in caplog.text
    assert "BRAVE_API_KEY" in caplog.text


def test_summary_turn_failure_still_returns_the_results(start, scripted, search):
    client, _ = start()
    scripted.queue(Error(500, {"error": {"message": "boom"}}))
    message = send(client, capture("websearch-intermediate.json"), stream=True)
    assert types_of(message) == ["server_tool_use", "web_search_tool_result", "text"]
    assert "https://docs.python.org/3/library/asyncio.html" in message["content"][2]["text"]


def test_backend_failure_before_the_stream_is_a_real_status(start, scripted, search):
    client, _ = start()
    scripted.queue(Error(400, {"error": {"message": "bad things", "type": "invalid_request"}}))
    with pytest.raises(anthropic.APIStatusError) as info:
        send(client, user_request(), stream=True)
    assert info.value.status_code == 400


# -- general clients: the bounded loop ---------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
def test_general_client_loop(start, scripted, search, stream):
    client, _ = start()
    scripted.queue(
        ToolCalls([("web_search", '{"query": "python asyncio"}')], text="Let me search."),
        ToolCalls([("web_search", '{"query": "asyncio event loop"}')]),
        Text("asyncio runs coroutines."))
    message = send(client, user_request(), stream)
    assert types_of(message) == [
        "text", "server_tool_use", "web_search_tool_result",
        "server_tool_use", "web_search_tool_result", "text"]
    text, use1, res1, use2, res2, answer = message["content"]
    assert text["text"] == "Let me search." and answer["text"] == "asyncio runs coroutines."
    assert_paired(use1, res1, "python asyncio")
    assert_paired(use2, res2, "asyncio event loop")
    assert use1["id"] != use2["id"]
    assert searches(message) == 2 and message["stop_reason"] == "end_turn"
    assert search.queries == ["python asyncio", "asyncio event loop"]
    third = scripted.chat_requests()[2].body["messages"]
    assert [m["role"] for m in third[-5:]] == ["user", "assistant", "tool", "assistant", "tool"]
    assert third[-4]["content"] == "Let me search."


def test_loop_is_bounded_by_max_tool_iterations(start, scripted, search):
    client, _ = start(web_search=search_config(search, max_tool_iterations=2))
    scripted.default = ToolCalls([("web_search", '{"query": "again"}')])
    message = send(client, user_request(), stream=False)
    assert types_of(message).count("server_tool_use") == 2 and searches(message) == 2
    bodies = [r.body for r in scripted.chat_requests()]
    assert len(bodies) == 3 and bodies[-1]["tool_choice"] == "none"


def test_max_uses_exceeded(start, scripted, search):
    client, _ = start()
    scripted.queue(ToolCalls([("web_search", '{"query": "one"}'),
                              ("web_search", '{"query": "two"}')]), Text("Done."))
    message = send(client, user_request({**SEARCH_TOOL, "max_uses": 1}), stream=True)
    assert types_of(message) == ["server_tool_use", "web_search_tool_result",
                                 "server_tool_use", "web_search_tool_result", "text"]
    assert isinstance(message["content"][1]["content"], list)
    assert message["content"][3]["content"] == {
        "type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}
    assert search.queries == ["one"] and searches(message) == 1
    # nothing left to search with: the next turn may not call the tool again
    assert scripted.chat_requests()[1].body["tool_choice"] == "none"


def test_max_uses_zero_in_the_direct_path(start, scripted, search):
    client, _ = start()
    body = capture("websearch-intermediate.json")
    body["tools"][0]["max_uses"] = 0
    message = send(client, body, stream=False)
    assert message["content"][1]["content"]["error_code"] == "max_uses_exceeded"
    assert search.requests == []


def test_forced_tool_choice_is_forwarded(start, scripted, search):
    client, _ = start()
    scripted.queue(ToolCalls([("web_search", '{"query": "q"}')]), Text("ok"))
    send(client, user_request(tool_choice={"type": "tool", "name": "web_search"}), stream=True)
    first, second = scripted.chat_requests()
    assert first.body["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
    assert second.body["tool_choice"] == "auto"


def test_client_tools_end_the_turn_with_tool_use(start, scripted, search):
    client, _ = start()
    bash = {"name": "Bash", "description": "run", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"}}}}
    scripted.queue(ToolCalls([("web_search", '{"query": "q"}'),
                              ("Bash", '{"command": "ls"}')]))
    body = user_request()
    body["tools"] = [bash, SEARCH_TOOL]
    message = send(client, body, stream=True)
    assert sorted(types_of(message)) == ["server_tool_use", "tool_use", "web_search_tool_result"]
    assert message["stop_reason"] == "tool_use" and searches(message) == 1
    tool_use = next(b for b in message["content"] if b["type"] == "tool_use")
    assert tool_use["name"] == "Bash" and tool_use["input"] == {"command": "ls"}
    assert len(scripted.chat_requests()) == 1


# -- domain rules and location ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "urls", "operator"),
    [
        pytest.param({"allowed_domains": ["example.com"]},
                     ["https://blog.example.com/posts/asyncio"], "site:example.com", id="allowed"),
        pytest.param({"blocked_domains": ["python.org"]},
                     ["https://blog.example.com/posts/asyncio",
                      "https://www.example.org/guides/asyncio"], "-site:python.org",
                     id="blocked"),
    ],
)
def test_domain_rules(start, scripted, search, rules, urls, operator):
    client, _ = start()
    scripted.queue(ToolCalls([("web_search", '{"query": "asyncio"}')]), Text("ok"))
    message = send(client, user_request({**SEARCH_TOOL, **rules}), stream=False)
    assert [r["url"] for r in message["content"][1]["content"]] == urls
    assert operator in search.queries[0]


def test_both_domain_lists_are_rejected(start, scripted, search):
    client, _ = start()
    tool = {**SEARCH_TOOL, "allowed_domains": ["a.com"], "blocked_domains": ["b.com"]}
    with pytest.raises(anthropic.BadRequestError) as info:
        send(client, user_request(tool), stream=True)
    assert "allowed_domains and blocked_domains" in info.value.message
    assert scripted.chat_requests() == [] and search.requests == []


def test_user_location_reaches_the_provider(start, scripted, search):
    client, _ = start()
    scripted.queue(ToolCalls([("web_search", '{"query": "weather"}')]), Text("ok"))
    where = {"type": "approximate", "city": "Lyon", "country": "FR", "timezone": "Europe/Paris"}
    send(client, user_request({**SEARCH_TOOL, "user_location": where}), stream=False)
    (sent,) = search.requests
    assert sent.params["country"] == "FR" and sent.headers["x-loc-city"] == "Lyon"


# -- what is not intercepted, and history replay ------------------------------------------------


def test_claude_codes_client_tool_websearch_is_not_intercepted(start, scripted, search):
    client, _ = start()
    scripted.queue(Text("hi"))
    message = send(client, capture("websearch-no-tool-search-main-turn.json"), stream=True)
    assert types_of(message) == ["text"]
    names = [t["function"]["name"] for t in scripted.last_body["tools"]]
    assert "WebSearch" in names and "web_search" not in names
    assert search.requests == []


def test_replayed_server_blocks_reach_the_model_with_their_snippets(start, scripted, search):
    client, _ = start()
    scripted.queue(Text(SUMMARY))
    first = send(client, capture("websearch-intermediate.json"), stream=False)
    scripted.queue(Text("Follow-up answer."))
    body = user_request()
    body["messages"] += [
        {"role": "assistant", "content": _param_blocks(first["content"])},
        {"role": "user", "content": "And more?"}]
    message = send(client, body, stream=True)
    assert types_of(message) == ["text"] and searches(message) == 0
    sent = scripted.last_body["messages"]
    call = next(m for m in sent if m.get("tool_calls"))
    answer = next(m for m in sent if m["role"] == "tool")
    assert call["tool_calls"][0]["id"] == first["content"][0]["id"]
    assert answer["tool_call_id"] == call["tool_calls"][0]["id"]
    assert "async/await syntax" in answer["content"]  # decoded from encrypted_content


def test_foreign_encrypted_content_is_replayed_without_snippets(start, scripted, search):
    client, _ = start()
    scripted.queue(Text("ok"))
    foreign = base64.b64encode(b"anthropic-minted").decode()
    body = user_request()
    body["messages"] += [
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_01abc", "name": "web_search",
             "input": {"query": "q"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01abc", "content": [
                {"type": "web_search_result", "url": "https://x.org/", "title": "X",
                 "encrypted_content": foreign, "page_age": None}]},
            {"type": "text", "text": "Found X."}]},
        {"role": "user", "content": "thanks"}]
    send(client, body, stream=False)
    answer = next(m for m in scripted.last_body["messages"] if m["role"] == "tool")
    assert "https://x.org/" in answer["content"] and foreign not in answer["content"]


def _param_blocks(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Response blocks as a client resends them (SDK-only `None` fields dropped)."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None or k == "page_age"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    return clean(content)


VLLM_OVERFLOW = ("This model's maximum context length is 4096 tokens. However, you requested "
                 "128050 tokens (50 in the messages, 128000 in the completion). Please reduce "
                 "the length of the messages or completion.")


@pytest.mark.parametrize("extraction", ["direct", "model"])
def test_max_tokens_refit_to_the_backend_window(start, scripted, search, extraction):
    """Claude Code's sub-request asks for 128k tokens; a 4k vLLM window refuses that."""
    client, _ = start(web_search=search_config(search, query_extraction=extraction))
    overflow = Error(400, {"error": {"message": VLLM_OVERFLOW, "type": "BadRequestError"}})
    if extraction == "model":
        scripted.queue(overflow, ToolCalls([("web_search", json.dumps({"query": QUERY}))]),
                       Text(SUMMARY))
    else:
        scripted.queue(overflow, Text(SUMMARY))
    message = send(client, capture("websearch-intermediate.json"), stream=True)
    assert types_of(message) == ["server_tool_use", "web_search_tool_result", "text"]
    assert message["content"][2]["text"] == SUMMARY
    sent = [r.body["max_tokens"] for r in scripted.chat_requests()]
    assert sent[0] == 128000 and all(0 < n <= 4096 - 50 for n in sent[1:])
