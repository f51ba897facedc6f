"""Anthropic request -> OpenAI request (translation-checklist §B–F)."""

from __future__ import annotations

from typing import Any

import pytest

from continuum_cli.backends.profiles import PROFILES
from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.history import INTERRUPTED
from continuum_cli.translate.names import ToolNameMap, sanitize_name
from continuum_cli.translate.request import to_openai_request
from continuum_cli.translate.server_blocks import server_blocks_to_openai
from continuum_cli.wire.anthropic import ToolDef, parse_messages_request

BILLING = "x-anthropic-billing-header: cc_version=2.1.332.f1d; cc_entrypoint=cli; cch=1a2b3;"
CC = {"type": "ephemeral"}


def translate(profile: str = "vllm", **fields: Any) -> dict[str, Any]:
    data = {"model": "claude-x", "max_tokens": 100, **fields}
    data.setdefault("messages", [{"role": "user", "content": "hi"}])
    req = parse_messages_request(data)
    return to_openai_request(req, upstream_model="up", profile=PROFILES[profile]).body


def msgs(*messages: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    return translate(messages=list(messages), **fields)["messages"]


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


def tool_use(id_: str, name: str = "Bash", input_: Any = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": input_ or {"command": "ls"}}


def result(id_: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": id_, "content": content, **extra}


def call(id_: str, name: str = "Bash", args: str = '{"command": "ls"}') -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}


PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
PNG_PART = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


# -- system prompt (items 5, 6, 15) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("system", "expected"),
    [
        pytest.param("Be brief.", "Be brief.", id="string"),
        pytest.param([text("A", cache_control=CC), text("B")], "A\n\nB", id="blocks-joined"),
        pytest.param([text(BILLING), text("A", cache_control=CC)], "A", id="billing-block-dropped"),
        pytest.param(f"{BILLING}\nA", "A", id="billing-line-in-string"),
        pytest.param([text(BILLING)], None, id="only-billing-no-system"),
        pytest.param([], None, id="empty"),
    ],
)
def test_system_prompt(system: Any, expected: str | None) -> None:
    out = msgs(user("hi"), system=system)
    if expected is None:
        assert out == [{"role": "user", "content": "hi"}]
    else:
        assert out[0] == {"role": "system", "content": expected}
        assert [m["role"] for m in out].count("system") == 1


def test_billing_header_variation_keeps_prefix_byte_stable() -> None:
    a = translate(system=[text(BILLING.replace("1a2b3", "fffff")), text("P")])
    b = translate(system=[text(BILLING), text("P")])
    assert a == b


# -- message structure (items 2, 7, 8, 9, 10, 12, 14, 21, 22) -------------------------------
STRUCTURE = [
    pytest.param(
        [user([text("a"), text("  "), text("b")])],
        [{"role": "user", "content": "a\n\nb"}], id="blank-text-dropped-and-joined",
    ),
    pytest.param(
        [user("a"), user("b"), assistant("c"), assistant([text("d")])],
        [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c\n\nd"}],
        id="coalesce-same-role",
    ),
    pytest.param(
        [user("q"), {"role": "system", "content": "env"}],
        [{"role": "user", "content": "q\n\n<system-reminder>\nenv\n</system-reminder>"}],
        id="role-system-becomes-user-text",
    ),
    pytest.param(
        [user("q"), {"role": "system", "content": []}],
        [{"role": "user", "content": "q"}], id="empty-role-system-dropped",
    ),
    pytest.param(
        [user("q"), assistant([tool_use("t1")]), {"role": "system", "content": "env"},
         user([result("t1")])],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": None, "tool_calls": [call("t1")]},
         {"role": "tool", "tool_call_id": "t1", "content": "ok"},
         {"role": "user", "content": "<system-reminder>\nenv\n</system-reminder>"}],
        id="role-system-placed-after-tool-results",
    ),
    pytest.param(
        [user("q"), assistant([text("x"), tool_use("t1"), tool_use("t2")]),
         user([text("then"), result("t2", "two"), result("t1", "one")])],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": "x", "tool_calls": [call("t1"), call("t2")]},
         {"role": "tool", "tool_call_id": "t1", "content": "one"},
         {"role": "tool", "tool_call_id": "t2", "content": "two"},
         {"role": "user", "content": "then"}],
        id="tool-results-in-call-order-then-user-text",
    ),
    pytest.param(
        [user("q"), assistant([tool_use("t1"), tool_use("t2")]), user([result("t2", "two")])],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": None, "tool_calls": [call("t1"), call("t2")]},
         {"role": "tool", "tool_call_id": "t1", "content": INTERRUPTED},
         {"role": "tool", "tool_call_id": "t2", "content": "two"}],
        id="unpaired-call-gets-synthetic-result",
    ),
    pytest.param(
        [user("q"), assistant([tool_use("t1")]), user("esc pressed")],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": None, "tool_calls": [call("t1")]},
         {"role": "tool", "tool_call_id": "t1", "content": INTERRUPTED},
         {"role": "user", "content": "esc pressed"}],
        id="interrupted-call-then-user-text",
    ),
    pytest.param(
        [user("q"), assistant([tool_use("t1")]), assistant("more")],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": None, "tool_calls": [call("t1")]},
         {"role": "tool", "tool_call_id": "t1", "content": INTERRUPTED},
         {"role": "assistant", "content": "more"}],
        id="unpaired-call-before-next-assistant",
    ),
    pytest.param(
        [user([result("gone", "late")])],
        [{"role": "user", "content": "Result of tool call gone:\nlate"}],
        id="orphan-result-becomes-user-text",
    ),
    pytest.param(
        [user("q"), assistant([tool_use("t1")]),
         user([result("t1", [text("part1"), text("part2")]), result("t1", "part3")])],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": None, "tool_calls": [call("t1")]},
         {"role": "tool", "tool_call_id": "t1", "content": "part1\npart2\npart3"}],
        id="split-results-joined",
    ),
    pytest.param(
        [user("q"), assistant([tool_use("t1")]), user([result("t1", "boom", is_error=True)])],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": None, "tool_calls": [call("t1")]},
         {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"}],
        id="is-error-kept-in-text",
    ),
    pytest.param(
        [user("q"), assistant([tool_use("t1")]), user([result("t1", [])])],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": None, "tool_calls": [call("t1")]},
         {"role": "tool", "tool_call_id": "t1", "content": "(no output)"}],
        id="empty-result-placeholder",
    ),
    pytest.param(
        [user("q"), assistant([tool_use("t1", "ToolSearch", {"query": "select:W"})]),
         user([result("t1", [{"type": "tool_reference", "tool_name": "W"}]),
               text("Tool loaded.")])],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": None,
          "tool_calls": [call("t1", "ToolSearch", '{"query": "select:W"}')]},
         {"role": "tool", "tool_call_id": "t1", "content": "Tool loaded: W"},
         {"role": "user", "content": "Tool loaded."}],
        id="tool-reference-as-text",
    ),
    pytest.param(
        [user("q"), assistant([{"type": "thinking", "thinking": "hmm", "signature": "s"},
                               {"type": "redacted_thinking", "data": "xx"}, text("a"),
                               tool_use("t1")]),
         user([result("t1")])],
        [{"role": "user", "content": "q"},
         {"role": "assistant", "content": "a", "reasoning_content": "hmm",
          "tool_calls": [call("t1")]},
         {"role": "tool", "tool_call_id": "t1", "content": "ok"}],
        id="thinking-to-reasoning-content",
    ),
    pytest.param(
        [user("q"), assistant([{"type": "thinking", "thinking": "", "signature": "s"}, text("")]),
         user("again")],
        [{"role": "user", "content": "q\n\nagain"}],
        id="empty-assistant-dropped",
    ),
]


