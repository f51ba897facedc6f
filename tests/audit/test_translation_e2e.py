"""Issue 3 end to end: one Claude-Code-shaped request carrying every tricky input reaches the
backend as the exact OpenAI body the checklist asks for, and adversarial backend streams come
back as messages the official SDK accumulates (`messages.stream().get_final_message()`)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.scripted_backend import Chunks, Completion, chunk, usage

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAAB"
       "JRU5ErkJggg==")
SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}}
TOOLS = [{"name": "Bash", "input_schema": SCHEMA},
         {"name": "Read", "input_schema": {"type": "object",
                                           "properties": {"file_path": {"type": "string"}}}},
         {"name": "mcp__srv__do.thing", "description": "d", "cache_control": {"type": "x"},
          "input_schema": {"type": "object", "properties": {"a": {"type": "string"}},
                           "required": None, "$schema": "s"}}]

KITCHEN_SINK: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929", "max_tokens": 100,
    "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=ab12c;"},
               {"type": "text", "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral"}},
               {"type": "text", "text": "Be brief."}],
    "tools": TOOLS, "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "stop_sequences": ["STOP"], "temperature": 0.3, "top_k": 5, "metadata": {"user_id": "u"},
    "context_management": {"edits": []}, "speed": "fast",
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello",
                                      "cache_control": {"type": "ephemeral"}},
                                     {"type": "text", "text": "   "}]},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "zzz"},
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "toolu_1", "name": "mcp__srv__do.thing",
             "input": {"a": "1"}},
            {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"command": "ls"}},
            {"type": "tool_use", "id": "toolu_3", "name": "Bash", "input": {"command": "pwd"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "text before the results"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": [
                {"type": "text", "text": "file1"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": PNG}}]},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom",
             "is_error": True},
            {"type": "document", "title": "t.txt",
             "source": {"type": "text", "media_type": "text/plain", "data": "DOC"}},
            {"type": "some_future_block", "foo": 1}]},
        {"role": "system", "content": "mid-conversation note"},
        {"role": "assistant", "content": "prefill:"}]}


@pytest.fixture
def sent(router, scripted) -> dict[str, Any]:
    resp = httpx.post(router.anthropic_url + "/v1/messages?beta=true", json=KITCHEN_SINK,
                      headers={"anthropic-beta": "interleaved-thinking-2025-05-14",
                               "anthropic-version": "2023-06-01"})
    assert resp.status_code == 200
    assert resp.json()["model"] == KITCHEN_SINK["model"]  # echoes the requested name
    return scripted.last_body


def test_system_is_one_leading_string_without_billing_block(sent) -> None:
    assert sent["messages"][0] == {"role": "system",
                                   "content": "You are Claude Code.\n\nBe brief."}
    assert "cache_control" not in str(sent)


def test_tool_results_follow_calls_in_call_order(sent) -> None:
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "tool", "user", "assistant"]
    calls = [c["id"] for c in sent["messages"][2]["tool_calls"]]
    tools = [m["tool_call_id"] for m in sent["messages"][3:6]]
    assert tools == calls == ["toolu_1", "toolu_2", "toolu_3"]
    assert sent["messages"][3]["content"].startswith("Error: boom")
    assert "interrupted" in sent["messages"][5]["content"]


def test_user_content_after_tool_messages_keeps_images_and_text(sent) -> None:
    after = sent["messages"][6]["content"]
    kinds = [p["type"] for p in after]
    assert kinds[0] == "image_url" and after[0]["image_url"]["url"].startswith("data:image/png")
    texts = " ".join(p.get("text", "") for p in after)
    assert "text before the results" in texts and "DOC" in texts
    assert "mid-conversation note" in texts


def test_history_thinking_becomes_reasoning_and_names_are_sanitised(sent) -> None:
    assistant = sent["messages"][2]
    assert assistant["reasoning_content"] == "hmm" and "zzz" not in str(sent)
    names = [t["function"]["name"] for t in sent["tools"]]
    assert names[:2] == ["Bash", "Read"]
    assert all(n.replace("_", "").replace("-", "").isalnum() for n in names)
    assert assistant["tool_calls"][0]["function"]["name"] == names[2]
    params = sent["tools"][2]["function"]["parameters"]
    assert params["required"] == [] and "$schema" not in params


def test_sampling_tool_choice_and_prefill(sent) -> None:
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert sent["stop"] == ["STOP"] and sent["temperature"] == 0.3
    assert "top_k" not in sent and "metadata" not in sent and "user" not in sent
    assert sent["messages"][-1] == {"role": "assistant", "content": "prefill:"}
    assert "context_management" not in sent and "speed" not in sent


def _tc(index: int | None = None, id: str | None = None, name: str | None = None,
        args: Any = None) -> dict[str, Any]:
    fragment: dict[str, Any] = {"function": {}}
    if index is not None:
        fragment["index"] = index
    if id:
        fragment.update(id=id, type="function")
    if name:
        fragment["function"]["name"] = name
    if args is not None:
        fragment["function"]["arguments"] = args
    return fragment


def _calls(*fragments: dict[str, Any]) -> list[dict[str, Any]]:
    return [chunk({"tool_calls": [f]}) for f in fragments] + [chunk({}, "tool_calls")]


STREAMS = [
    pytest.param(_calls(_tc(0, "a", "Bash", '{"command":'), _tc(0, None, None, '"ls"}'),
                        _tc(0, "b", "Bash", '{"command":"pwd"}')),
                 [("Bash", {"command": "ls"}), ("Bash", {"command": "pwd"})], "tool_use",
                 id="index-0-repeated"),
    pytest.param(_calls(_tc(None, "a", "Read", '{"file_path":"/a"}'),
                        _tc(None, "b", "Read", '{"file_path":"/b"}')),
                 [("Read", {"file_path": "/a"}), ("Read", {"file_path": "/b"})], "tool_use",
                 id="no-index"),
    pytest.param([chunk({"tool_calls": [_tc(0, "a", "Read", '{"file_'),
                                        _tc(1, "b", "Bash", '{"comm')]}),
                  chunk({"tool_calls": [_tc(1, None, None, 'and":"ls"}'),
                                        _tc(0, None, None, 'path":"/x"}')]}),
                  chunk({}, "tool_calls")],
                 [("Read", {"file_path": "/x"}), ("Bash", {"command": "ls"})], "tool_use",
                 id="interleaved"),
    pytest.param(_calls(_tc(0, "a", "Read"), {"index": 0, "function": {
        "arguments": {"file_path": "/o"}}}), [("Read", {"file_path": "/o"})], "tool_use",
                 id="object-arguments"),
    pytest.param(_calls(_tc(0, "a", "Read", '{"file'), _tc(0, None, None, '{"file_path"'),
                        _tc(0, None, None, '{"file_path":"/s"}')),
                 [("Read", {"file_path": "/s"})], "tool_use", id="cumulative-snapshots"),
    pytest.param(_calls(_tc(0, "a"), _tc(0, None, "Read", '{"file_path":"/i"}')),
                 [("Read", {"file_path": "/i"})], "tool_use", id="id-before-name"),
    pytest.param([chunk({"tool_calls": [_tc(0, "a", "Read", '{"file_path":"/t"}')]}),
                  chunk({}, "stop")], [("Read", {"file_path": "/t"})], "tool_use",
                 id="tools-with-finish-stop"),
    pytest.param(_calls(_tc(0, "a", "mcp__srv__do_thing_27e6a50f", '{"a":"1"}')),
                 [("mcp__srv__do.thing", {"a": "1"})], "tool_use", id="name-mapped-back"),
]


@pytest.mark.parametrize("chunks,expected,stop_reason", STREAMS)
def test_sdk_accumulates_adversarial_tool_streams(router, scripted, chunks, expected,
                                                  stop_reason) -> None:
    scripted.queue(Chunks(chunks))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    with client.messages.stream(model="test-model", max_tokens=64, tools=TOOLS,
                                messages=[{"role": "user", "content": "go"}]) as stream:
        message = stream.get_final_message()
    got = [(b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert got == expected
    assert message.stop_reason == stop_reason
    ids = [b.id for b in message.content if b.type == "tool_use"]
    assert len(set(ids)) == len(ids)


TEXT_STREAMS = [
    pytest.param([chunk({"content": "<th"}), chunk({"content": "ink>reason"}),
                  chunk({"content": "ing</thi"}), chunk({"content": "nk>\n\nAnswer"}),
                  chunk({}, "stop")], [("thinking", "reasoning"), ("text", "Answer")],
                 id="think-tags-split"),
    pytest.param([chunk({"reasoning_content": "R", "content": "T"}), chunk({}, "stop")],
                 [("thinking", "R"), ("text", "T")], id="reasoning-and-text-one-chunk"),
    pytest.param([chunk({"reasoning": "R1"}), chunk({"reasoning": "R2"}),
                  chunk({"content": "T"}), chunk({}, "stop")],
                 [("thinking", "R1R2"), ("text", "T")], id="reasoning-field"),
    pytest.param([chunk({"content": "all at once"}, "stop")], [("text", "all at once")],
                 id="content-with-finish"),
    pytest.param([chunk({"content": "  "}), chunk({"content": "\n"}), chunk({}, "stop")], [],
                 id="whitespace-only-no-empty-block"),
]


@pytest.mark.parametrize("chunks,expected", TEXT_STREAMS)
def test_sdk_accumulates_text_and_thinking_streams(router, scripted, chunks, expected) -> None:
    scripted.queue(Chunks(chunks))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    with client.messages.stream(model="test-model", max_tokens=64,
                                messages=[{"role": "user", "content": "go"}]) as stream:
        message = stream.get_final_message()
    got = [(b.type, b.text if b.type == "text" else b.thinking) for b in message.content]
    assert got == expected
    assert all(b.signature for b in message.content if b.type == "thinking")


def test_cached_tokens_are_netted_out_of_input(router, scripted) -> None:
    scripted.queue(Chunks([chunk({"content": "x"}), chunk({}, "stop"),
                           chunk(None, usage=usage(100, 5, 60))]))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    with client.messages.stream(model="test-model", max_tokens=8,
                                messages=[{"role": "user", "content": "go"}]) as stream:
        message = stream.get_final_message()
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens,
            message.usage.output_tokens) == (40, 60, 5)


def test_non_stream_tool_ids_are_sanitised_and_unique(router, scripted) -> None:
    calls = [{"id": "functions.Bash:0", "type": "function",
              "function": {"name": "Bash", "arguments": '{"command":"ls"}'}},
             {"id": "functions.Bash:0", "type": "function",
              "function": {"name": "Bash", "arguments": '"{\\"command\\":\\"pwd\\"}"'}}]
    scripted.queue(Completion({"id": "x", "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant",
                                                                   "content": None,
                                                                   "tool_calls": calls}}]}))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    message = client.messages.create(model="test-model", max_tokens=8, tools=TOOLS,
                                     messages=[{"role": "user", "content": "go"}])
    assert message.stop_reason == "tool_use"
    assert [b.input for b in message.content] == [{"command": "ls"}, {"command": "pwd"}]
    ids = [b.id for b in message.content]
    assert len(set(ids)) == 2 and all(i.replace("_", "").isalnum() for i in ids)
