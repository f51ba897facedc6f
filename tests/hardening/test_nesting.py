"""Deeply nested JSON: a 400 with the nesting limit, never a RecursionError or a 500 -- on
every JSON-body route, and in every walk the request path makes over what it parsed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from continuum_cli.backends.profiles import PROFILES
from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.partial_json import complete, object_text
from continuum_cli.translate.request import to_openai_request
from continuum_cli.translate.response import to_anthropic_message
from continuum_cli.translate.stream import StreamTranslator
from continuum_cli.translate.tokens import estimate_tokens, image_tokens, render_for_count
from continuum_cli.translate.tool_text import recover_tool_calls
from continuum_cli.translate.tools import referenced_tools
from continuum_cli.upstream.images import url_images
from continuum_cli.websearch.accumulate import _object as accumulated_input
from continuum_cli.websearch.blocks import decode_encrypted_content
from continuum_cli.wire.anthropic import parse_messages_request, walk_blocks
from continuum_cli.wire.json_text import (
    MAX_DEPTH,
    JsonTooDeep,
    loads,
    parse_json_body,
    too_deep,
)
from tests.conftest import basic_config
from tests.fakes.scripted_backend import Raw, ToolCalls, chunk

LIMIT = MAX_DEPTH


def nested_list(depth: int, leaf: Any = 1) -> Any:
    """A list nested `depth` deep (built without recursion)."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def nested_object(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_stack(frames: int, fn: Callable[[], Any]) -> Any:
    """Run `fn` under `frames` extra Python frames: the server calls the translator from
    a stack a few dozen frames deep, tests from a shallower one."""
    if frames <= 0:
        return fn()
    return deep_stack(frames - 1, fn)


# -- the limit itself ------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "deep"), [
    pytest.param("[" * LIMIT + "]" * LIMIT, False, id="exactly-the-limit"),
    pytest.param("[" * (LIMIT + 1) + "]" * (LIMIT + 1), True, id="one-over"),
    pytest.param(json.dumps(nested_object(LIMIT)), False, id="objects-at-limit"),
    pytest.param(json.dumps(nested_object(LIMIT + 1)), True, id="objects-over"),
    pytest.param("[" * 50_000, True, id="50000-unclosed"),
    pytest.param("[" * 50_000 + "]" * 50_000, True, id="50000-balanced"),
    pytest.param(json.dumps(["[" * 5000, "{" * 5000]), False, id="brackets-in-strings"),
    pytest.param(json.dumps(["\\\"[[[" * 2000]), False, id="escapes-in-strings"),
    pytest.param("[" + ",".join(["[]"] * 5000) + "]", False, id="many-flat"),
    pytest.param(json.dumps([nested_list(300), nested_list(300)]), False, id="two-branches"),
    pytest.param(json.dumps([[nested_list(400)], nested_list(LIMIT)]), True, id="second-deep"),
])
def test_limit(text: str, deep: bool) -> None:
    for form in (text, text.encode()):
        if deep:
            with pytest.raises(JsonTooDeep, match=str(LIMIT)):
                loads(form)
        else:
            assert loads(form) == json.loads(text)


def test_too_deep_counts_levels() -> None:
    assert not too_deep(1, 0) and too_deep([], 0) and not too_deep([], 1)
    assert too_deep([[]], 1) and not too_deep([[]], 2)
    assert too_deep({"a": {"b": [1]}}, 2) and not too_deep({"a": {"b": [1]}}, 3)


def test_too_deep_is_a_value_error() -> None:
    # every `except ValueError` around a JSON parse catches it as any other JSON error
    assert issubclass(JsonTooDeep, ValueError)


@pytest.mark.parametrize(("body", "message"), [
    (b"", "request body is empty"),
    (b"[" * 50_000, f"nested deeper than {LIMIT} levels (the nesting limit is {LIMIT})"),
    (b"{x", "request body is not valid JSON: Expecting property name"),
    (b"\xff{}", "not UTF-8"),
    (b"[1]", "request body must be a JSON object, not an array"),
    (b'"s"', "must be a JSON object, not a string"),
    (b'{"max_tokens": ' + b"9" * 5000 + b"}", "Exceeds the limit (4300 digits)"),
    (b'{"temperature": NaN}', "NaN is not a JSON number"),
    (b'{"temperature": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"top_p": 1e400}', "the number 1e400 is too large"),
])
def test_parse_json_body(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_json_body(body)
    assert message in info.value.message and info.value.status == 400


# -- the live server: every JSON-body route --------------------------------------------------
ANTHROPIC_ROUTES = ["/anthropic/v1/messages", "/v1/messages",
                    "/anthropic/v1/messages/count_tokens", "/v1/messages/count_tokens"]
OPENAI_ROUTES = ["/v1/chat/completions"]


def _request(**extra: Any) -> dict[str, Any]:
    return {"model": "test-model", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}], **extra}


