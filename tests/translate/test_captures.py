"""Every real Claude Code request translates to a valid OpenAI body, for every backend type.

The captures (`tests/fixtures/claude_code/*.json`, copied from real Claude Code sessions) are
the ground truth for what arrives at `/v1/messages` and `/v1/messages/count_tokens`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from continuum_cli.backends.profiles import PROFILES
from continuum_cli.translate.request import to_openai_request
from continuum_cli.translate.tokens import estimate_tokens, render_for_count
from continuum_cli.wire.anthropic import MessagesRequest, parse_messages_request

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _message_captures() -> list[Any]:
    params = []
    for path in sorted(CAPTURES.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "/v1/messages" in data.get("raw_path", ""):
            params.append(pytest.param(data, id=path.stem))
    return params


MESSAGE_CAPTURES = _message_captures()


def parse(capture: dict[str, Any]) -> MessagesRequest:
    counting = "count_tokens" in capture["raw_path"]
    return parse_messages_request(json.dumps(capture["body"]).encode(),
                                  require_max_tokens=not counting)


def test_the_captures_are_there() -> None:
    assert len(MESSAGE_CAPTURES) >= 30


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("capture", MESSAGE_CAPTURES)
def test_capture_translates_to_a_valid_openai_body(capture: dict[str, Any], profile: str) -> None:
    body = to_openai_request(parse(capture), upstream_model="local",
                             profile=PROFILES[profile]).body
    dumped = json.dumps(body)
    assert "cache_control" not in dumped
    assert "x-anthropic-billing-header" not in dumped
    assert "defer_loading" not in dumped
    check_messages(body["messages"])
    check_tools(body)


def check_messages(messages: list[dict[str, Any]]) -> None:
    assert messages, "no messages"
    assert {m["role"] for m in messages} <= {"system", "user", "assistant", "tool"}
    assert all(m["role"] != "system" for m in messages[1:]), "system message after the start"
    for before, after in zip(messages, messages[1:], strict=False):
        assert before["role"] != after["role"] or after["role"] == "tool", "roles not coalesced"
    for i, msg in enumerate(messages):
        assert_not_empty(msg)
        if msg["role"] == "assistant" and msg.get("tool_calls"):
            ids = [c["id"] for c in msg["tool_calls"]]
            answers = [m["tool_call_id"] for m in messages[i + 1: i + 1 + len(ids)]
                       if m["role"] == "tool"]
            assert answers == ids, "tool calls not answered right after, in call order"
        if msg["role"] == "tool":
            prev = messages[i - 1]
            assert prev["role"] == "tool" or prev.get("tool_calls"), "tool message without call"


def assert_not_empty(msg: dict[str, Any]) -> None:
    content = msg.get("content")
    if msg["role"] == "assistant" and msg.get("tool_calls"):
        assert content is None or content.strip()
        return
    assert content, f"empty {msg['role']} message"
    if isinstance(content, str):
        assert content.strip()
    else:
        assert all(p.get("text", "x").strip() for p in content)


def check_tools(body: dict[str, Any]) -> None:
    if "tools" not in body:
        assert "tool_choice" not in body
        return
    assert body["tools"], "empty tools list sent"
    for tool in body["tools"]:
        fn = tool["function"]
        assert tool["type"] == "function" and NAME_RE.match(fn["name"])
        assert fn["parameters"]["type"] == "object"
        assert isinstance(fn["parameters"]["properties"], dict)
        assert "$schema" not in fn["parameters"]


@pytest.mark.parametrize("capture", MESSAGE_CAPTURES)
def test_capture_token_count_is_positive(capture: dict[str, Any]) -> None:
    req = parse(capture)
    text = render_for_count(req)
    assert estimate_tokens(req) >= len(text) / 4 > 0
    assert "x-anthropic-billing-header" not in text


@pytest.mark.parametrize(
    ("stem", "roles"),
    [
        pytest.param("thinking-roundtrip-turn", ["system", "user", "assistant", "tool"],
                     id="thinking-roundtrip"),
        pytest.param("websearch-2-after-toolsearch",
                     ["system", "user", "assistant", "tool", "user"], id="tool-reference"),
        pytest.param("webfetch-tool-result-turn",
                     ["system", "user", "assistant", "tool", "user", "assistant", "tool"],
                     id="two-rounds"),
        pytest.param("bare-bash-tool-use-turn", ["system", "user"], id="empty-role-system"),
    ],
)
def test_capture_shapes(stem: str, roles: list[str]) -> None:
    capture = json.loads((CAPTURES / f"{stem}.json").read_text())
    body = to_openai_request(parse(capture), upstream_model="local",
                             profile=PROFILES["vllm"]).body
    assert [m["role"] for m in body["messages"]] == roles


def test_thinking_roundtrip_keeps_reasoning() -> None:
    capture = json.loads((CAPTURES / "thinking-roundtrip-turn.json").read_text())
    body = to_openai_request(parse(capture), upstream_model="local",
                             profile=PROFILES["vllm"]).body
    assistant = body["messages"][2]
    assert assistant["reasoning_content"] == "Let me think about this (capture server)."
    assert assistant["tool_calls"][0]["function"]["name"] == "Bash"


def test_deferred_placeholder_never_sent_but_loaded_tool_is() -> None:
    capture = json.loads((CAPTURES / "websearch-2-after-toolsearch.json").read_text())
    body = to_openai_request(parse(capture), upstream_model="local",
                             profile=PROFILES["vllm"]).body
    names = [t["function"]["name"] for t in body["tools"]]
    assert "WebSearch" in names and "DeferredToolPlaceholder" not in names


def test_mid_conversation_system_turn_is_a_user_reminder() -> None:
    capture = json.loads((CAPTURES / "main-turn.json").read_text())
    body = to_openai_request(parse(capture), upstream_model="local",
                             profile=PROFILES["vllm"]).body
    user = body["messages"][1]["content"]
    assert "<system-reminder>\n# Environment" in user
