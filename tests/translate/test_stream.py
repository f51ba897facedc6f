"""OpenAI chunk stream -> Anthropic SSE events (checklist §G, items 30–37, 40–41).

Every case runs a list of OpenAI chunks through `StreamTranslator` and compares the exact
event sequence (in a compact spelling, see `compact`). Every sequence is also checked by a
strict protocol validator and accumulated with the official anthropic SDK.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from continuum_cli.errors import UpstreamUnavailable
from continuum_cli.translate.ids import thinking_signature, tool_use_id
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.response import INVALID_ARGUMENTS_KEY, to_anthropic_message
from continuum_cli.translate.sse_encode import encode_event
from continuum_cli.translate.stream import Event, StreamTranslator, think_probe_chars
from continuum_cli.translate.think import DEFAULT_PROBE_CHARS

MID = "msg_s"
NAMES = ToolNameMap.build(["Bash", "Read", "mcp.do"])


# -- chunk builders -----------------------------------------------------------------------
def delta(finish: str | None = None, **d: Any) -> dict[str, Any]:
    return {"object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def text(t: str) -> dict[str, Any]:
    return delta(content=t)


def reason(t: str) -> dict[str, Any]:
    return delta(reasoning_content=t)


def frag(index: int | None = None, id_: str | None = None, name: str | None = None,
         args: Any = None) -> dict[str, Any]:
    f: dict[str, Any] = {"type": "function", "function": {}}
    if index is not None:
        f["index"] = index
    if id_ is not None:
        f["id"] = id_
    if name is not None:
        f["function"]["name"] = name
    if args is not None:
        f["function"]["arguments"] = args
    return f


def calls(*frags: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return delta(finish, tool_calls=list(frags))


def finish(reason_: str = "stop", **choice: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason_, **choice}]}


def usage(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    u: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        u["prompt_tokens_details"] = {"cached_tokens": cached}
    return {"choices": [], "usage": u}


# -- running and checking -----------------------------------------------------------------
def run(chunks: list[dict[str, Any]], **kw: Any) -> tuple[list[Event], StreamTranslator]:
    kw.setdefault("think_probe_chars", 0)
    t = StreamTranslator(model="claude-x", message_id=MID, tool_names=NAMES, input_tokens=42,
                         stop_sequences=kw.pop("stop", None), **kw)
    events = t.start_events()
    for chunk in chunks:
        events += t.feed(chunk)
    events += t.finish()
    return events, t


def compact(events: list[Event]) -> list[tuple]:
    """Events without the boilerplate; message_start/ping/message_stop are checked by
    `validate`. Tool starts show (index, id, name); stops show only the index."""
    out: list[tuple] = []
    for name, p in events:
        if name == "content_block_start":
            b = p["content_block"]
            out.append(("tool", p["index"], b["id"], b["name"]) if b["type"] == "tool_use"
                       else (b["type"], p["index"]))
        elif name == "content_block_delta":
            d = p["delta"]
            value = {"text_delta": "text", "thinking_delta": "thinking",
                     "input_json_delta": "partial_json", "signature_delta": "signature"}[d["type"]]
            out.append((d["type"].removesuffix("_delta"), p["index"], d[value]))
        elif name == "content_block_stop":
            out.append(("stop", p["index"]))
        elif name == "message_delta":
            out.append(("end", p["delta"]["stop_reason"], p["delta"]["stop_sequence"]))
    return out


def validate(events: list[Event], first_index: int = 0) -> dict[str, Any]:
    """Strict protocol checks (item 31), then the SDK's own accumulator."""
    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    for name, payload in events:
        assert payload["type"] == name
        encode_event(name, payload)  # serialisable
    open_index, expected, kinds, jsons = None, first_index, {}, {}
    for name, p in events:
        if name == "content_block_start":
            assert open_index is None, "two blocks open at once"
            assert p["index"] == expected
            open_index, expected = p["index"], expected + 1
            kinds[open_index] = p["content_block"]["type"]
        elif name == "content_block_delta":
            assert p["index"] == open_index, "delta for a block that is not open"
            allowed = {"text": {"text_delta"}, "thinking": {"thinking_delta", "signature_delta"},
                       "tool_use": {"input_json_delta"}}[kinds[open_index]]
            assert p["delta"]["type"] in allowed
            if p["delta"]["type"] == "input_json_delta":
                jsons[open_index] = jsons.get(open_index, "") + p["delta"]["partial_json"]
        elif name == "content_block_stop":
            assert p["index"] == open_index
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta with a block still open"
            assert set(p["usage"]) == {"input_tokens", "output_tokens",
                                       "cache_read_input_tokens", "cache_creation_input_tokens"}
    for index, text_ in jsons.items():  # also for a call cut off by max_tokens (item 34)
        assert isinstance(json.loads(text_), dict), f"block {index}: {text_!r}"
    snapshot, bufs = None, {}
    for _, payload in events:
        snapshot = accumulate_event(event=payload, current_snapshot=snapshot, json_bufs=bufs)
    message = snapshot.to_dict()
    Message.model_validate(message)
    for block in message["content"]:
        if block["type"] == "text":
            assert block["text"].strip(), "empty text block"
        if block["type"] == "thinking":
            assert block["signature"], "thinking block without signature"
    return message