@pytest.mark.parametrize(("messages", "expected"), STRUCTURE)
def test_message_structure(messages: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert msgs(*messages) == expected


# -- images and documents (items 11, 12, 13) ------------------------------------------------
@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        pytest.param(
            [user([text("see"), PNG])],
            [{"role": "user", "content": [{"type": "text", "text": "see"}, PNG_PART]}],
            id="base64-image-data-url",
        ),
        pytest.param(
            [user([{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}])],
            [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
            id="url-image",
        ),
        pytest.param(
            [user("q"), assistant([tool_use("t1", "Read"), tool_use("t2", "Read")]),
             user([result("t1", [text("shot"), PNG]), result("t2", [PNG]), text("what?")])],
            [{"role": "user", "content": "q"},
             {"role": "assistant", "content": None,
              "tool_calls": [call("t1", "Read"), call("t2", "Read")]},
             {"role": "tool", "tool_call_id": "t1",
              "content": "shot\n[1 image(s) attached in the next user message]"},
             {"role": "tool", "tool_call_id": "t2",
              "content": "[1 image(s) attached in the next user message]"},
             {"role": "user", "content": [PNG_PART, PNG_PART, {"type": "text", "text": "what?"}]}],
            id="tool-result-images-after-last-tool-message",
        ),
        pytest.param(
            [user([{"type": "document", "title": "notes",
                    "source": {"type": "text", "media_type": "text/plain", "data": "body"}}])],
            [{"role": "user", "content": "Document: notes\n\nbody"}],
            id="text-document",
        ),
        pytest.param(
            [user([{"type": "document",
                    "source": {"type": "base64", "media_type": "text/plain", "data": "aGk="}}])],
            [{"role": "user", "content": "hi"}],
            id="base64-text-document",
        ),
    ],
)
def test_images_and_documents(messages: list[dict[str, Any]], expected: list[dict]) -> None:
    assert msgs(*messages) == expected


