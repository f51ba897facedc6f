"""/anthropic/v1/messages end to end: the official anthropic SDK against the real router,
with the scripted OpenAI backend behind it. Asserts on what the client receives and on the
exact body the backend received."""

from __future__ import annotations

import json
import logging

import anthropic
import httpx
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import (
    Chunks,
    Completion,
    Error,
    ScriptedBackend,
    Text,
    ToolCalls,
    chunk,
    usage,
)

USER = [{"role": "user", "content": "hi"}]
BASH_TOOL = {"name": "Bash", "description": "Run a shell command",
             "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                              "required": ["command"]}}


def client(router, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.anthropic_url, api_key="dev-key", max_retries=0,
                               **kw)


def test_non_stream_text(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Text("Bonjour.", usage=usage(prompt=30, completion=3, cached=10)))
    msg = client(router).messages.create(model="claude-sonnet-4-5", max_tokens=50,
                                         messages=USER)
    assert msg.model == "claude-sonnet-4-5"
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "Bonjour."
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 20 and msg.usage.cache_read_input_tokens == 10
    assert msg.usage.output_tokens == 3
    assert msg.id.startswith("msg_")


def test_stream_text_and_event_order(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Text("one two three"))
    with client(router).messages.stream(model="claude-opus-4-1", max_tokens=50,
                                        messages=USER) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert final.content[0].text == "one two three"
    assert events[0] == "message_start"
    assert events[-1] == "message_stop" and events[-2] == "message_delta"
    assert "ping" not in events or events.index("ping") == 1
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 7
    sent = scripted.last_body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "test-model"


def test_raw_sse_framing(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Text("x"))
    with httpx.stream("POST", router.anthropic_url + "/v1/messages?beta=true", json={
            "model": "test-model", "max_tokens": 5, "stream": True, "messages": USER}) as resp:
        raw = resp.read().decode()
    assert resp.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in raw.split("\n\n") if f]
    assert all(f.startswith("event: ") and "\ndata: {" in f for f in frames)
    assert "[DONE]" not in raw
    names = [f.split("\n")[0][7:] for f in frames]
    assert names[:2] == ["message_start", "ping"]


def test_reasoning_becomes_first_thinking_block(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Text("The answer is 4.", reasoning="2+2 is 4"))
    with client(router).messages.stream(model="test-model", max_tokens=50,
                                        messages=USER) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "2+2 is 4" and final.content[0].signature


def test_think_tags_split_across_chunks(router, scripted: ScriptedBackend) -> None:
    parts = ["<th", "ink>ponder", "ing</thi", "nk>Done", "."]
    scripted.queue(Chunks([chunk({"role": "assistant", "content": ""})]
                          + [chunk({"content": p}) for p in parts]
                          + [chunk({}, "stop"), chunk(None, usage=usage())]))
    with client(router).messages.stream(model="test-model", max_tokens=50,
                                        messages=USER) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].thinking == "pondering"
    assert final.content[1].type == "text" and final.content[1].text == "Done."


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_tool_calls(router, scripted: ScriptedBackend, stream: bool) -> None:
    scripted.queue(ToolCalls([("Bash", '{"command": "echo hello"}'),
                              ("Bash", '{"command": "ls -la /tmp"}')], text="Running."))
    c = client(router)
    kwargs = dict(model="test-model", max_tokens=100, messages=USER, tools=[BASH_TOOL])
    if stream:
        with c.messages.stream(**kwargs) as s:
            final = s.get_final_message()
    else:
        final = c.messages.create(**kwargs)
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[1].input == {"command": "echo hello"}
    assert final.content[2].input == {"command": "ls -la /tmp"}
    assert final.content[1].id != final.content[2].id
    assert final.stop_reason == "tool_use"
    tools = scripted.last_body["tools"]
    assert tools[0]["type"] == "function" and tools[0]["function"]["name"] == "Bash"
    assert tools[0]["function"]["parameters"]["required"] == ["command"]