SIG = thinking_signature
END = ("end", "end_turn", None)

CASES = [
    pytest.param(
        [delta(role="assistant", content=""), text("Hel"), text("lo"), finish(), usage(9, 2)],
        [("text", 0), ("text", 0, "Hel"), ("text", 0, "lo"), ("stop", 0), END],
        id="text",
    ),
    pytest.param(
        [delta(content="Run.", tool_calls=[frag(0, "c1", "Bash", '{"command":"ls"}')],
               finish="tool_calls")],
        [("text", 0), ("text", 0, "Run."), ("stop", 0), ("tool", 1, "c1", "Bash"),
         ("input_json", 1, '{"command":"ls"}'), ("stop", 1), ("end", "tool_use", None)],
        id="text-tool-finish-in-one-chunk",
    ),
    pytest.param(
        [reason("Let me"), reason(" see."), text("\n\nDone."), finish()],
        [("thinking", 0), ("thinking", 0, "Let me"), ("thinking", 0, " see."),
         ("signature", 0, SIG("Let me see.")), ("stop", 0),
         ("text", 1), ("text", 1, "Done."), ("stop", 1), END],
        id="reasoning-content-first",
    ),
    pytest.param(
        [delta(reasoning="hm"), text("ok"), finish()],
        [("thinking", 0), ("thinking", 0, "hm"), ("signature", 0, SIG("hm")), ("stop", 0),
         ("text", 1), ("text", 1, "ok"), ("stop", 1), END],
        id="reasoning-field",
    ),
    pytest.param(
        [text("<thi"), text("nk>ab"), text("c</th"), text("ink>\n\nHi"), finish()],
        [("thinking", 0), ("thinking", 0, "ab"), ("thinking", 0, "c"),
         ("signature", 0, SIG("abc")), ("stop", 0), ("text", 1), ("text", 1, "Hi"),
         ("stop", 1), END],
        id="think-tags-split-across-chunks",
    ),
    pytest.param(
        [text("  \n"), calls(frag(0, "c1", "Bash", "{}")), finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, "{}"), ("stop", 0),
         ("end", "tool_use", None)],
        id="whitespace-never-opens-a-block",
    ),
    pytest.param(
        [calls(frag(0, "c1")), calls(frag(0, name="Bash")), calls(frag(0, args='{"a":')),
         calls(frag(0, args="1}")), finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, '{"a":'), ("input_json", 0, "1}"),
         ("stop", 0), ("end", "tool_use", None)],
        id="id-only-fragment-buffered-until-name",
    ),
    pytest.param(
        [calls(frag(0, "c1", "Bash", '{"a":')), calls(frag(1, "c2", "Read", '{"p":')),
         calls(frag(0, args="1}")), calls(frag(1, args="2}")), finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, '{"a":'), ("input_json", 0, "1}"),
         ("stop", 0), ("tool", 1, "c2", "Read"), ("input_json", 1, '{"p":2}'), ("stop", 1),
         ("end", "tool_use", None)],
        id="interleaved-parallel-calls-buffered",
    ),
    pytest.param(
        [calls(frag(0, "c1", "Bash", '{"a":1}'), frag(1, "c2", "Read", '{"p":2}')),
         finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, '{"a":1}'), ("stop", 0),
         ("tool", 1, "c2", "Read"), ("input_json", 1, '{"p":2}'), ("stop", 1),
         ("end", "tool_use", None)],
        id="two-calls-in-one-chunk",
    ),
    pytest.param(
        [calls(frag(0, "c1", "Bash", '{"a":1}')), calls(frag(0, "c2", "Bash", '{"a":2}')),
         finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, '{"a":1}'), ("stop", 0),
         ("tool", 1, "c2", "Bash"), ("input_json", 1, '{"a":2}'), ("stop", 1),
         ("end", "tool_use", None)],
        id="index-0-repeated-new-id",
    ),
    pytest.param(
        [calls(frag(0, name="Bash", args='{"a":1}')), calls(frag(0, name="Bash", args='{"a":2}')),
         finish("stop")],
        [("tool", 0, tool_use_id(MID, 1), "Bash"), ("input_json", 0, '{"a":1}'), ("stop", 0),
         ("tool", 1, tool_use_id(MID, 2), "Bash"), ("input_json", 1, '{"a":2}'), ("stop", 1),
         ("end", "tool_use", None)],
        id="index-0-repeated-no-ids-and-stop-finish",
    ),
    pytest.param(
        [calls(frag(None, "c1", "Bash", '{"a":')), calls(frag(None, args="1}")),
         calls(frag(None, "c2", "Read", "{}")), finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, '{"a":'), ("input_json", 0, "1}"),
         ("stop", 0), ("tool", 1, "c2", "Read"), ("input_json", 1, "{}"), ("stop", 1),
         ("end", "tool_use", None)],
        id="no-index-keyed-on-id",
    ),
    pytest.param(
        [calls(frag(0, "c1", "Bash", {"command": "ls"})), finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, '{"command": "ls"}'), ("stop", 0),
         ("end", "tool_use", None)],
        id="object-typed-arguments",
    ),
    pytest.param(
        [calls(frag(0, "c1", "Bash", '{"co')), calls(frag(0, args='{"command": "ls"')),
         calls(frag(0, args='{"command": "ls"}')), finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, '{"co'),
         ("input_json", 0, 'mmand": "ls"'), ("input_json", 0, "}"), ("stop", 0),
         ("end", "tool_use", None)],
        id="cumulative-snapshots",
    ),
    pytest.param(
        [calls(frag(0, "c1", "Bash", "")), finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, "{}"), ("stop", 0),
         ("end", "tool_use", None)],
        id="empty-arguments",
    ),
    pytest.param(
        [calls(frag(0, "c1", "Bash", '"{\\"a\\": ')), calls(frag(0, args='1}"')),
         finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, '{"a": 1}'), ("stop", 0),
         ("end", "tool_use", None)],
        id="double-encoded-arguments",
    ),
    pytest.param(
        [calls(frag(0, "functions.Bash:0", NAMES.to_openai("mcp.do"), "{}")),
         finish("tool_calls")],
        [("tool", 0, "functions_Bash_0", "mcp.do"), ("input_json", 0, "{}"), ("stop", 0),
         ("end", "tool_use", None)],
        id="id-sanitised-name-mapped-back",
    ),
    pytest.param(
        [calls(frag(0, "c1", "Bash", "{}")), text("after"), finish("tool_calls")],
        [("tool", 0, "c1", "Bash"), ("input_json", 0, "{}"), ("stop", 0),
         ("text", 1), ("text", 1, "after"), ("stop", 1), ("end", "tool_use", None)],
        id="text-after-tool-comes-after",
    ),
    pytest.param(
        [text("partial"), calls(frag(0, "c1", "Bash", '{"a":')), finish("length")],
        [("text", 0), ("text", 0, "partial"), ("stop", 0), ("tool", 1, "c1", "Bash"),
         ("input_json", 1, '{"a":'),
         ("input_json", 1, 'null, "_unparsed_arguments": "{\\"a\\":"}'), ("stop", 1),
         ("end", "max_tokens", None)],
        id="length-wins",
    ),
    pytest.param(
        [text("x"), finish("stop", stop_reason="STOP")],
        [("text", 0), ("text", 0, "x"), ("stop", 0), ("end", "stop_sequence", "STOP")],
        id="vllm-stop-reason",
    ),
    pytest.param(
        [text("xSTOP"), finish("stop")],
        [("text", 0), ("text", 0, "x"), ("stop", 0), ("end", "stop_sequence", "STOP")],
        id="text-ends-with-stop-sequence",
    ),
    pytest.param(
        [text("x"), finish("content_filter")],
        [("text", 0), ("text", 0, "x"), ("stop", 0), ("end", "refusal", None)],
        id="content-filter",
    ),
    pytest.param([], [END], id="empty-stream"),
]


