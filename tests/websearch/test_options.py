"""Request reading (options, Claude Code detection, tool_choice), call splitting, folding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from continuum_cli.backends.profiles import profile_for
from continuum_cli.errors import InvalidRequest
from continuum_cli.websearch.accumulate import MessageAccumulator
from continuum_cli.websearch.calls import CallSplitter
from continuum_cli.websearch.emulation import wants_emulation
from continuum_cli.websearch.options import (
    claude_code_query,
    first_tool_choice,
    search_options,
)
from continuum_cli.websearch.providers import UserLocation
from continuum_cli.wire.anthropic import parse_messages_request

CAPTURES = Path(__file__).parent.parent / "fixtures" / "claude_code"
SERVER_TOOL = {"type": "web_search_20250305", "name": "web_search"}


def capture(name: str) -> dict:
    return json.loads((CAPTURES / name).read_text())["body"]


def request(tools=None, messages=None, **extra):
    body = {"model": "m", "max_tokens": 10,
            "messages": messages or [{"role": "user", "content": "hi"}],
            "tools": tools if tools is not None else [SERVER_TOOL], **extra}
    return parse_messages_request(body)


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        pytest.param("websearch-intermediate.json", True, id="sub-request"),
        pytest.param("websearch-intermediate-sonnet-4-5.json", True, id="sub-request-forced"),
        pytest.param("websearch-no-tool-search-main-turn.json", False, id="client-WebSearch"),
        pytest.param("websearch-2-after-toolsearch.json", False, id="deferred-WebSearch"),
        pytest.param("main-turn.json", False, id="main-turn"),
    ],
)
def test_wants_emulation_on_captures(name, wanted):
    assert wants_emulation(parse_messages_request(capture(name))) is wanted


@pytest.mark.parametrize("kind", ["web_search_20250305", "web_search_20260209",
                                  "web_search_20260318"])
def test_every_server_tool_version_is_emulated(kind):
    assert wants_emulation(request([{"type": kind, "name": "web_search"}]))


@pytest.mark.parametrize(
    "name", ["websearch-intermediate.json", "websearch-intermediate-sonnet-4-5.json",
             "websearch-intermediate-nonstream.json", "websearch-tools-flag-intermediate.json"])
def test_claude_code_query_from_captures(name):
    req = parse_messages_request(capture(name))
    assert claude_code_query(req) == "capture server secret word"


@pytest.mark.parametrize(
    ("messages", "tools", "query"),
    [
        pytest.param([{"role": "user", "content": "Perform a web search for the query: x y"}],
                     [SERVER_TOOL], "x y", id="string-content"),
        pytest.param([{"role": "user", "content": "search x"}], [SERVER_TOOL], None,
                     id="other-text"),
        pytest.param([{"role": "user", "content": "Perform a web search for the query: x"},
                      {"role": "assistant", "content": "ok"},
                      {"role": "user", "content": "Perform a web search for the query: y"}],
                     [SERVER_TOOL], None, id="conversation"),
        pytest.param([{"role": "user", "content": "Perform a web search for the query: x"}],
                     [SERVER_TOOL, {"name": "Bash", "input_schema": {"type": "object"}}],
                     None, id="extra-tool"),
    ],
)
def test_claude_code_query_detection(messages, tools, query):
    assert claude_code_query(request(tools, messages)) == query


def test_search_options():
    tool = {**SERVER_TOOL, "max_uses": 3, "allowed_domains": ["Docs.Python.org", "a.com/b"],
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}
    options = search_options(request([tool]))
    assert options.max_uses == 3
    assert options.allowed_domains == ("docs.python.org", "a.com/b")
    assert options.blocked_domains == ()
    assert options.user_location == UserLocation(city="Paris", country="FR")


def test_both_domain_lists_are_a_400():
    tool = {**SERVER_TOOL, "allowed_domains": ["a.com"], "blocked_domains": ["b.com"]}
    with pytest.raises(InvalidRequest) as info:
        search_options(request([{"name": "Bash", "input_schema": {}}, tool]))
    assert info.value.status == 400 and info.value.message.startswith("tools.1:")


@pytest.mark.parametrize("value", [-1, "3", 2.5, True])
def test_bad_max_uses_is_a_400(value):
    with pytest.raises(InvalidRequest):
        search_options(request([{**SERVER_TOOL, "max_uses": value}]))


NAMED = {"type": "function", "function": {"name": "web_search"}}
CUSTOM = {"name": "Bash", "input_schema": {"type": "object"}}


@pytest.mark.parametrize(
    ("choice", "tools", "forced", "backend", "expected"),
    [
        pytest.param(None, [SERVER_TOOL], False, "vllm", "auto", id="default-auto"),
        pytest.param({"type": "auto"}, [SERVER_TOOL], True, "vllm", NAMED, id="claude-code"),
        pytest.param({"type": "tool", "name": "web_search"}, [SERVER_TOOL], False, "vllm",
                     NAMED, id="forced-by-name"),
        pytest.param({"type": "any"}, [SERVER_TOOL], False, "vllm", NAMED, id="any-only-search"),
        pytest.param({"type": "any"}, [SERVER_TOOL, CUSTOM], False, "vllm", "required",
                     id="any-with-client-tools"),
        pytest.param({"type": "any"}, [SERVER_TOOL, CUSTOM], False, "ollama", "auto",
                     id="any-on-ollama"),
        pytest.param({"type": "tool", "name": "Bash"}, [SERVER_TOOL, CUSTOM], False, "vllm",
                     {"type": "function", "function": {"name": "Bash"}}, id="client-tool"),
        pytest.param({"type": "none"}, [SERVER_TOOL], False, "vllm", "none", id="none"),
    ],
)
def test_first_tool_choice(choice, tools, forced, backend, expected):
    req = request(tools, tool_choice=choice) if choice else request(tools)
    assert first_tool_choice(req, profile_for(backend), forced=forced) == expected


def _chunk(delta, finish=None):
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _call(index, name=None, args="", id_=None):
    fn = {"arguments": args}
    if name:
        fn["name"] = name
    call = {"index": index, "function": fn}
    if id_:
        call["id"] = id_
    return call


def test_splitter_takes_web_search_calls_and_keeps_client_calls():
    splitter = CallSplitter()
    out = [
        splitter.feed(_chunk({"content": "Let me look. "})),
        splitter.feed(_chunk({"tool_calls": [_call(0, "web_search", '{"que', "c0")]})),
        splitter.feed(_chunk({"tool_calls": [_call(0, args='ry": "a b"}'),
                                             _call(1, "Bash", "{}", "c1")]})),
        splitter.feed(_chunk({"tool_calls": [_call(2, "web_search", '{"query": "c"}', "c2")]})),
        splitter.feed(_chunk({}, "tool_calls")),
    ]
    assert out[1]["choices"][0]["delta"] == {}
    assert out[2]["choices"][0]["delta"]["tool_calls"] == [_call(1, "Bash", "{}", "c1")]
    assert out[4]["choices"][0]["finish_reason"] == "tool_calls"  # Bash is still a tool call
    assert splitter.queries == ["a b", "c"]
    assert splitter.has_client_calls and splitter.text == "Let me look. "


def test_splitter_turns_a_search_only_finish_into_stop():
    splitter = CallSplitter()
    splitter.feed(_chunk({"tool_calls": [_call(0, "web_search", '{"query": "x"}', "a")]}))
    assert splitter.feed(_chunk({}, "tool_calls"))["choices"][0]["finish_reason"] == "stop"
    assert not splitter.has_client_calls


@pytest.mark.parametrize(
    ("args", "query"),
    [('{"query": "  spaced  "}', "spaced"), ('"{\\"query\\": \\"wrapped\\"}"', "wrapped"),
     ("not json", ""), ('{"q": "x"}', "")],
)
def test_splitter_queries_from_odd_arguments(args, query):
    splitter = CallSplitter()
    splitter.feed(_chunk({"tool_calls": [_call(0, "web_search", args, "a")]}))
    assert splitter.queries == [query]


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_accumulator_folds_the_captured_stream_into_the_captured_message():
    sse = (CAPTURES / "sse-examples" / "websearch.sse").read_text()
    message = json.loads((CAPTURES / "sse-examples" / "websearch-nonstream.json").read_text())
    acc = MessageAccumulator()
    for name, payload in _sse_events(sse):
        acc.feed(name, payload)
    folded = acc.result()
    ids = {"srvtoolu_03ae8f9d74b943f589886c72": "srvtoolu_33726870120a497ea7f0403e"}
    folded_json = json.dumps(folded["content"])
    for old, new in ids.items():
        folded_json = folded_json.replace(old, new)
    assert json.loads(folded_json) == message["content"]
    assert folded["usage"]["server_tool_use"] == {"web_search_requests": 1}
    assert folded["stop_reason"] == "end_turn"
