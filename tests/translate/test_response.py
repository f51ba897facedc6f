"""OpenAI completion -> Anthropic Message (checklist items 20, 30, 39–41)."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message

from continuum_cli.translate.ids import TOOL_ID_RE, thinking_signature, tool_use_id
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.response import (
    INVALID_ARGUMENTS_KEY,
    anthropic_usage,
    map_stop_reason,
    to_anthropic_message,
)

MID = "msg_test"
NAMES = ToolNameMap.build(["Bash", "mcp.read"])


def completion(message: dict[str, Any], finish: str | None = "stop", usage: Any = None,
               **choice: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion",
                            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                                         "finish_reason": finish, **choice}]}
    if usage is not None:
        body["usage"] = usage
    return body


def convert(body: dict[str, Any], stop: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    out = to_anthropic_message(body, model="claude-x", message_id=MID, tool_names=NAMES,
                               stop_sequences=stop, **kw)
    Message.model_validate(out)  # the official SDK's model accepts it
    return out


def fn_call(id_: str | None, name: str, args: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": args}}
    if id_ is not None:
        call["id"] = id_
    return call


def thinking(t: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": t, "signature": thinking_signature(t)}


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool(id_: str, name: str, input_: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": input_}


@pytest.mark.parametrize(
    ("message", "blocks"),
    [
        pytest.param({"content": "Hello"}, [text("Hello")], id="text"),
        pytest.param({"content": ""}, [], id="empty-text-no-block"),
        pytest.param({"content": "  \n"}, [], id="blank-text-no-block"),
        pytest.param({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                     [text("ab")], id="content-parts"),
        pytest.param({"reasoning_content": "hmm", "content": "Hi"}, [thinking("hmm"), text("Hi")],
                     id="reasoning-content"),
        pytest.param({"reasoning": "hmm", "content": "Hi"}, [thinking("hmm"), text("Hi")],
                     id="reasoning-field"),
        pytest.param({"content": "<think>\nhmm\n</think>\n\nHi"}, [thinking("hmm"), text("Hi")],
                     id="think-tags"),
        pytest.param({"content": "hmm\n</think>\n\nHi"}, [thinking("hmm"), text("Hi")],
                     id="closing-tag-only"),
        pytest.param({"content": "<think>cut off"}, [thinking("cut off")], id="unterminated-think"),
        pytest.param({"content": "use <think> tags"}, [text("use <think> tags")],
                     id="literal-tag-mid-text"),
        pytest.param(
            {"content": "Running.", "reasoning_content": "plan",
             "tool_calls": [fn_call("call_1", "Bash", '{"command": "ls"}')]},
            [thinking("plan"), text("Running."), tool("call_1", "Bash", {"command": "ls"})],
            id="order-thinking-text-tool",
        ),
    ],
)
def test_content_blocks(message: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
    assert convert(completion(message))["content"] == blocks


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        pytest.param([fn_call("functions.Bash:0", "Bash", "{}")],
                     [tool("functions_Bash_0", "Bash", {})], id="id-sanitised"),
        pytest.param([fn_call(None, "Bash", "{}"), fn_call("", "Bash", "{}")],
                     [tool(tool_use_id(MID, 1), "Bash", {}), tool(tool_use_id(MID, 2), "Bash", {})],
                     id="ids-generated"),
        pytest.param([fn_call("same", "Bash", "{}"), fn_call("same", "Bash", "{}")],
                     [tool("same", "Bash", {}), tool(tool_use_id(MID, 2), "Bash", {})],
                     id="duplicate-ids-made-unique"),
        pytest.param([fn_call("c", NAMES.to_openai("mcp.read"), '{"p": 1}')],
                     [tool("c", "mcp.read", {"p": 1})], id="name-mapped-back"),
        pytest.param([fn_call("c", "Bash", {"command": "ls"})],
                     [tool("c", "Bash", {"command": "ls"})], id="object-arguments"),
        pytest.param([fn_call("c", "Bash", "")], [tool("c", "Bash", {})], id="empty-arguments"),
        pytest.param([fn_call("c", "Bash", '"{\\"command\\": \\"ls\\"}"')],
                     [tool("c", "Bash", {"command": "ls"})], id="double-encoded"),
        pytest.param([fn_call("c", "Bash", "{'command': 'ls'}")],
                     [tool("c", "Bash", {"command": "ls"})], id="single-quoted-json-repaired"),
        pytest.param([fn_call("c", "Bash", '{"command": "rm -rf /tmp/x')],
                     [tool("c", "Bash", {INVALID_ARGUMENTS_KEY: '{"command": "rm -rf /tmp/x'})],
                     id="cut-off-json-kept-visible"),
        pytest.param([fn_call("c", "Bash", None)], [tool("c", "Bash", {})], id="null-arguments"),
        pytest.param([fn_call("c", "Bash", ["ls"])],
                     [tool("c", "Bash", {INVALID_ARGUMENTS_KEY: '["ls"]'})],
                     id="list-arguments-kept-visible"),
        pytest.param([fn_call("c", "Bash", "[1, 2]")],
                     [tool("c", "Bash", {INVALID_ARGUMENTS_KEY: "[1, 2]"})],
                     id="not-an-object-kept-visible"),
        pytest.param([fn_call("c", "Bash", '{"n": NaN}')],
                     [tool("c", "Bash", {INVALID_ARGUMENTS_KEY: '{"n": NaN}'})],
                     id="nan-is-not-json"),
    ],
)
def test_tool_use_blocks(calls: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    out = convert(completion({"content": None, "tool_calls": calls}, "tool_calls"))
    assert out["content"] == expected
    assert all(TOOL_ID_RE.match(b["id"]) for b in out["content"])


def test_legacy_function_call() -> None:
    msg = {"content": None, "function_call": {"name": "Bash", "arguments": '{"a": 1}'}}
    out = convert(completion(msg, "function_call"))
    assert out["content"] == [tool(tool_use_id(MID, 1), "Bash", {"a": 1})]
    assert out["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish", "has_calls", "matched", "expected"),
    [
        pytest.param("stop", False, None, ("end_turn", None), id="stop"),
        pytest.param("length", False, None, ("max_tokens", None), id="length"),
        pytest.param("length", True, None, ("max_tokens", None), id="length-wins-over-tools"),
        pytest.param("tool_calls", True, None, ("tool_use", None), id="tool-calls"),
        pytest.param("stop", True, None, ("tool_use", None), id="tools-but-stop"),
        pytest.param("tool_calls", False, None, ("end_turn", None), id="tool-calls-without-calls"),
        pytest.param("content_filter", False, None, ("refusal", None), id="content-filter"),
        pytest.param("stop", False, "END", ("stop_sequence", "END"), id="stop-sequence"),
        pytest.param(None, False, None, ("end_turn", None), id="missing"),
        pytest.param("weird", False, None, ("end_turn", None), id="unknown"),
    ],
)
def test_map_stop_reason(finish: str | None, has_calls: bool, matched: str | None,
                         expected: tuple[str, str | None]) -> None:
    assert map_stop_reason(finish, has_tool_calls=has_calls, matched_stop=matched) == expected


@pytest.mark.parametrize(
    ("message", "choice", "stop", "expected"),
    [
        pytest.param({"content": "a"}, {"stop_reason": "END"}, ["END"],
                     ("stop_sequence", "END", "a"), id="vllm-stop-reason"),
        pytest.param({"content": "a"}, {"stop_reason": 151645}, ["END"],
                     ("end_turn", None, "a"), id="vllm-token-id-ignored"),
        pytest.param({"content": "aEND"}, {}, ["END"], ("stop_sequence", "END", "a"),
                     id="text-ends-with-sequence"),
        pytest.param({"content": "a"}, {}, ["END"], ("end_turn", None, "a"), id="no-match"),
        pytest.param({"content": "aEND"}, {}, None, ("end_turn", None, "aEND"),
                     id="no-stop-sequences"),
    ],
)
def test_stop_sequence_detection(message: dict[str, Any], choice: dict[str, Any],
                                 stop: list[str] | None, expected: tuple) -> None:
    out = convert(completion(message, "stop", **choice), stop)
    assert (out["stop_reason"], out["stop_sequence"], out["content"][0]["text"]) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param({"prompt_tokens": 100, "completion_tokens": 7},
                     {"input_tokens": 100, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 7}, id="plain"),
        pytest.param({"prompt_tokens": 100, "completion_tokens": 7,
                      "prompt_tokens_details": {"cached_tokens": 80}},
                     {"input_tokens": 20, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 80, "output_tokens": 7}, id="cached"),
        pytest.param({"prompt_tokens": 5, "completion_tokens": 1,
                      "prompt_tokens_details": None},
                     {"input_tokens": 5, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}, id="null-details"),
    ],
)
def test_usage(usage: dict[str, Any], expected: dict[str, int]) -> None:
    assert convert(completion({"content": "x"}, usage=usage))["usage"] == expected
    assert anthropic_usage(usage) == expected


def test_usage_missing_uses_estimates() -> None:
    out = convert(completion({"content": "12345678"}), input_tokens=321)
    assert out["usage"] == {"input_tokens": 321, "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0, "output_tokens": 2}


def test_message_envelope() -> None:
    out = convert(completion({"content": "Hi"}, usage={"prompt_tokens": 3, "completion_tokens": 1}))
    assert {k: out[k] for k in ("id", "type", "role", "model", "stop_reason", "stop_sequence")} == {
        "id": MID, "type": "message", "role": "assistant", "model": "claude-x",
        "stop_reason": "end_turn", "stop_sequence": None}


def test_no_choices_is_an_empty_turn() -> None:
    out = convert({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 0}})
    assert out["content"] == [] and out["stop_reason"] == "end_turn"


def test_thinking_signature_is_stable_and_non_empty() -> None:
    assert thinking_signature("a") == thinking_signature("a") != thinking_signature("b")
    assert thinking_signature("")
