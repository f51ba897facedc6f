"""Token counting text and estimate (checklist items 41, 45)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from continuum_cli.translate.tokens import (
    CHARS_PER_TOKEN,
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    TOOL_OVERHEAD,
    estimate_tokens,
    image_tokens,
    render_for_count,
)
from continuum_cli.wire.anthropic import parse_messages_request

PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}
PDF = {"type": "document",
       "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
BASH = {"name": "Bash", "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}


def req(**fields: Any):
    data = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return parse_messages_request(data, require_max_tokens=False)


@pytest.mark.parametrize(
    ("fields", "present", "absent"),
    [
        pytest.param({"system": [{"type": "text", "text": "x-anthropic-billing-header: cch=1;"},
                                 {"type": "text", "text": "SYSTEM RULES"}]},
                     ["SYSTEM RULES"], ["billing"], id="system-without-billing-block"),
        pytest.param({"tools": [BASH]},
                     ["Bash", "Run a command", json.dumps(BASH["input_schema"],
                                                          separators=(",", ":"))],
                     [], id="tools-name-description-schema"),
        pytest.param({"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
                     ["web_search"], [], id="server-tool-name"),
        pytest.param({"messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "PONDER", "signature": "s"},
                {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "ls -la"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t",
                 "content": [{"type": "text", "text": "RESULT TEXT"}, PNG]}]}]},
            ["PONDER", "Bash", "ls -la", "RESULT TEXT"], ["AA"], id="history-flattened"),
    ],
)
def test_render_for_count(fields: dict[str, Any], present: list[str], absent: list[str]) -> None:
    text = render_for_count(req(**fields))
    for needle in present:
        assert needle in text
    for needle in absent:
        assert needle not in text


@pytest.mark.parametrize(
    ("content", "images"),
    [
        pytest.param("hi", 0, id="none"),
        pytest.param([PNG, PNG], 2, id="user-images"),
        pytest.param([{"type": "tool_result", "tool_use_id": "t", "content": [PNG]}], 1,
                     id="image-in-tool-result"),
        pytest.param([PDF], 1, id="pdf-counts-as-image"),
        pytest.param([{"type": "document", "source": {"type": "text", "data": ""}}], 0,
                     id="text-document-is-text"),
    ],
)
def test_image_tokens(content: Any, images: int) -> None:
    assert image_tokens(req(messages=[{"role": "user", "content": content}])) == (
        images * IMAGE_TOKENS)


def test_estimate_formula() -> None:
    r = req(tools=[BASH],
            messages=[{"role": "user", "content": [PNG, {"type": "text", "text": "y" * 70}]}])
    expected = (math.ceil(len(render_for_count(r)) / CHARS_PER_TOKEN) + IMAGE_TOKENS
                + MESSAGE_OVERHEAD + TOOL_OVERHEAD)
    assert estimate_tokens(r) == expected


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"role": "user", "content": "a"}], id="one-char"),
        pytest.param([{"role": "user", "content": ""}], id="empty-text"),
        pytest.param([{"role": "user", "content": []}], id="no-blocks"),
    ],
)
def test_estimate_never_zero(messages: list[dict[str, Any]]) -> None:
    assert estimate_tokens(req(messages=messages)) >= 1


def test_estimate_grows_with_system_and_tools() -> None:
    base = estimate_tokens(req())
    assert estimate_tokens(req(system="s" * 350)) >= base + 100
    assert estimate_tokens(req(tools=[BASH])) > base