@pytest.mark.parametrize(
    ("block", "message"),
    [
        pytest.param({"type": "document", "source": {"type": "base64",
                      "media_type": "application/pdf", "data": "JVBERi0="}},
                     "PDF documents are not supported by this backend", id="pdf"),
        pytest.param(result("t0", [{"type": "document", "source": {
                     "type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]),
                     "PDF documents are not supported by this backend", id="pdf-in-tool-result"),
        pytest.param({"type": "image", "source": {"type": "file", "file_id": "f_1"}},
                     "file_id", id="file-image"),
    ],
)
def test_unsupported_content_is_a_clear_400(block: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        msgs(user([block]))
    assert message in info.value.message


# -- prefill (item 10) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("profile", "flags"),
    [
        pytest.param("vllm", {"continue_final_message": True, "add_generation_prompt": False},
                     id="vllm-continues"),
        pytest.param("llamacpp", {}, id="llamacpp-as-is"),
    ],
)
def test_assistant_prefill(profile: str, flags: dict[str, Any]) -> None:
    body = translate(profile, messages=[user("q"), assistant([text("{")])])
    assert body["messages"][-1] == {"role": "assistant", "content": "{"}
    keys = ("continue_final_message", "add_generation_prompt")
    assert {k: body[k] for k in keys if k in body} == flags


def test_tool_call_ending_is_not_prefill() -> None:
    body = translate(messages=[user("q"), assistant([tool_use("t1")])])
    assert "continue_final_message" not in body
    assert body["messages"][-1]["role"] == "tool"


# -- tools (items 17, 18) -------------------------------------------------------------------
def tools_of(tools: list[dict[str, Any]], **fields: Any) -> list[dict[str, Any]] | None:
    return translate(tools=tools, **fields).get("tools")


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        pytest.param(
            {"name": "Bash", "description": "run", "cache_control": CC, "defer_loading": False,
             "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                              "type": "object", "properties": {"c": {"type": "string"}},
                              "required": ["c"], "additionalProperties": False}},
            {"type": "function", "function": {"name": "Bash", "description": "run", "parameters": {
                "type": "object", "properties": {"c": {"type": "string"}}, "required": ["c"],
                "additionalProperties": False}}},
            id="schema-cleaned",
        ),
        pytest.param(
            {"name": "T", "input_schema": {"type": "object", "required": None}},
            {"type": "function", "function": {"name": "T", "parameters": {
                "type": "object", "required": [], "properties": {}}}},
            id="required-null-and-properties-added",
        ),
        pytest.param(
            {"name": "NoSchema"},
            {"type": "function", "function": {"name": "NoSchema", "parameters": {
                "type": "object", "properties": {}}}},
            id="missing-schema",
        ),
        pytest.param(
            {"type": "custom", "name": "mcp__srv__do.it", "input_schema": {"properties": {}}},
            {"type": "function", "function": {"name": sanitize_name("mcp__srv__do.it"),
                                              "parameters": {"type": "object", "properties": {}}}},
            id="name-sanitised",
        ),
    ],
)
def test_tool_definitions(tool: dict[str, Any], expected: dict[str, Any]) -> None:
    assert tools_of([tool]) == [expected]


@pytest.mark.parametrize(
    ("tools", "messages", "names"),
    [
        pytest.param([{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
                     None, None, id="server-tool-stripped-tools-omitted"),
        pytest.param([{"name": "DeferredToolPlaceholder", "defer_loading": True,
                       "input_schema": {"type": "object"}}, {"name": "Bash"}],
                     None, ["Bash"], id="unreferenced-deferred-tool-hidden"),
        pytest.param([{"name": "WebSearch", "defer_loading": True}],
                     [user("q"), assistant([tool_use("t1", "ToolSearch")]),
                      user([result("t1", [{"type": "tool_reference", "tool_name": "WebSearch"}])])],
                     ["WebSearch"], id="referenced-deferred-tool-exposed"),
        pytest.param([], None, None, id="empty-tools-omitted"),
    ],
)
def test_which_tools_are_sent(tools: list, messages: list | None, names: list[str] | None) -> None:
    extra = {"messages": messages} if messages else {}
    sent = tools_of(tools, **extra)
    assert (None if sent is None else [t["function"]["name"] for t in sent]) == names


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(["a.b", "a_b"], id="collision-with-valid-name"),
        pytest.param(["x" * 80, "x" * 80 + "y"], id="long-names"),
        pytest.param([""], id="empty-name"),
        pytest.param(["ok-name_1"], id="valid-kept"),
    ],
)
def test_tool_name_map_is_reversible(names: list[str]) -> None:
    table = ToolNameMap.build(names)
    backend = [table.to_openai(n) for n in names]
    assert len(set(backend)) == len(names)
    for name, safe in zip(names, backend, strict=True):
        assert 1 <= len(safe) <= 64 and safe.replace("_", "").replace("-", "").isalnum()
        assert table.to_anthropic(safe) == name
    if names == ["ok-name_1"]:
        assert backend == names


def test_history_tool_names_use_the_same_map() -> None:
    body = translate(
        tools=[{"name": "mcp.tool"}],
        messages=[user("q"), assistant([tool_use("t1", "mcp.tool")]), user([result("t1")])],
    )
    sent = body["tools"][0]["function"]["name"]
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == sent != "mcp.tool"


# -- tool_choice (item 19) ------------------------------------------------------------------
BASH = [{"name": "Bash", "input_schema": {"type": "object"}}]


@pytest.mark.parametrize(
    ("profile", "choice", "expected"),
    [
        pytest.param("vllm", {"type": "auto"}, {"tool_choice": "auto"}, id="auto"),
        pytest.param("vllm", {"type": "any"}, {"tool_choice": "required"}, id="any-required"),
        pytest.param("ollama", {"type": "any"}, {"tool_choice": "auto"}, id="any-not-honoured"),
        pytest.param("vllm", {"type": "none"}, {"tool_choice": "none"}, id="none"),
        pytest.param("vllm", {"type": "tool", "name": "Bash"},
                     {"tool_choice": {"type": "function", "function": {"name": "Bash"}}},
                     id="named"),
        pytest.param("vllm", {"type": "tool", "name": "Missing"}, {}, id="named-unknown-dropped"),
        pytest.param("vllm", {"type": "auto", "disable_parallel_tool_use": True},
                     {"tool_choice": "auto", "parallel_tool_calls": False}, id="no-parallel"),
        pytest.param("vllm", None, {}, id="absent"),
    ],
)
def test_tool_choice(profile: str, choice: dict | None, expected: dict[str, Any]) -> None:
    extra = {"tool_choice": choice} if choice else {}
    body = translate(profile, tools=BASH, **extra)
    got = {k: body[k] for k in ("tool_choice", "parallel_tool_calls") if k in body}
    assert got == expected


def test_tool_choice_dropped_without_tools() -> None:
    body = translate(tools=[{"type": "web_search_20250305", "name": "web_search"}],
                     tool_choice={"type": "tool", "name": "web_search"})
    assert "tool_choice" not in body and "tools" not in body


# -- sampling and limits (items 25–28) ------------------------------------------------------
@pytest.mark.parametrize(
    ("profile", "fields", "expected"),
    [
        pytest.param("vllm", {"max_tokens": 128000}, {"max_tokens": 128000}, id="max-tokens"),
        pytest.param("vllm", {"stop_sequences": ["\n\nHuman:", "END"]},
                     {"stop": ["\n\nHuman:", "END"]}, id="stop"),
        pytest.param("vllm", {"stop_sequences": []}, {}, id="empty-stop-omitted"),
        pytest.param("vllm", {"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9},
                     id="temperature-top-p"),
        pytest.param("vllm", {"top_k": 40}, {"top_k": 40}, id="top-k-accepted"),
        pytest.param("generic", {"top_k": 40}, {}, id="top-k-dropped"),
        pytest.param("vllm", {"metadata": {"user_id": "u"}}, {}, id="metadata-not-forwarded"),
    ],
)
def test_sampling(profile: str, fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = translate(profile, **fields)
    keys = ("stop", "temperature", "top_p", "top_k", "metadata", "user")
    got = {k: body[k] for k in keys if k in body}
    if "max_tokens" in expected:
        got["max_tokens"] = body["max_tokens"]
    assert got == expected


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(True, {"stream": True, "stream_options": {"include_usage": True}},
                     id="stream"),
        pytest.param(False, {"stream": False}, id="no-stream"),
    ],
)
def test_stream_flags(stream: bool, expected: dict[str, Any]) -> None:
    body = translate(stream=stream)
    assert {k: body[k] for k in ("stream", "stream_options") if k in body} == expected


# -- thinking knob (item 29) ----------------------------------------------------------------
ADAPTIVE = {"type": "adaptive", "display": "omitted"}
ENABLED = {"type": "enabled", "budget_tokens": 31999}
DISABLED = {"type": "disabled"}


@pytest.mark.parametrize(
    ("profile", "fields", "expected"),
    [
        pytest.param("vllm", {"thinking": ADAPTIVE},
                     {"chat_template_kwargs": {"enable_thinking": True}}, id="ctk-on"),
        pytest.param("vllm", {"thinking": DISABLED},
                     {"chat_template_kwargs": {"enable_thinking": False}}, id="ctk-off"),
        pytest.param("vllm", {}, {}, id="absent-sends-nothing"),
        pytest.param("lmstudio", {"thinking": ADAPTIVE, "output_config": {"effort": "low"}},
                     {"reasoning_effort": "low"}, id="effort-from-output-config"),
        pytest.param("lmstudio", {"thinking": ENABLED}, {"reasoning_effort": "high"},
                     id="effort-from-budget"),
        pytest.param("lmstudio", {"thinking": {"type": "enabled", "budget_tokens": 2000}},
                     {"reasoning_effort": "low"}, id="small-budget"),
        pytest.param("lmstudio", {"thinking": ADAPTIVE, "output_config": {"effort": "max"}},
                     {"reasoning_effort": "high"}, id="max-effort"),
        pytest.param("lmstudio", {"thinking": DISABLED}, {"reasoning_effort": "none"},
                     id="effort-off"),
        pytest.param("ollama", {"thinking": ADAPTIVE}, {"think": True}, id="ollama-on"),
        pytest.param("ollama", {"thinking": DISABLED},
                     {"think": False, "reasoning_effort": "none"}, id="ollama-off"),
        pytest.param("generic", {"thinking": ENABLED}, {}, id="generic-nothing"),
    ],
)
def test_thinking_knob(profile: str, fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = translate(profile, **fields)
    keys = ("chat_template_kwargs", "reasoning_effort", "think", "thinking")
    assert {k: body[k] for k in keys if k in body} == expected


# -- server-tool history (websearch.md §1.8, item 48) ---------------------------------------
SRV = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
       "input": {"query": "shannon"}}
HITS = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
    {"type": "web_search_result", "url": "https://a", "title": "A", "encrypted_content": "e",
     "page_age": "April 30, 2025"},
    {"type": "web_search_result", "url": "https://b", "title": "B", "encrypted_content": "e"}]}
