"""Tool calls written as text (checklist item 23): the parser, the stream filter in front of
the stream translator, the non-stream response path, and the warning when recovery is off."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from continuum_cli.config.models import Backend
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.response import to_anthropic_message
from continuum_cli.translate.stream import StreamTranslator
from continuum_cli.translate.tool_text import (
    TextToolCall,
    ToolTextPolicy,
    ToolTextRecovery,
    offered_names,
    recover_tool_calls,
)

OFFERED = frozenset({"Bash", "Read"})
BASH_LS = '{"name": "Bash", "arguments": {"command": "ls"}}'
TAGGED_LS = f"<tool_call>\n{BASH_LS}\n</tool_call>"
BODY = {"tools": [{"type": "function", "function": {"name": n, "parameters": {}}}
                  for n in sorted(OFFERED)]}


def backend(recover: bool, type_: str = "vllm") -> Backend:
    return Backend(name="qwen-box", type=type_, url="http://127.0.0.1:9",
                   recover_tool_calls=recover)


def ls_call(key: str = "command") -> TextToolCall:
    return TextToolCall("Bash", json.dumps({key: "ls"}))


# -- the parser ----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "remaining", "calls"), [
    pytest.param(TAGGED_LS, "", [ls_call()], id="hermes-block"),
    pytest.param(f"I'll list the files.\n{TAGGED_LS}", "I'll list the files.", [ls_call()],
                 id="text-then-block"),
    pytest.param(TAGGED_LS + '\n<tool_call>{"name": "Read", "arguments": '
                 '{"file_path": "/a"}}</tool_call>', "",
                 [ls_call(), TextToolCall("Read", '{"file_path": "/a"}')], id="two-blocks"),
    pytest.param(f"<tool_call>{BASH_LS}", "", [ls_call()], id="unclosed-last-block"),
    pytest.param('<tool_call>{"name": "Bash", "arguments": "{\\"command\\": \\"ls\\"}"}'
                 '</tool_call>', "", [TextToolCall("Bash", '{"command": "ls"}')],
                 id="string-arguments-kept-as-json-text"),
    pytest.param('<tool_call>{"name": "Bash"}</tool_call>', "",
                 [TextToolCall("Bash", "{}")], id="block-without-arguments"),
    pytest.param('<tool_call>{"name": "Glob", "arguments": {}}</tool_call>', "",
                 [TextToolCall("Glob", "{}")], id="block-with-unoffered-name-still-a-call"),
    pytest.param(f"{TAGGED_LS}<tool_call>{{broken</tool_call>", None, [],
                 id="one-malformed-block-keeps-all-text"),
    pytest.param("<tool_call>[1, 2]</tool_call>", None, [], id="block-not-an-object"),
    pytest.param(f"  {BASH_LS}\n", "", [ls_call()], id="bare-arguments"),
    pytest.param('{"name": "Bash", "parameters": {"command": "ls"}}', "", [ls_call()],
                 id="bare-parameters"),
    pytest.param('{"name": "my-app", "arguments": {}}', None, [], id="bare-unoffered-name"),
    pytest.param('{"name": "Bash"}', None, [], id="bare-without-arguments"),
    pytest.param('{"name": "Bash", "arguments": {}, "version": "1.0"}', None, [],
                 id="bare-with-other-keys"),
    pytest.param(f"Run this: {BASH_LS}", None, [], id="bare-inside-prose"),
    pytest.param("Just an answer.", None, [], id="plain-text"),
    pytest.param("", None, [], id="empty"),
])
def test_recover_tool_calls(text: str, remaining: str | None, calls: list[TextToolCall]
                            ) -> None:
    got_text, got_calls = recover_tool_calls(text, OFFERED)
    assert got_calls == calls
    assert got_text == (text if remaining is None else remaining)


def test_offered_names_reads_the_openai_tools() -> None:
    assert offered_names(BODY) == OFFERED
    assert offered_names({}) == frozenset()
    assert offered_names({"tools": [{"type": "function"}, "junk"]}) == frozenset()


# -- the stream filter ---------------------------------------------------------------------
def content(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def finish(reason: str = "stop") -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}}


def run_filter(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    """Output chunks, and how many came out after each input chunk (then after finish)."""
    recovery = ToolTextRecovery(OFFERED)
    out: list[dict[str, Any]] = []
    counts = []
    for c in chunks:
        got = recovery.feed(c)
        counts.append(len(got))
        out += got
    got = recovery.finish()
    counts.append(len(got))
    return out + got, counts


def pieces(text: str, size: int) -> list[dict[str, Any]]:
    return [content(text[i:i + size]) for i in range(0, len(text), size)]


@pytest.mark.parametrize("chunks", [
    pytest.param([content("Hello"), content(" there"), finish()], id="text"),
    pytest.param([{"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
                  content("Hi"), finish(), USAGE], id="role-and-usage"),
    pytest.param(pieces('{"version": 2, "name": "x"}', 3) + [finish()], id="other-json"),
    pytest.param(pieces('{"name": "my-app", "arguments": {}}', 4) + [finish()],
                 id="json-with-unoffered-name"),
    pytest.param(pieces("<tool_call>{not json</tool_call>", 5) + [finish()],
                 id="malformed-block"),
    pytest.param(pieces("a <b>bold</b> text", 4) + [finish()], id="no-piece-ends-in-a-tag"),
    pytest.param([content("<tool"), {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "function": {"name": "Bash", "arguments": "{}"}}]}}]},
        finish("tool_calls")], id="real-tool-calls-step-aside"),
])
def test_filter_passes_everything_else_unchanged(chunks: list[dict[str, Any]]) -> None:
    out, _ = run_filter(chunks)
    assert out == chunks


def joined(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"])


@pytest.mark.parametrize(("text", "size"), [
    pytest.param("<b>bold</b> text", 2, id="other-tag-first"),
    pytest.param("x <tool_cal! and <tool_c", 2, id="partial-tags-in-text"),
    pytest.param("if a<b then <tool", 4, id="tag-start-at-the-end"),
    pytest.param("   \n  plain", 1, id="blank-lead"),
])
def test_filter_keeps_text_that_only_looks_like_a_tag(text: str, size: int) -> None:
    chunks = pieces(text, size) + [finish()]
    out, _ = run_filter(chunks)
    assert joined(out) == text
    assert out[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any("tool_calls" in c["choices"][0]["delta"] for c in out)


def test_filter_holds_a_possible_tag_start_in_text() -> None:
    _, counts = run_filter([content("Hi"), content(" <tool"), content("box>"), finish()])
    assert counts == [1, 1, 1, 1, 0]
    out, _ = run_filter([content("Hi"), content(" <tool"), content("box>"), finish()])
    assert [c["choices"][0]["delta"].get("content") for c in out] == ["Hi", " ", "<toolbox>",
                                                                        None]


def test_filter_passes_plain_text_without_holding() -> None:
    _, counts = run_filter([content("Hello"), content(" there"), finish()])
    assert counts == [1, 1, 1, 0]


def test_filter_holds_until_it_can_tell() -> None:
    _, counts = run_filter([content("<to"), content("ol"), content("X>"), finish()])
    assert counts == [0, 0, 3, 1, 0]


@pytest.mark.parametrize("size", [1, 3, 7, 1000], ids=lambda s: f"pieces-of-{s}")
@pytest.mark.parametrize("text", [
    pytest.param(TAGGED_LS, id="tagged"),
    pytest.param(f"\n\n{BASH_LS}", id="bare-after-blank-lines"),
    pytest.param('{"arguments": {"command": "ls"}, "name": "Bash"}', id="arguments-first"),
])
def test_filter_turns_text_calls_into_tool_call_deltas(text: str, size: int) -> None:
    chunks = pieces(text, size) + [finish(), USAGE]
    out, _ = run_filter(chunks)
    assert all("content" not in c["choices"][0]["delta"] for c in out if c["choices"])
    calls = [tc for c in out if c["choices"] for tc in c["choices"][0]["delta"].get(
        "tool_calls", [])]
    assert calls == [{"index": 0, "type": "function",
                      "function": {"name": "Bash", "arguments": '{"command": "ls"}'}}]
    assert out[-2]["choices"][0]["finish_reason"] == "stop"  # still last before usage
    assert out[-1] == USAGE


@pytest.mark.parametrize("size", [1, 4, 1000], ids=lambda s: f"pieces-of-{s}")
def test_filter_finds_a_block_after_text(size: int) -> None:
    out, _ = run_filter(pieces(f"Sure, listing: {TAGGED_LS}\nDone.", size) + [finish()])
    assert joined(out) == "Sure, listing: Done."
    calls = [tc["function"]["name"] for c in out
             for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls == ["Bash"] and out[-1] == finish()


def test_filter_decides_at_the_end_of_a_stream_without_finish_reason() -> None:
    recovery = ToolTextRecovery(OFFERED)
    assert recovery.feed(content(TAGGED_LS)) == []
    out = recovery.finish()
    assert [c["choices"][0]["delta"].get("tool_calls", [{}])[0].get("function", {}).get("name")
            for c in out] == [None, "Bash"]
    assert recovery.recovered == 1 and recovery.finish() == []


def stream_blocks(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """The filter in front of the real stream translator: the content a client assembles."""
    recovery = ToolTextRecovery(OFFERED)
    translator = StreamTranslator(model="m", message_id="msg_tt",
                                  tool_names=ToolNameMap.build(sorted(OFFERED)))
    translator.start_events()
    for c in chunks:
        for out in recovery.feed(c):
            translator.feed(out)
    for out in recovery.finish():
        translator.feed(out)
    translator.finish()
    return translator.blocks, translator.stop_reason


def test_stream_translator_emits_tool_use_for_recovered_calls() -> None:
    text = f"{TAGGED_LS}\nDone soon."
    blocks, stop = stream_blocks(pieces(text, 5) + [finish()])
    assert stop == "tool_use"
    assert [b["type"] for b in blocks] == ["text", "tool_use"]
    assert blocks[0]["text"] == "Done soon."
    assert blocks[1]["name"] == "Bash" and blocks[1]["id"].startswith("toolu_")


def test_stream_translator_keeps_text_when_nothing_is_recovered() -> None:
    blocks, stop = stream_blocks(pieces("<tool_call>{oops</tool_call>", 4) + [finish()])
    assert stop == "end_turn"
    assert blocks == [{"type": "text", "text": "<tool_call>{oops</tool_call>"}]


@pytest.mark.parametrize(("recover", "tools", "wanted"), [
    pytest.param(True, BODY, True, id="opted-in-with-tools"),
    pytest.param(False, BODY, False, id="not-opted-in"),
    pytest.param(True, {}, False, id="no-tools-offered"),
])
def test_filter_only_when_opted_in_and_tools_offered(recover: bool, tools: dict[str, Any],
                                                      wanted: bool) -> None:
    assert (ToolTextRecovery.for_request(backend(recover), tools) is not None) is wanted


# -- the non-stream response path ----------------------------------------------------------
def completion(text: str, **message: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text, **message}}]}


def answer(text: str, policy: ToolTextPolicy | None, **message: Any) -> dict[str, Any]:
    return to_anthropic_message(completion(text, **message), model="claude-sonnet-4-5",
                                message_id="msg_rt", tool_names=ToolNameMap.build(OFFERED),
                                stop_sequences=None, tool_text=policy)


def test_response_recovers_calls_when_enabled() -> None:
    msg = answer(f"Listing.\n{TAGGED_LS}", ToolTextPolicy.for_request(backend(True), BODY))
    assert [b["type"] for b in msg["content"]] == ["text", "tool_use"]
    assert msg["content"][0]["text"] == "Listing."
    use = msg["content"][1]
    assert use["name"] == "Bash" and use["input"] == {"command": "ls"}
    assert use["id"].startswith("toolu_")
    assert msg["stop_reason"] == "tool_use"


def test_response_recovers_calls_with_mapped_names() -> None:
    names = ToolNameMap.build(["mcp__fs.read"])
    safe = names.to_openai("mcp__fs.read")
    body = {"tools": [{"type": "function", "function": {"name": safe}}]}
    msg = to_anthropic_message(
        completion(f'{{"name": "{safe}", "parameters": {{"path": "/"}}}}'),
        model="m", message_id="msg_n", tool_names=names, stop_sequences=None,
        tool_text=ToolTextPolicy.for_request(backend(True), body))
    assert msg["content"][0]["name"] == "mcp__fs.read"


@pytest.mark.parametrize(("policy", "text"), [
    pytest.param(None, TAGGED_LS, id="no-policy-is-todays-behaviour"),
    pytest.param(ToolTextPolicy.for_request(backend(True), {}), TAGGED_LS,
                 id="no-tools-offered"),
    pytest.param(ToolTextPolicy.for_request(backend(True), BODY), "Plain answer.",
                 id="no-call-in-text"),
])
def test_response_keeps_text(policy: ToolTextPolicy | None, text: str) -> None:
    msg = answer(text, policy)
    assert msg["content"] == [{"type": "text", "text": text}]
    assert msg["stop_reason"] == "end_turn"


def test_response_prefers_the_backends_own_tool_calls() -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "Read", "arguments": '{"file_path": "/x"}'}}
    msg = answer(TAGGED_LS, ToolTextPolicy.for_request(backend(True), BODY), tool_calls=[call])
    assert [b["type"] for b in msg["content"]] == ["text", "tool_use"]
    assert msg["content"][1]["name"] == "Read"


@pytest.mark.parametrize(("type_", "fix"), [
    pytest.param("vllm", "--enable-auto-tool-choice --tool-call-parser", id="vllm"),
    pytest.param("llamacpp", "--jinja", id="llamacpp"),
    pytest.param("ollama", "ollama show", id="ollama"),
    pytest.param("generic", "chat template supports tool calls", id="generic"),
])
def test_warning_names_backend_and_fix_when_recovery_is_off(
        caplog: pytest.LogCaptureFixture, type_: str, fix: str) -> None:
    caplog.set_level(logging.WARNING, logger="continuum")
    msg = answer(TAGGED_LS, ToolTextPolicy.for_request(backend(False, type_), BODY))
    assert msg["content"] == [{"type": "text", "text": TAGGED_LS}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "qwen-box" in warnings[0] and fix in warnings[0]
    assert "recover_tool_calls: true" in warnings[0]


def test_no_warning_for_plain_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="continuum")
    answer("Hello.", ToolTextPolicy.for_request(backend(False), BODY))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(None, False, id="default-off"),
    pytest.param(True, True, id="on"),
])
def test_recover_tool_calls_config_field(value: bool | None, expected: bool) -> None:
    extra = {} if value is None else {"recover_tool_calls": value}
    parsed = Backend.model_validate({"name": "b", "type": "vllm", "url": "http://x", **extra})
    assert parsed.recover_tool_calls is expected
