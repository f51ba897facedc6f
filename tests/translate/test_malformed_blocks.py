"""Content blocks of the wrong shape are a 400 naming the field, never a 500.

Blocks stay plain dicts so that unknown fields and block types pass (checklist item 1); every
field the translator reads is checked where it is read. A 500 would be retried ten times by
Claude Code (REPORT.md §8); a 400 names what to fix.
"""

from __future__ import annotations

from typing import Any

import pytest

from continuum_cli.backends.profiles import PROFILES
from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.request import to_openai_request
from continuum_cli.translate.tokens import estimate_tokens, image_tokens, render_for_count
from continuum_cli.wire.anthropic import MessagesRequest, parse_messages_request


def request(messages: list[dict[str, Any]], **fields: Any) -> MessagesRequest:
    return parse_messages_request({"model": "m", "max_tokens": 8, "messages": messages, **fields})


def user(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


def assistant(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": list(blocks)},
            {"role": "user", "content": "go on"}]


def image(source: Any) -> dict[str, Any]:
    return {"type": "image", "source": source}


def document(source: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "document", "source": source, **extra}


def result(content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": "t1", "content": content, **extra}


def tool_use(**fields: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}, **fields}


B64 = {"type": "base64", "media_type": "image/png", "data": "AAAA"}
TEXT_DOC = {"type": "text", "media_type": "text/plain", "data": "body"}
AT = "messages.0.content.0"
AT_ASSISTANT = "messages.1.content.0"

MALFORMED = [
    # every block
    pytest.param(user({"text": "hi"}), f"{AT}.type: field required", id="missing-type"),
    pytest.param(user({"type": 5}), f"{AT}.type: must be a string", id="type-not-a-string"),
    pytest.param(assistant({"text": "hi"}), f"{AT_ASSISTANT}.type: field required",
                 id="assistant-missing-type"),
    # text
    pytest.param(user({"type": "text", "text": 5}), f"{AT}.text: must be a string",
                 id="text-not-a-string"),
    pytest.param(user({"type": "text"}), f"{AT}.text: field required", id="text-missing"),
    pytest.param(user({"type": "text", "text": "ok"}, {"type": "text", "text": ["x"]}),
                 "messages.0.content.1.text: must be a string", id="second-block-named"),
    pytest.param(assistant({"type": "text", "text": {"a": 1}}),
                 f"{AT_ASSISTANT}.text: must be a string", id="assistant-text-not-a-string"),
    # image
    pytest.param(user(image("abc")), f"{AT}.source: must be an object", id="image-source-string"),
    pytest.param(user(image(["abc"])), f"{AT}.source: must be an object", id="image-source-list"),
    pytest.param(user({"type": "image"}), f"{AT}.source: field required",
                 id="image-source-missing"),
    pytest.param(user(image({**B64, "data": None})), f"{AT}.source.data: field required",
                 id="image-data-missing"),
    pytest.param(user(image({**B64, "data": 12})), f"{AT}.source.data: must be a string",
                 id="image-data-not-a-string"),
    pytest.param(user(image({**B64, "media_type": 1})),
                 f"{AT}.source.media_type: must be a string", id="image-media-type-not-a-string"),
    pytest.param(user(image({"type": "url"})), f"{AT}.source.url: field required",
                 id="image-url-missing"),
    pytest.param(user(image({"type": "url", "url": " "})), f"{AT}.source.url: must not be empty",
                 id="image-url-empty"),
    pytest.param(user(image({"data": "AAAA"})),
                 f"{AT}.source.type: an image source must be 'base64' or 'url'",
                 id="image-source-type-missing"),
    # document
    pytest.param(user(document("abc")), f"{AT}.source: must be an object",
                 id="document-source-string"),
    pytest.param(user(document({"type": "text"})), f"{AT}.source.data: field required",
                 id="document-text-data-missing"),
    pytest.param(user(document({"type": "base64", "media_type": "text/plain", "data": 1})),
                 f"{AT}.source.data: must be a string", id="document-base64-data-not-a-string"),
    pytest.param(user(document({"type": "base64", "media_type": "text/plain", "data": "%%"})),
                 f"{AT}.source.data: base64 data is not valid", id="document-base64-invalid"),
    pytest.param(user(document({"type": "content", "content": ["text"]})),
                 f"{AT}.source.content.0: must be an object", id="document-content-not-blocks"),
    pytest.param(user(document({"type": "content", "content": 3})),
                 f"{AT}.source.content: must be a string or a list of content blocks",
                 id="document-content-not-a-list"),
    pytest.param(user(document({"type": "content", "content": [image("x")]})),
                 f"{AT}.source.content.0.source: must be an object",
                 id="document-content-nested-image"),
    pytest.param(user(document(TEXT_DOC, title=7)), f"{AT}.title: must be a string",
                 id="document-title-not-a-string"),
    pytest.param(user(document(TEXT_DOC, context=["c"])), f"{AT}.context: must be a string",
                 id="document-context-not-a-string"),
    pytest.param(user(document({"type": "zip"})),
                 f"{AT}.source: unsupported document source 'zip' (no media type)",
                 id="document-source-unknown"),
    # search_result
    pytest.param(user({"type": "search_result", "source": "https://x", "content": ["t"]}),
                 f"{AT}.content.0: must be an object", id="search-result-content-not-blocks"),
    # tool_result
    pytest.param(user(result(3)),
                 f"{AT}.content: must be a string or a list of content blocks",
                 id="tool-result-content-number"),
    pytest.param(user(result(["ok"])), f"{AT}.content.0: must be an object",
                 id="tool-result-content-strings"),
    pytest.param(user(result([{"text": "ok"}])), f"{AT}.content.0.type: field required",
                 id="tool-result-block-missing-type"),
    pytest.param(user(result([image("abc")])), f"{AT}.content.0.source: must be an object",
                 id="tool-result-image-source-string"),
    pytest.param(user({"type": "tool_result", "content": "ok"}),
                 f"{AT}.tool_use_id: field required", id="tool-result-id-missing"),
    # tool_use
    pytest.param(assistant(tool_use(input=["ls"])), f"{AT_ASSISTANT}.input: must be an object",
                 id="tool-use-input-list"),
    pytest.param(assistant(tool_use(input=5)), f"{AT_ASSISTANT}.input: must be an object",
                 id="tool-use-input-number"),
    pytest.param(assistant(tool_use(id=None)), f"{AT_ASSISTANT}.id: field required",
                 id="tool-use-id-missing"),
    pytest.param(assistant(tool_use(name=3)), f"{AT_ASSISTANT}.name: must be a string",
                 id="tool-use-name-not-a-string"),
    # thinking
    pytest.param(assistant({"type": "thinking", "thinking": 1, "signature": "s"}),
                 f"{AT_ASSISTANT}.thinking: must be a string", id="thinking-not-a-string"),
    pytest.param(assistant({"type": "thinking", "signature": "s"}),
                 f"{AT_ASSISTANT}.thinking: field required", id="thinking-missing"),
    # server tool results replayed in history (websearch.md §1.8)
    pytest.param(assistant({"type": "server_tool_use", "id": "s1", "name": "web_search",
                            "input": {"query": "q"}},
                           {"type": "web_search_tool_result", "tool_use_id": "s1",
                            "content": 3}),
                 "messages.1.content.1.content: must be a list of results or an error object",
                 id="server-result-content-number"),
    # role:system turns and the system prompt
    pytest.param([{"role": "system", "content": [{"type": "text", "text": 1}]},
                  {"role": "user", "content": "hi"}],
                 f"{AT}.text: must be a string", id="system-turn-text-not-a-string"),
]


@pytest.mark.parametrize(("messages", "message"), MALFORMED)
def test_malformed_block_is_a_400_naming_it(messages: list[dict[str, Any]], message: str
                                            ) -> None:
    with pytest.raises(InvalidRequest) as info:
        to_openai_request(request(messages), upstream_model="up", profile=PROFILES["vllm"])
    assert info.value.message == message
    assert info.value.status == 400


def test_malformed_system_block_is_a_400_naming_it() -> None:
    req = request([{"role": "user", "content": "hi"}],
                  system=[{"type": "text", "text": "a"}, image("abc")])
    with pytest.raises(InvalidRequest, match=r"^system\.1\.source: must be an object$"):
        to_openai_request(req, upstream_model="up", profile=PROFILES["vllm"])


@pytest.mark.parametrize(("messages", "message"), MALFORMED)
def test_token_estimate_never_crashes_on_malformed_blocks(
        messages: list[dict[str, Any]], message: str) -> None:
    """The estimate runs before translation (message_start, max_tokens clamp): it counts
    what it can and leaves the 400 to the translator."""
    req = request(messages)
    assert estimate_tokens(req) >= 1
    assert isinstance(render_for_count(req), str)
    assert image_tokens(req) >= 0


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param([{"type": "text", "text": "hi", "citations": None, "extra": {"x": 1}}],
                     id="unknown-fields"),
        pytest.param([{"type": "brand_new_block", "data": 1}, {"type": "text", "text": "hi"}],
                     id="unknown-block-type"),
        pytest.param([result(None), {"type": "text", "text": "hi"}], id="tool-result-no-content"),
        pytest.param([{"type": "text", "text": ""}, {"type": "text", "text": "hi"}],
                     id="empty-text"),
        pytest.param([{"type": "search_result", "source": "https://x", "title": "T",
                       "content": [{"type": "text", "text": "hi"}]}], id="search-result"),
    ],
)
def test_well_formed_but_unusual_blocks_still_pass(blocks: list[dict[str, Any]]) -> None:
    """Item 1: leniency is kept for everything that has the right shape."""
    body = to_openai_request(request(user(*blocks)), upstream_model="up",
                             profile=PROFILES["vllm"]).body
    assert body["messages"]