RENDERED = ('Web search results for "shannon":\n\n1. A\n   URL: https://a\n'
            "   Page age: April 30, 2025\n\n2. B\n   URL: https://b")
SRV_CALL = call("srvtoolu_1", "web_search", '{"query": "shannon"}')


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            [text("Searching."), SRV, HITS, text("Born 1916.", citations=[{"url": "https://a"}])],
            [{"role": "assistant", "content": "Searching.", "tool_calls": [SRV_CALL]},
             {"role": "tool", "tool_call_id": "srvtoolu_1", "content": RENDERED},
             {"role": "assistant", "content": "Born 1916."}],
            id="search-pair",
        ),
        pytest.param(
            [SRV, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                   "content": {"type": "web_search_tool_result_error",
                               "error_code": "max_uses_exceeded"}}],
            [{"role": "assistant", "content": None, "tool_calls": [SRV_CALL]},
             {"role": "tool", "tool_call_id": "srvtoolu_1",
              "content": "Web search error: max_uses_exceeded"}],
            id="search-error",
        ),
        pytest.param(
            [text("Let me look."), SRV], [{"role": "assistant", "content": "Let me look."}],
            id="unanswered-server-call-dropped",
        ),
    ],
)
def test_server_blocks_in_history(content: list[dict[str, Any]], expected: list[dict]) -> None:
    assert msgs(user("q"), assistant(content))[1:] == expected
    assert server_blocks_to_openai(content) == expected