def _metadata_20000() -> bytes:
    # json.dumps itself recurses; build the text by hand
    inner = "[" * 20_000 + "]" * 20_000
    return json.dumps(_request(metadata={"x": "@"})).replace('"@"', inner).encode()


BODIES = {
    "50000-brackets": lambda: b"[" * 50_000,
    "30000-objects": lambda: b'{"a":' * 30_000,
    "metadata-20000": _metadata_20000,
    "one-over-the-limit": lambda: json.dumps(_request(metadata={"x": nested_list(LIMIT)})
                                             ).encode(),
}


@pytest.mark.parametrize("body", sorted(BODIES))
@pytest.mark.parametrize("path", ANTHROPIC_ROUTES + OPENAI_ROUTES)
def test_deep_body_is_a_400_in_the_routes_envelope(router, path: str, body: str) -> None:
    resp = httpx.post(router.url + path, content=BODIES[body](),
                      headers={"content-type": "application/json"}, timeout=30)
    assert resp.status_code == 400, resp.text
    data = resp.json()
    if path in OPENAI_ROUTES:
        error = data["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == 400
    else:
        assert data["type"] == "error"
        error = data["error"]
        assert error["type"] == "invalid_request_error"
    assert f"nesting limit is {LIMIT}" in error["message"]


NOT_JSON_NUMBERS = {
    "5000-digit-integer": b'{"model": "test-model", "max_tokens": ' + b"7" * 5000 + b"}",
    "nan": b'{"model": "test-model", "max_tokens": 16, "temperature": NaN}',
    "1e400": b'{"model": "test-model", "max_tokens": 16, "top_p": 1e400}',
}


@pytest.mark.parametrize("body", sorted(NOT_JSON_NUMBERS))
@pytest.mark.parametrize("path", ANTHROPIC_ROUTES + OPENAI_ROUTES)
def test_numbers_json_does_not_have_are_a_400(router, path: str, body: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Python's parser takes NaN, Infinity and 1e400 (RFC 8259 §6 has none of them) and
    refuses integers past 4300 digits with a plain ValueError: each is a 400 naming it."""
    with caplog.at_level("DEBUG"):
        resp = httpx.post(router.url + path, content=NOT_JSON_NUMBERS[body],
                          headers={"content-type": "application/json"}, timeout=30)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("request body is not valid JSON")
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def test_deep_body_leaves_no_traceback(router, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        resp = httpx.post(router.anthropic_url + "/v1/messages", content=b"[" * 50_000,
                          timeout=30)
    assert resp.status_code == 400
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    # and the router still serves
    ok = httpx.post(router.anthropic_url + "/v1/messages", json=_request(), timeout=30)
    assert ok.status_code == 200


def test_nesting_at_the_limit_is_served(router) -> None:
    body = _request(metadata={"x": nested_list(LIMIT - 2)})  # request + metadata = 2 levels
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=_request(
        metadata={"x": nested_list(LIMIT - 1)}), timeout=30)
    assert resp.status_code == 400 and str(LIMIT) in resp.text


# -- every walk over a parsed request, at the deepest nesting the limit lets through -------
def _tool_result_nest(levels: int) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": "leaf"}
    for i in range(levels):
        block = {"type": "tool_result", "tool_use_id": f"t{i}", "content": [block]}
    return block


def _document_nest(levels: int) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": "leaf"}
    for _ in range(levels):
        block = {"type": "document", "source": {"type": "content", "content": [block]}}
    return block


def _deep_requests() -> dict[str, dict[str, Any]]:
    """Requests as deep as the limit allows, with the depth in each place a walk reads."""
    room = LIMIT - 8  # the levels a request spends to reach the place
    tool = {"name": "deep", "description": "d",
            "input_schema": {"type": "object", "properties": {"x": nested_object(room)}}}
    call = {"type": "tool_use", "id": "toolu_1", "name": "deep", "input": nested_object(room)}
    return {
        "metadata": _request(metadata={"user_id": "u", "x": nested_list(room)}),
        "unknown-field": _request(context_management=nested_object(room)),
        "tool-schema": _request(tools=[tool]),
        "tool-use-input": _request(tools=[tool], messages=[
            {"role": "user", "content": "go"}, {"role": "assistant", "content": [call]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": "ok"}]}]),
        "tool-result-nest": _request(messages=[
            {"role": "assistant", "content": [{**call, "input": {}}]},
            {"role": "user", "content": [_tool_result_nest(room // 2)]}]),
        "document-nest": _request(messages=[
            {"role": "user", "content": [_document_nest(room // 3)]}]),
        "server-result": _request(messages=[{"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
             "input": nested_object(room)},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
             "content": [nested_list(room)]}]},
            {"role": "user", "content": "more"}]),
        "system-block": _request(system=[{"type": "text", "text": "s",
                                          "cache_control": nested_object(room)}]),
        "thinking": _request(thinking={"type": "enabled", "budget_tokens": 10,
                                       "x": nested_list(room)}),
        "tool-choice": _request(tools=[tool], tool_choice={"type": "auto",
                                                            "x": nested_list(room)}),
    }


DEEP = _deep_requests()


@pytest.mark.parametrize("name", sorted(DEEP))
def test_walks_survive_the_deepest_allowed_request(name: str) -> None:
    body = json.dumps(DEEP[name]).encode()
    assert not too_deep(json.loads(body))

    def walk() -> None:
        try:
            req = parse_messages_request(body)
            to_openai_request(req, upstream_model="up", profile=PROFILES["vllm"])
        except InvalidRequest:
            return  # a 400 naming the problem is an answer; a RecursionError is not
        render_for_count(req)
        estimate_tokens(req)
        image_tokens(req)
        list(url_images(req))
        referenced_tools(req)
        for msg in req.messages:
            list(walk_blocks(msg.blocks()))

    deep_stack(150, walk)


def test_document_nesting_is_a_400_naming_the_block() -> None:
    req = parse_messages_request(_request(messages=[{"role": "user",
                                                     "content": [_document_nest(2)]}]))
    with pytest.raises(InvalidRequest, match="document block cannot be nested"):
        to_openai_request(req, upstream_model="up", profile=PROFILES["vllm"])


def test_tool_result_nest_is_counted_without_recursion() -> None:
    req = parse_messages_request(_request(messages=[
        {"role": "user", "content": [_tool_result_nest(5000)]}]))
    assert render_for_count(req).count("leaf") == 1
    assert image_tokens(req) == 0


def test_walk_blocks_is_in_document_order() -> None:
    blocks = [{"type": "text", "text": "a"},
              {"type": "tool_result", "content": [{"type": "text", "text": "b"},
                                                  {"type": "tool_result", "content": [
                                                      {"type": "text", "text": "c"}]},
                                                  {"type": "text", "text": "d"}]},
              "not a block", {"type": "text", "text": "e"}]
    texts = [b.get("text") for b in walk_blocks(blocks) if b["type"] == "text"]
    assert texts == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deepest_allowed_requests_through_the_live_server(router, name: str) -> None:
    for path in ("/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens"):
        for stream in (False, True):
            if stream and path.endswith("count_tokens"):
                continue
            body = {**DEEP[name], "stream": stream}
            resp = httpx.post(router.url + path, json=body, timeout=60)
            assert resp.status_code in (200, 400), resp.text
            if resp.status_code == 400:
                assert resp.json()["error"]["type"] == "invalid_request_error"
            else:
                assert "event: error" not in resp.text


# -- what the backend sends: tool arguments, bodies, stream events ---------------------------
DEEP_ARGS = '{"a":' + "[" * 5000 + "]" * 5000 + "}"
ALLOWED_BUT_DEEP_ARGS = '{"a":' + "[" * 900 + "]" * 900 + "}"


@pytest.mark.parametrize("raw", [DEEP_ARGS, ALLOWED_BUT_DEEP_ARGS, DEEP_ARGS[:-1],
                                 "{'a': " + "[" * 3000])
def test_deep_tool_arguments_are_handed_over_unparsed(raw: str) -> None:
    text = deep_stack(150, lambda: object_text(raw))
    assert json.loads(text) == {"_unparsed_arguments": raw}
    # the streaming path: a prefix already went out, the rest must close it as one object
    rest = deep_stack(150, lambda: complete('{"a":', raw))
    assert json.loads('{"a":' + rest)["_unparsed_arguments"] == raw


def test_deep_tool_arguments_in_a_completion() -> None:
    completion = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "deep", "arguments": DEEP_ARGS}}]}}]}
    message = deep_stack(150, lambda: to_anthropic_message(
        completion, model="m", message_id="msg_1", tool_names=ToolNameMap.build(["deep"]),
        stop_sequences=None, input_tokens=1))
    assert message["content"][0]["input"] == {"_unparsed_arguments": DEEP_ARGS}


def test_deep_tool_arguments_in_a_stream() -> None:
    translator = StreamTranslator(model="m", message_id="msg_1",
                                  tool_names=ToolNameMap.build(["deep"]), input_tokens=1)
    events = translator.start_events()
    pieces = [DEEP_ARGS[i:i + 700] for i in range(0, len(DEEP_ARGS), 700)]
    events += translator.feed(chunk({"tool_calls": [{"index": 0, "id": "c1", "type":
                                                      "function", "function": {
                                                          "name": "deep", "arguments": ""}}]}))
    for piece in pieces:
        events += translator.feed(chunk({"tool_calls": [{"index": 0,
                                                          "function": {"arguments": piece}}]}))
    events += translator.feed(chunk({}, finish="tool_calls"))
    events += deep_stack(150, translator.finish)
    partial = "".join(p["delta"].get("partial_json", "") for name, p in events
                      if name == "content_block_delta")
    assert json.loads(partial)["_unparsed_arguments"] == DEEP_ARGS


def test_deep_json_in_text_tool_calls_stays_text() -> None:
    text = "<tool_call>" + '{"name": "deep", "arguments": ' + "[" * 5000 + "]" * 5000 + \
        "}</tool_call>"
    kept, calls = recover_tool_calls(text, {"deep"})
    assert calls == [] and kept == text


def test_deep_websearch_inputs() -> None:
    import base64

    forged = "continuum:v1:" + base64.urlsafe_b64encode(b"[" * 5000).decode()
    assert decode_encrypted_content(forged) is None
    assert accumulated_input("[" * 5000) == {}


def test_deep_backend_error_body(router, scripted) -> None:
    body = b'{"error": {"message": "bad", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    scripted.queue(Raw("application/json", body, status=400))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=_request(), timeout=30)
    assert resp.status_code == 400 and resp.json()["type"] == "error"
    assert "internal error" not in resp.text


def test_deep_stream_event_from_the_backend(router, scripted) -> None:
    event = b'data: {"choices": ' + b"[" * 5000 + b"]" * 5000 + b"}\n\n"
    scripted.queue(Raw("text/event-stream", event + b"data: [DONE]\n\n"))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=_request(stream=True),
                      timeout=30)
    assert resp.status_code in (200, 502)
    if resp.status_code == 200:
        assert resp.text.count("event: error") == 1
        assert "internal error" not in resp.text
    scripted.queue(Raw("application/json", b'{"choices": ' + b"[" * 5000 + b"]" * 5000
                       + b"}"))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=_request(), timeout=30)
    assert resp.status_code in (502, 529) and "internal error" not in resp.text
    assert resp.json()["type"] == "error"
    scripted.queue(ToolCalls([("deep", DEEP_ARGS)]))
    resp = httpx.post(router.anthropic_url + "/v1/messages", json=_request(tools=[
        {"name": "deep", "input_schema": {"type": "object"}}]), timeout=30)
    assert resp.status_code == 200
    assert resp.json()["content"][-1]["input"] == {"_unparsed_arguments": DEEP_ARGS}


def test_deep_backend_body_on_the_openai_passthrough(router, scripted) -> None:
    """The passthrough relays the backend's body as it is; the usage meter that reads it
    must not trip over its nesting."""
    body = (b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", '
            b'"content": "hi"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, '
            b'"completion_tokens": 1}, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    scripted.queue(Raw("application/json", body))
    resp = httpx.post(router.url + "/v1/chat/completions", timeout=30, json={
        "model": "test-model", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200 and resp.content == body
    stream = b'data: {"choices": [], "usage": {"x": ' + b"[" * 5000 + b"]" * 5000 + \
        b'}}\n\ndata: [DONE]\n\n'
    scripted.queue(Raw("text/event-stream", stream))
    resp = httpx.post(router.url + "/v1/chat/completions", timeout=30, json={
        "model": "test-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200 and resp.content == stream