@pytest.mark.parametrize(("chunks", "expected"), CASES)
def test_event_sequence(chunks: list[dict[str, Any]], expected: list[tuple]) -> None:
    events, _ = run(chunks, stop=["STOP"])
    assert compact(events) == expected
    validate(events)


def test_bash_tool_use_matches_captured_shape() -> None:
    """The full frames of REPORT.md §5.1 / sse-examples/tool_use.sse."""
    events, _ = run([text("Callin"), text("g Bash."),
                     calls(frag(0, "toolu_fb7c", "Bash", '{"command": "echo hello", "')),
                     calls(frag(0, args='description": "Print hello"}')),
                     finish("tool_calls"), usage(11, 20)])
    assert events == [
        ("message_start", {"type": "message_start", "message": {
            "id": MID, "type": "message", "role": "assistant", "model": "claude-x",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 42, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Callin"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "g Bash."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_fb7c", "name": "Bash", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": '{"command": "echo hello", "'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": 'description": "Print hello"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"input_tokens": 11, "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 0, "output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    message = validate(events)
    assert message["content"][1]["input"] == {"command": "echo hello",
                                              "description": "Print hello"}


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param([text("a"), finish(), usage(100, 7, cached=60)],
                     {"input_tokens": 40, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 60, "output_tokens": 7},
                     id="usage-trailer-after-finish-net-of-cache"),
        pytest.param([text("a"), usage(10, 1), text("b"), finish(), usage(12, 3)],
                     {"input_tokens": 12, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 3},
                     id="last-usage-wins"),
        pytest.param([text("12345678"), finish()],
                     {"input_tokens": 42, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 2},
                     id="no-usage-falls-back-to-estimates"),
    ],
)
def test_usage(chunks: list[dict[str, Any]], expected: dict[str, int]) -> None:
    events, t = run(chunks)
    assert events[-2][1]["usage"] == expected == t.usage
    assert validate(events)["usage"]["output_tokens"] == expected["output_tokens"]


def test_first_index_offsets_every_block() -> None:
    events, t = run([reason("r"), text("t"), calls(frag(0, "c", "Bash", "{}"))], first_index=3)
    assert [p["index"] for n, p in events if n == "content_block_start"] == [3, 4, 5]
    assert t.next_index == 6
    # composed after three blocks produced elsewhere (e.g. web-search blocks)
    earlier: list[Event] = []
    for i in range(3):
        earlier += [("content_block_start", {"type": "content_block_start", "index": i,
                                             "content_block": {"type": "text", "text": ""}}),
                    ("content_block_delta", {"type": "content_block_delta", "index": i,
                                             "delta": {"type": "text_delta", "text": "x"}}),
                    ("content_block_stop", {"type": "content_block_stop", "index": i})]
    message = validate(events[:1] + earlier + events[1:])
    kinds = [b["type"] for b in message["content"]]
    assert kinds == ["text"] * 3 + ["thinking", "text", "tool_use"]


def test_stop_reason_decided_at_close() -> None:
    t = StreamTranslator(model="m", message_id=MID, tool_names=NAMES, think_probe_chars=0)
    t.start_events()
    t.feed(calls(frag(0, "c1", "Bash", "{}")))
    t.feed(finish("stop"))
    assert t.stop_reason is None
    closing = t.close()
    assert t.stop_reason == "tool_use" and t.usage is not None
    assert [n for n, _ in closing] == ["content_block_stop"]
    assert [n for n, _ in t.end_events()] == ["message_delta", "message_stop"]
    assert t.close() == []


def test_blocks_record_final_content() -> None:
    _, t = run([reason("r"), text("hi"), calls(frag(0, "c1", "Bash", '{"a": 1}'))])
    assert t.blocks == [
        {"type": "thinking", "thinking": "r", "signature": SIG("r")},
        {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "c1", "name": "Bash", "input": {"a": 1}},
    ]


# -- tool arguments that are not JSON (items 34, 39) -----------------------------------------
def bash(*pieces: str, finish_: str = "tool_calls") -> list[dict[str, Any]]:
    """One Bash call whose arguments arrive in `pieces`."""
    first, *rest = pieces
    return ([calls(frag(0, "c1", "Bash", first))] + [calls(frag(0, args=p)) for p in rest]
            + [finish(finish_)])


UNPARSED = INVALID_ARGUMENTS_KEY


@pytest.mark.parametrize(
    ("chunks", "deltas", "expected"),
    [
        pytest.param(bash("{'command': 'ls'}"), ["{", '"command": "ls"}'], {"command": "ls"},
                     id="single-quoted-qwen3-coder"),
        pytest.param(bash("{'comm", "and': 'ls'}"), ["{", '"command": "ls"}'],
                     {"command": "ls"}, id="single-quoted-split"),
        pytest.param(bash('{"a": 1,', ' "b": True', "}"), ['{"a": 1', ', "b": ', "true}"],
                     {"a": 1, "b": True}, id="python-literal-after-a-held-comma"),
        pytest.param(bash('{"a": 1,', ' "b": 2,', "}"), ['{"a": 1', ', "b": 2', "}"],
                     {"a": 1, "b": 2}, id="trailing-comma-never-sent"),
        pytest.param(bash('{"command": "ls"'), ['{"command": "ls"', "}"], {"command": "ls"},
                     id="missing-closing-brace"),
        pytest.param(bash('{"a": 1}', "}"), ['{"a": 1}'], {"a": 1}, id="extra-closing-brace"),
        pytest.param(bash('{"p": "C:\\', '\\dir"}'), ['{"p": "C:', '\\\\dir"}'],
                     {"p": "C:\\dir"}, id="escape-held-until-complete"),
        pytest.param(bash('{"p": "C:\\', 'q"}'), ['{"p": "C:', '\\\\q"}'], {"p": "C:\\q"},
                     id="invalid-escape-repaired"),
        pytest.param(bash("[1, 2]"), ['{"_unparsed_arguments": "[1, 2]"}'],
                     {UNPARSED: "[1, 2]"}, id="not-an-object"),
        pytest.param(bash("\"{'a': 1}\""), ['{"a": 1}'], {"a": 1},
                     id="double-encoded-single-quotes"),
        pytest.param(bash('{"command": "rm -rf /tmp/x', finish_="length"),
                     ['{"command": "rm -rf /tmp/x',
                      '", "_unparsed_arguments": "{\\"command\\": \\"rm -rf /tmp/x"}'],
                     {"command": "rm -rf /tmp/x", UNPARSED: '{"command": "rm -rf /tmp/x'},
                     id="cut-off-by-max-tokens-kept-visible"),
        pytest.param(bash('{"a": 1, "b": NaN}'),
                     ['{"a": 1, "b": ', 'null, "_unparsed_arguments": "{\\"a\\": 1, '
                      '\\"b\\": NaN}"}'],
                     {"a": 1, "b": None, UNPARSED: '{"a": 1, "b": NaN}'}, id="nan"),
    ],
)
def test_invalid_tool_arguments_still_form_one_object(
        chunks: list[dict[str, Any]], deltas: list[str], expected: dict[str, Any]) -> None:
    events, t = run(chunks)
    assert [e[2] for e in compact(events) if e[0] == "input_json"] == deltas
    message = validate(events)  # the SDK's accumulator parses the concatenation
    assert message["content"][-1]["input"] == expected == t.blocks[-1]["input"]


def test_invalid_call_does_not_hold_up_the_next_one_forever() -> None:
    events, _ = run([calls(frag(0, "c1", "Bash", "{'a': 1}")),
                     calls(frag(1, "c2", "Read", '{"p": 2}')), finish("tool_calls")])
    assert compact(events) == [
        ("tool", 0, "c1", "Bash"), ("input_json", 0, "{"), ("input_json", 0, '"a": 1}'),
        ("stop", 0), ("tool", 1, "c2", "Read"), ("input_json", 1, '{"p": 2}'), ("stop", 1),
        ("end", "tool_use", None)]
    message = validate(events)
    assert [b["input"] for b in message["content"]] == [{"a": 1}, {"p": 2}]


# -- stop sequences the backend left in the text (item 40) ----------------------------------
STOPS = ["STOP", "\n\nHuman:"]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param([text("hello "), text("STOP"), finish()],
                     [("text", 0), ("text", 0, "hello "), ("stop", 0),
                      ("end", "stop_sequence", "STOP")], id="in-the-last-chunk"),
        pytest.param([text("hello ST"), text("O"), text("P"), finish()],
                     [("text", 0), ("text", 0, "hello "), ("stop", 0),
                      ("end", "stop_sequence", "STOP")], id="split-across-chunks"),
        pytest.param([text("a\n\nHum"), text("an:"), finish()],
                     [("text", 0), ("text", 0, "a"), ("stop", 0),
                      ("end", "stop_sequence", "\n\nHuman:")], id="second-stop-sequence"),
        pytest.param([text("a ST"), text("AY"), finish()],
                     [("text", 0), ("text", 0, "a "), ("text", 0, "STAY"), ("stop", 0), END],
                     id="held-start-released-when-it-is-not-one"),
        pytest.param([text("a ST"), finish()],
                     [("text", 0), ("text", 0, "a "), ("text", 0, "ST"), ("stop", 0), END],
                     id="start-of-one-at-the-end-is-text"),
        pytest.param([text("ST"), text("OP"), finish()], [("end", "stop_sequence", "STOP")],
                     id="nothing-else-no-empty-block"),
        pytest.param([text("a STOP b"), finish()],
                     [("text", 0), ("text", 0, "a STOP b"), ("stop", 0), END],
                     id="in-the-middle-kept"),
        pytest.param([text("run ST"), calls(frag(0, "c1", "Bash", "{}")), finish("tool_calls")],
                     [("text", 0), ("text", 0, "run "), ("text", 0, "ST"), ("stop", 0),
                      ("tool", 1, "c1", "Bash"), ("input_json", 1, "{}"), ("stop", 1),
                      ("end", "tool_use", None)], id="held-text-goes-out-before-a-tool"),
    ],
)
def test_stop_sequence_cut_from_text(chunks: list[dict[str, Any]], expected: list[tuple]
                                     ) -> None:
    events, _ = run(chunks, stop=STOPS)
    assert compact(events) == expected
    validate(events)