def test_server_pair_then_client_call_keeps_adjacency() -> None:
    out = msgs(user("q"), assistant([SRV, HITS, text("now run"), tool_use("t1")]),
               user([result("t1")]))
    assert [m["role"] for m in out] == ["user", "assistant", "tool", "assistant", "tool"]
    assert out[3]["tool_calls"] == [call("t1")] and out[4]["tool_call_id"] == "t1"


def test_snippet_hook_renders_snippets() -> None:
    req = parse_messages_request({"model": "m", "max_tokens": 5,
                                  "messages": [user("q"), assistant([SRV, HITS])]})
    body = to_openai_request(req, upstream_model="u", profile=PROFILES["vllm"],
                             snippet_of=lambda hit: f"snippet of {hit['url']}").body
    assert "   snippet of https://a" in body["messages"][-1]["content"]


def test_cache_control_never_emitted() -> None:
    body = translate(
        system=[text("S", cache_control=CC)],
        tools=[{"name": "Bash", "cache_control": CC, "input_schema": {"type": "object"}}],
        messages=[user([text("q", cache_control=CC)]), assistant([tool_use("t1")]),
                  user([result("t1", "ok", cache_control=CC)])],
    )
    assert "cache_control" not in repr(body)


def test_body_top_level() -> None:
    body = translate(messages=[user("q")])
    assert body["model"] == "up"
    assert list(body)[:2] == ["model", "messages"]