def test_tool_calls_without_index_and_repeated_zero(router, scripted: ScriptedBackend) -> None:
    calls = [
        chunk({"tool_calls": [{"id": "a1", "function": {"name": "Bash", "arguments": "{\"comm"}}]}),
        chunk({"tool_calls": [{"function": {"arguments": "and\": \"pwd\"}"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "b2",
                               "function": {"name": "Bash", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"), chunk(None, usage=usage()),
    ]
    scripted.queue(Chunks(calls))
    with client(router).messages.stream(model="test-model", max_tokens=100, messages=USER,
                                        tools=[BASH_TOOL]) as s:
        final = s.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [{"command": "pwd"}, {}]


def test_length_is_max_tokens(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Text("cut off", finish_reason="length"))
    msg = client(router).messages.create(model="test-model", max_tokens=2, messages=USER)
    assert msg.stop_reason == "max_tokens"


def test_tool_result_turn_reaches_backend_in_order(router, scripted: ScriptedBackend) -> None:
    messages = [
        {"role": "user", "content": "run two things"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "a"}},
            {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"command": "b"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "and then summarise"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "B out"},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "A failed",
             "is_error": True}]},
    ]
    client(router).messages.create(model="test-model", max_tokens=20, messages=messages,
                                   tools=[BASH_TOOL])
    sent = scripted.last_body["messages"]
    roles = [m["role"] for m in sent]
    assert roles == ["user", "assistant", "tool", "tool", "user"]
    assert [m["tool_call_id"] for m in sent[2:4]] == ["toolu_1", "toolu_2"]
    assert "A failed" in sent[2]["content"] and "error" in sent[2]["content"].lower()
    assert "summarise" in json.dumps(sent[4]["content"])


def test_system_billing_header_stripped(router, scripted: ScriptedBackend) -> None:
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332.abc; "
                                       "cc_entrypoint=sdk-cli; cch=12345;"},
              {"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral"}}]
    client(router).messages.create(model="test-model", max_tokens=20, messages=USER,
                                   system=system)
    sent = scripted.last_body["messages"]
    assert sent[0] == {"role": "system", "content": "You are helpful."}
    assert "cache_control" not in json.dumps(scripted.last_body)


