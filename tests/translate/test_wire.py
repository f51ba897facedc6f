"""Inbound request parsing: lenient on shape, clear 400s for the few required fields."""

from __future__ import annotations

import json

import pytest

from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.sse_encode import PING_FRAME, encode_event
from continuum_cli.wire.anthropic import parse_messages_request

HI = [{"role": "user", "content": "hi"}]


def body(**fields: object) -> dict:
    return {"model": "m", "max_tokens": 16, "messages": HI, **fields}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"{x", "request body is not valid JSON", id="bad-json"),
        pytest.param(b"[1]", "request body must be a JSON object", id="not-object"),
        pytest.param({"max_tokens": 1, "messages": HI}, "model: field required", id="no-model"),
        pytest.param({"model": "m", "max_tokens": 1}, "messages: field required", id="no-messages"),
        pytest.param({"model": "m", "messages": HI}, "max_tokens: field required",
                     id="no-max-tokens"),
        pytest.param(body(max_tokens="10"), "max_tokens: must be an integer", id="max-tokens-str"),
        pytest.param(body(max_tokens=True), "max_tokens: must be an integer", id="max-tokens-bool"),
        pytest.param(body(max_tokens=0), "max_tokens: must be greater than", id="max-tokens-zero"),
        pytest.param(body(messages=[]), "messages: at least one message", id="empty-messages"),
        pytest.param(
            body(messages=[{"role": "bot", "content": "x"}]), "messages.0.role: unexpected role",
            id="bad-role",
        ),
        pytest.param(
            body(messages=[{"role": "user", "content": 5}]),
            "messages.0.content: must be a string or a list of content blocks", id="bad-content",
        ),
        pytest.param(body(system=5), "system: must be a string or a list", id="bad-system"),
    ],
)
def test_rejects_with_clear_message(raw: object, message: str) -> None:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(InvalidRequest) as info:
        parse_messages_request(data)
    assert message in info.value.message
    assert info.value.status == 400


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"tools": [{"type": "web_search_20250305", "name": "web_search",
                                 "max_uses": 8}]}, id="server-tool-without-input-schema"),
        pytest.param({"tools": [{"name": "T", "defer_loading": True}]}, id="custom-tool-no-schema"),
        pytest.param({"context_management": {"edits": []}, "safeguards": [], "speed": "fast"},
                     id="unknown-top-level"),
        pytest.param({"messages": [{"role": "user", "content": [{"type": "mystery", "x": 1}]},
                                   {"role": "system", "content": [], "output_config": {}}]},
                     id="unknown-block-and-system-role"),
        pytest.param({"max_tokens": 16.0}, id="integral-float-max-tokens"),
    ],
)
def test_accepts_lenient_shapes(fields: dict) -> None:
    req = parse_messages_request(json.dumps(body(**fields)).encode())
    assert req.model == "m"


def test_count_tokens_does_not_need_max_tokens() -> None:
    req = parse_messages_request({"model": "m", "messages": HI}, require_max_tokens=False)
    assert req.max_tokens is None


def test_server_and_custom_tools_are_told_apart() -> None:
    req = parse_messages_request(body(tools=[
        {"type": "web_search_20250305", "name": "web_search"},
        {"name": "Bash", "input_schema": {"type": "object"}},
        {"type": "custom", "name": "Edit", "input_schema": {}},
    ]))
    assert [t.name for t in req.server_tools()] == ["web_search"]
    assert [t.name for t in req.custom_tools()] == ["Bash", "Edit"]


@pytest.mark.parametrize(
    ("name", "payload", "frame"),
    [
        pytest.param("ping", {"type": "ping"}, b'event: ping\ndata: {"type":"ping"}\n\n',
                     id="ping"),
        pytest.param(
            "content_block_delta", {"type": "x", "text": "é ✓"},
            'event: content_block_delta\ndata: {"type":"x","text":"é ✓"}\n\n'.encode(),
            id="utf8-compact",
        ),
    ],
)
def test_encode_event(name: str, payload: dict, frame: bytes) -> None:
    assert encode_event(name, payload) == frame


def test_ping_frame() -> None:
    assert PING_FRAME == b'event: ping\ndata: {"type":"ping"}\n\n'
