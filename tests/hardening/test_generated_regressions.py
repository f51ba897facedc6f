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


@pytest.mark.parametrize("given", [True, [1, 2], 3, "not json", '{"query": "x"}'])
def test_server_tool_use_input_is_sent_as_an_object(given: Any) -> None:
    """A replayed `server_tool_use` whose input was not an object went upstream as
    `arguments: "true"`."""
    req = parse_messages_request(_request(messages=[
        {"role": "user", "content": "find"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
             "input": given},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}]},
        {"role": "user", "content": "thanks"}]))
    body = to_openai_request(req, upstream_model="up", profile=PROFILES["vllm"]).body
    calls = [c for m in body["messages"] for c in m.get("tool_calls") or []]
    assert calls and all(isinstance(json.loads(c["function"]["arguments"]), dict)
                         for c in calls)


@pytest.mark.parametrize(("arguments", "valid"), [
    (r'{"\ud83d\ude00": 1}', True),  # a pair: fine
    (r'{"\ud800": 1}', False),  # a high surrogate alone
    (r'{"\udc00": null}', False),  # a low one alone (what a dropped chunk left, below)
    (r'{"\\ud800": 1}', True),  # an escaped backslash, not an escape
])
def test_unpaired_surrogate_escapes_never_reach_the_client(arguments: str, valid: bool
                                                           ) -> None:
    """Python's json accepts `\\udc00` alone; the anthropic SDK's parser (jiter) does not,
    and failed the whole turn ("Unable to parse tool parameter JSON")."""
    from continuum_cli.translate.names import ToolNameMap
    from continuum_cli.translate.stream import StreamTranslator
    from tests.fakes.scripted_backend import chunk

    translator = StreamTranslator(model="m", message_id="msg_1",
                                  tool_names=ToolNameMap.build(["Bash"]))
    events = translator.start_events()
    events += translator.feed(chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                                     "function": {"name": "Bash",
                                                                  "arguments": ""}}]}))
    for piece in (arguments[:4], arguments[4:9], arguments[9:]):
        events += translator.feed(chunk({"tool_calls": [{"index": 0, "function": {
            "arguments": piece}}]}))
    events += translator.feed(chunk({}, finish="tool_calls")) + translator.finish()
    partial = "".join(p["delta"].get("partial_json", "") for name, p in events
                      if name == "content_block_delta")
    value = json.loads(partial)
    assert ("_unparsed_arguments" not in value) is valid
    if not valid:
        assert value["_unparsed_arguments"] == arguments
        assert "\\ud" not in partial.replace("\\\\", "")  # no unpaired escape went out