@pytest.mark.parametrize("status,body,expected_status,expected_type", [
    (503, {"error": {"message": "Loading model"}}, 529, "overloaded_error"),
    (500, {"error": {"message": "kaboom"}}, 502, "api_error"),
    (429, {"error": {"message": "slow"}}, 429, "rate_limit_error"),
    (400, {"error": {"message": "request (9000 tokens) exceeds the available context size "
                                "(2048 tokens)", "type": "exceed_context_size_error"}},
     400, "invalid_request_error"),
], ids=["503", "500", "429", "overflow"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_upstream_errors_before_first_byte(router, scripted: ScriptedBackend, status, body,
                                           expected_status, expected_type, stream) -> None:
    scripted.queue(Error(status, body))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json={
        "model": "test-model", "max_tokens": 5, "stream": stream, "messages": USER})
    assert resp.status_code == expected_status
    data = resp.json()
    assert data["type"] == "error" and data["error"]["type"] == expected_type
    if status == 400:
        assert data["error"]["message"].startswith("prompt is too long: 9000 tokens > 2048")


def test_connection_refused_is_overloaded(router_factory) -> None:
    dead = ScriptedBackend().start()
    url = dead.url
    dead.stop()
    router = router_factory({"backends": [{"name": "down", "url": url, "models": ["m"]}]})
    with pytest.raises(anthropic.APIStatusError) as info:
        client(router).messages.create(model="m", max_tokens=5, messages=USER)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"
    assert "down" in info.value.body["error"]["message"]


def test_cut_mid_stream_becomes_error_event(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Chunks([chunk({"content": "partial "})] * 5, cut_after=3))
    with httpx.stream("POST", router.anthropic_url + "/v1/messages", json={
            "model": "test-model", "max_tokens": 5, "stream": True, "messages": USER}) as resp:
        raw = resp.read().decode()
    assert resp.status_code == 200
    frames = [f for f in raw.split("\n\n") if f]
    assert frames[-1].startswith("event: error")
    payload = json.loads(frames[-1].split("data: ", 1)[1])
    assert payload["type"] == "error" and payload["error"]["type"] in ("api_error",
                                                                         "overloaded_error")
    with pytest.raises(anthropic.APIError):
        scripted.queue(Chunks([chunk({"content": "partial "})] * 5, cut_after=3))
        with client(router).messages.stream(model="test-model", max_tokens=5,
                                            messages=USER) as s:
            s.get_final_message()


def test_pings_during_upstream_silence(router_factory, scripted: ScriptedBackend) -> None:
    router = router_factory(basic_config(scripted, server={"ping_interval": "0.1s"}))
    scripted.queue(Chunks([chunk({"role": "assistant", "content": ""}), chunk({"content": "a"}),
                           chunk({}, "stop"), chunk(None, usage=usage())], delay=0.35))
    with httpx.stream("POST", router.anthropic_url + "/v1/messages", json={
            "model": "test-model", "max_tokens": 5, "stream": True, "messages": USER}) as resp:
        raw = resp.read().decode()
    assert raw.count("event: ping") >= 3


def test_unknown_model_is_404_with_seed_text(router_factory, scripted) -> None:
    router = router_factory({"backends": [{"name": "s", "url": scripted.url,
                                           "models": ["test-model"]}]})
    with pytest.raises(anthropic.NotFoundError) as info:
        client(router).messages.create(model="claude-haiku-4-5-20251001", max_tokens=5,
                                       messages=USER)
    assert "Model claude-haiku-4-5-20251001 not found" in info.value.body["error"]["message"]


def test_alias_rewrite_is_logged(router, scripted, caplog) -> None:
    caplog.set_level(logging.INFO, logger="continuum")
    client(router).messages.create(model="claude-haiku-4-5-20251001", max_tokens=5,
                                   messages=USER)
    text = caplog.text
    assert "Rewrote request.model via model_aliases" in text
    assert "claude-haiku-4-5-20251001 -> test-model" in text
    assert "POST /anthropic/v1/messages forwarded to scripted" in text


def test_lenient_request_server_tool_and_system_role(router, scripted) -> None:
    resp = httpx.post(router.anthropic_url + "/v1/messages?beta=true", json={
        "model": "test-model", "max_tokens": 5, "brand_new_field": {"x": 1},
        "context_management": {"edits": []}, "output_config": {"effort": "high"},
        "messages": [{"role": "user", "content": "hi"},
                     {"role": "system", "content": "# Environment"},
                     {"role": "user", "content": [{"type": "future_block", "x": 1},
                                                  {"type": "text", "text": "go"}]}],
        "tools": [BASH_TOOL]})
    assert resp.status_code == 200, resp.text


def test_root_v1_messages_route(router) -> None:
    resp = httpx.post(router.url + "/v1/messages", json={
        "model": "test-model", "max_tokens": 5, "messages": USER})
    assert resp.status_code == 200 and resp.json()["type"] == "message"


@pytest.mark.parametrize("body,fragment", [
    ({"max_tokens": 5, "messages": USER}, "model"),
    ({"model": "test-model", "messages": USER}, "max_tokens"),
    ({"model": "test-model", "max_tokens": 5}, "messages"),
    ({"model": "test-model", "max_tokens": "five", "messages": USER}, "max_tokens"),
])
def test_invalid_requests_are_400_naming_the_field(router, body, fragment) -> None:
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert fragment in resp.json()["error"]["message"]


def test_blocking_api_keys(router_factory, scripted) -> None:
    router = router_factory(basic_config(scripted, api_keys={
        "mode": "blocking", "keys": [{"key": "sk-good", "name": "dev"}]}))
    with pytest.raises(anthropic.AuthenticationError) as info:
        client(router).messages.create(model="test-model", max_tokens=5, messages=USER)
    assert info.value.body["error"]["type"] == "authentication_error"
    assert "dev-key" not in json.dumps(info.value.body)
    ok = anthropic.Anthropic(base_url=router.anthropic_url, api_key="sk-good", max_retries=0)
    assert ok.messages.create(model="test-model", max_tokens=5, messages=USER).content
    bearer = anthropic.Anthropic(base_url=router.anthropic_url, auth_token="sk-good",
                                 max_retries=0)
    assert bearer.messages.create(model="test-model", max_tokens=5, messages=USER).content
    assert httpx.get(router.url + "/health").status_code == 200


def test_count_tokens_uses_backend_tokenizer(router_factory, scripted) -> None:
    router = router_factory({"backends": [{"name": "s", "type": "llamacpp", "url": scripted.url,
                                           "models": ["test-model"]}]})
    c = client(router)
    result = c.messages.count_tokens(model="test-model", messages=USER, system="be brief",
                                     tools=[BASH_TOOL])
    assert result.input_tokens > 0
    tokenize = [r for r in scripted.requests if r.path == "/tokenize"]
    assert tokenize and tokenize[0].body["model"] == "test-model"
    assert "be brief" in tokenize[0].body["prompt"] and "Bash" in tokenize[0].body["prompt"]


def test_count_tokens_estimate_never_zero(router) -> None:
    result = client(router).messages.count_tokens(model="claude-sonnet-4-5", messages=USER)
    assert result.input_tokens > 0
    bigger = client(router).messages.count_tokens(
        model="claude-sonnet-4-5", messages=USER, tools=[BASH_TOOL], system="x " * 200)
    assert bigger.input_tokens > result.input_tokens


def test_anthropic_models_list(router) -> None:
    page = client(router).models.list()
    ids = [m.id for m in page.data]
    assert "test-model" in ids and "haiku" in ids


def test_backend_json_reply_to_stream_request(router, scripted) -> None:
    """A backend that ignores stream:true and answers JSON still yields a proper SSE stream."""
    scripted.queue(Completion({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "json body"}}], "usage": usage()}))
    with client(router).messages.stream(model="test-model", max_tokens=5, messages=USER) as s:
        final = s.get_final_message()
    assert final.content[0].text == "json body"