@pytest.mark.parametrize(
    ("max_tokens", "cap", "expected"),
    [
        pytest.param(64000, 20000 - 16614, 3386, id="clamped-to-room-left"),
        pytest.param(100, 5000, 100, id="under-cap"),
        pytest.param(100, 0, 1, id="never-below-one"),
        pytest.param(100, None, 100, id="no-cap"),
    ],
)
def test_max_tokens_cap(max_tokens: int, cap: int | None, expected: int) -> None:
    req = parse_messages_request({"model": "m", "max_tokens": max_tokens,
                                  "messages": [user("q")]})
    body = to_openai_request(req, upstream_model="u", profile=PROFILES["vllm"],
                             max_tokens_cap=cap).body
    assert body["max_tokens"] == expected


BUILTIN_CASES = [
    pytest.param({"type": "bash_20250124", "name": "bash"}, ["command", "restart"], [],
                 id="bash"),
    pytest.param({"type": "text_editor_20250124", "name": "str_replace_editor"},
                 ["command", "path", "file_text", "old_str", "new_str", "insert_line",
                  "view_range"], ["command", "path"], id="text-editor-with-undo"),
    pytest.param({"type": "computer_20250124", "name": "computer", "display_width_px": 1280,
                  "display_height_px": 800},
                 ["action", "coordinate", "text", "scroll_direction", "scroll_amount",
                  "duration"], ["action"], id="computer"),
    pytest.param({"type": "memory_20250818", "name": "memory"},
                 ["command", "path", "file_text", "old_str", "new_str", "insert_line",
                  "view_range", "insert_text", "old_path", "new_path"], ["command"],
                 id="memory"),
]


@pytest.mark.parametrize(("tool", "properties", "required"), BUILTIN_CASES)
def test_anthropic_defined_client_tools_become_functions(tool, properties, required) -> None:
    req = parse_messages_request({"model": "m", "max_tokens": 5, "tools": [tool],
                                  "messages": [{"role": "user", "content": "hi"}]})
    body = to_openai_request(req, upstream_model="m", profile=PROFILES["vllm"],
                             snippet_of=lambda text: text, max_tokens_cap=None).body
    [function] = [t["function"] for t in body["tools"]]
    assert function["name"] == tool["name"]
    assert list(function["parameters"]["properties"]) == properties
    assert function["parameters"]["required"] == required
    if tool["type"].startswith("computer"):
        assert "1280x800" in function["description"]
    if tool["type"] == "text_editor_20250124":
        assert "undo_edit" in function["parameters"]["properties"]["command"]["enum"]


@pytest.mark.parametrize("tool_type", ["web_search_20250305", "web_fetch_20250910",
                                       "code_execution_20250825", "bash", "bash_latest"])
def test_other_versioned_types_are_not_client_tools(tool_type: str) -> None:
    assert ToolDef(name="t", type=tool_type).builtin_kind is None