@pytest.mark.parametrize("content", ["hello STOP", "STOP", "a STOP b", "hello ST", "STSTOP",
                                     "x\n\nHuman:", "SSTOP", "\n\nHu"])
def test_streamed_stop_sequence_agrees_with_non_streaming(content: str) -> None:
    """Item 39: the same answer, streamed a character at a time or not streamed at all."""
    events, _ = run([text(c) for c in content] + [finish()], stop=STOPS)
    streamed = validate(events)
    whole = to_anthropic_message(
        {"choices": [{"index": 0, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": content}}]},
        model="claude-x", message_id=MID, tool_names=NAMES, stop_sequences=STOPS)
    assert streamed["content"] == whole["content"]
    assert (streamed["stop_reason"], streamed["stop_sequence"]) == (
        whole["stop_reason"], whole["stop_sequence"])


# -- the <think> probe (closing-tag-only case, item 30) -------------------------------------
def test_closing_tag_only_becomes_thinking_while_probing() -> None:
    events, _ = run([text("I should "), text("greet.</thi"), text("nk>\n\nHello!"), finish()],
                    think_probe_chars=200)
    assert compact(events) == [
        ("thinking", 0), ("thinking", 0, "I should greet."),
        ("signature", 0, SIG("I should greet.")), ("stop", 0),
        ("text", 1), ("text", 1, "Hello!"), ("stop", 1), END]
    validate(events)


def test_probe_holds_short_text_then_releases() -> None:
    t = StreamTranslator(model="m", message_id=MID, tool_names=NAMES, think_probe_chars=10)
    t.start_events()
    assert t.feed(text("Hello")) == []
    released = compact(t.feed(text(" world")))
    assert released == [("text", 0), ("text", 0, "Hello world")]


def test_probe_released_by_tool_call() -> None:
    events, _ = run([text("Checking."), calls(frag(0, "c1", "Bash", "{}"))],
                    think_probe_chars=500)
    assert compact(events)[:3] == [("text", 0), ("text", 0, "Checking."), ("stop", 0)]


def test_probe_pings_while_holding_content() -> None:
    t = StreamTranslator(model="m", message_id=MID, tool_names=NAMES, think_probe_chars=10**6)
    t.start_events()
    out = [e for _ in range(64) for e in t.feed(text("x"))]
    assert [n for n, _ in out] == ["ping", "ping"]


def test_probe_off_streams_immediately() -> None:
    t = StreamTranslator(model="m", message_id=MID, tool_names=NAMES, think_probe_chars=0)
    t.start_events()
    assert compact(t.feed(text("Hi"))) == [("text", 0), ("text", 0, "Hi")]


def test_stray_closing_tag_after_probe_is_removed() -> None:
    events, _ = run([text("long reasoning"), text("</think>answer"), finish()],
                    think_probe_chars=5)
    message = validate(events)
    assert message["content"] == [{"type": "text", "text": "long reasoninganswer"}]


def test_thinking_open_flag_starts_in_thinking() -> None:
    events, _ = run([text("plan</think>go"), finish()], thinking_open=True)
    assert [b["type"] for b in validate(events)["content"]] == ["thinking", "text"]


# -- errors ---------------------------------------------------------------------------------
def test_error_chunk_raises() -> None:
    t = StreamTranslator(model="m", message_id=MID, tool_names=NAMES)
    t.start_events()
    with pytest.raises(UpstreamUnavailable, match="out of memory"):
        t.feed({"error": {"message": "CUDA out of memory", "code": 500}})


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("off", 0, id="thinking-off-no-probe"),
        pytest.param("medium", DEFAULT_PROBE_CHARS, id="thinking-on"),
        pytest.param(None, DEFAULT_PROBE_CHARS, id="unspecified"),
    ],
)
def test_think_probe_chars(mode: str | None, expected: int) -> None:
    assert think_probe_chars(mode) == expected