VLLM_OVERFLOW = ("This model's maximum context length is 4096 tokens. However, you requested "
                 "32050 tokens (50 in the messages, 32000 in the completion). Please reduce "
                 "the length of the messages or completion.")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_max_tokens_refit_to_backend_window(router, scripted, stream) -> None:
    """Claude Code asks for 32k tokens; a 4k vLLM window refuses that, not the prompt."""
    scripted.queue(Error(400, {"error": {"message": VLLM_OVERFLOW, "type": "BadRequestError"}}),
                   Text("fits now"))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json={
        "model": "test-model", "max_tokens": 32000, "stream": stream, "messages": USER})
    assert resp.status_code == 200
    assert "fits" in resp.text and "now" in resp.text
    sent = [r.body["max_tokens"] for r in scripted.chat_requests()]
    assert sent[0] == 32000 and 0 < sent[1] <= 4096 - 50


def test_prompt_over_window_is_not_retried(router, scripted) -> None:
    message = ("This model's maximum context length is 4096 tokens. However, you requested "
               "9000 tokens (5000 in the messages, 4000 in the completion).")
    scripted.queue(Error(400, {"error": {"message": message}}))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json={
        "model": "test-model", "max_tokens": 4000, "messages": USER})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith("prompt is too long: 5000 tokens > 4096")
    assert len(scripted.chat_requests()) == 1


def test_max_tokens_clamped_to_known_context_window(router_factory) -> None:
    with ScriptedBackend() as backend:
        backend.max_model_len = 4096
        router = router_factory(basic_config(backend))
        httpx.post(router.anthropic_url + "/v1/messages", json={
            "model": "test-model", "max_tokens": 128000, "messages": USER})
        sent = backend.last_body["max_tokens"]
    assert 0 < sent < 4096


def test_backend_max_output_tokens_caps_requests(router_factory, scripted) -> None:
    config = basic_config(scripted)
    config["backends"][0]["max_output_tokens"] = 300
    router = router_factory(config)
    httpx.post(router.anthropic_url + "/v1/messages", json={
        "model": "test-model", "max_tokens": 32000, "messages": USER})
    assert scripted.last_body["max_tokens"] == 300
    client(router).messages.create(model="test-model", max_tokens=50, messages=USER)
    assert scripted.last_body["max_tokens"] == 50


def test_backend_request_defaults_fill_unset_fields(router_factory, scripted) -> None:
    config = basic_config(scripted)
    config["backends"][0]["request_defaults"] = {"temperature": 0.0, "seed": 7}
    router = router_factory(config)
    client(router).messages.create(model="test-model", max_tokens=5, messages=USER)
    assert scripted.last_body["temperature"] == 0.0 and scripted.last_body["seed"] == 7
    httpx.post(router.anthropic_url + "/v1/messages", json={
        "model": "test-model", "max_tokens": 5, "temperature": 0.9, "messages": USER})
    assert scripted.last_body["temperature"] == 0.9 and scripted.last_body["seed"] == 7
    httpx.post(router.url + "/v1/chat/completions", json={
        "model": "test-model", "messages": USER})
    assert scripted.last_body["seed"] == 7
