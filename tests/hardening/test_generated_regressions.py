"""Bugs the property tests (tests/property) found, each pinned here."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from continuum_cli.backends.profiles import PROFILES
from continuum_cli.translate.request import thinking_mode, to_openai_request
from continuum_cli.wire.anthropic import parse_messages_request


def _request(**fields: Any) -> dict[str, Any]:
    return {"model": "test-model", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}], **fields}


@pytest.mark.parametrize(("given", "sent"), [
    ("0", {"_unparsed_arguments": "0"}),
    ("00", {"_unparsed_arguments": "00"}),
    ("not json", {"_unparsed_arguments": "not json"}),
    ("[1, 2]", {"_unparsed_arguments": "[1, 2]"}),
    ('{"a": 1}', {"a": 1}),
    ('"{\\"a\\": 1}"', {"a": 1}),  # double-encoded
    ("{'a': True,}", {"a": True}),  # repaired
    ("", {}),
])
def test_string_tool_input_is_sent_as_an_object(given: str, sent: dict[str, Any]) -> None:
    """A `tool_use.input` given as text was forwarded as `arguments` verbatim; chat
    templates parse arguments as an object, so a backend answered 500."""
    req = parse_messages_request(_request(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                           "input": given}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "ok"}]}]))
    body = to_openai_request(req, upstream_model="up", profile=PROFILES["vllm"]).body
    call = body["messages"][1]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == sent


@pytest.mark.parametrize("effort", [[], {}, ["high"], 3, None, "unknown"])
def test_odd_effort_values_are_ignored(effort: Any) -> None:
    """`output_config.effort` that is not a string raised TypeError (unhashable) -> 500."""
    req = parse_messages_request(_request(thinking={"type": "enabled", "budget_tokens": 5000},
                                          output_config={"effort": effort}))
    assert thinking_mode(req) == "medium"


def test_odd_effort_through_the_router(router) -> None:
    resp = httpx.post(router.anthropic_url + "/v1/messages", timeout=30, json=_request(
        thinking={"type": "adaptive"}, output_config={"effort": []}))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("kind", [[], {}, ["document"], {"a": 1}])
def test_unhashable_block_type_is_not_a_500(router, kind: Any) -> None:
    """A block whose `type` is a list or an object broke the document resolver's scan
    (TypeError: unhashable) -> 500."""
    for content in ([{"type": kind, "text": "x"}],
                    [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": kind}]}]):
        resp = httpx.post(router.anthropic_url + "/v1/messages", timeout=30,
                          json=_request(messages=[{"role": "user", "content": content}]))
        assert resp.status_code in (200, 400), resp.text
        assert resp.json()["type"] in ("message", "error")
