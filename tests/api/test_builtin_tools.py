"""Anthropic-defined client tools (`bash_*`, `text_editor_*`, `computer_*`, `memory_*`) through
the real router with the official anthropic SDK: the backend gets a real function for each,
and the model's call comes back as a `tool_use` block under the tool's own name."""

from __future__ import annotations

import logging

import anthropic
import pytest

from tests.fakes.scripted_backend import ScriptedBackend, Text, ToolCalls

USER = [{"role": "user", "content": "fix the typo in /repo/README.md"}]
TOOLS = [
    {"type": "bash_20250124", "name": "bash"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 1},
]


def client(router) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.anthropic_url, api_key="dev-key", max_retries=0)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_text_editor_call_round_trip(router, scripted: ScriptedBackend, stream: bool) -> None:
    arguments = ('{"command": "str_replace", "path": "/repo/README.md", '
                 '"old_str": "teh", "new_str": "the"}')
    scripted.queue(ToolCalls([("str_replace_based_edit_tool", arguments)]))
    kwargs = dict(model="test-model", max_tokens=200, messages=USER, tools=TOOLS)
    if stream:
        with client(router).messages.stream(**kwargs) as s:
            final = s.get_final_message()
    else:
        final = client(router).messages.create(**kwargs)
    assert final.stop_reason == "tool_use"
    call = final.content[-1]
    assert (call.type, call.name) == ("tool_use", "str_replace_based_edit_tool")
    assert call.input == {"command": "str_replace", "path": "/repo/README.md",
                          "old_str": "teh", "new_str": "the"}
    functions = {t["function"]["name"]: t["function"] for t in scripted.last_body["tools"]}
    assert set(functions) >= {"bash", "str_replace_based_edit_tool"}
    editor = functions["str_replace_based_edit_tool"]["parameters"]
    assert editor["required"] == ["command", "path"]
    assert "undo_edit" not in editor["properties"]["command"]["enum"]  # gone since 2025-04
    assert functions["bash"]["parameters"]["properties"]["command"]["type"] == "string"
    assert functions["bash"]["description"]


def test_the_tool_result_goes_back_to_the_model(router, scripted: ScriptedBackend) -> None:
    scripted.queue(ToolCalls([("bash", '{"command": "ls"}')]))
    first = client(router).messages.create(model="test-model", max_tokens=100, messages=USER,
                                           tools=TOOLS)
    call = first.content[-1]
    scripted.queue(ToolCalls([("bash", '{"command": "pwd"}')]))
    client(router).messages.create(
        model="test-model", max_tokens=100, tools=TOOLS,
        messages=[*USER, {"role": "assistant", "content": [call.model_dump()]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                "content": "README.md"}]}])
    messages = scripted.last_body["messages"]
    assert messages[-2]["tool_calls"][0]["function"]["name"] == "bash"
    assert messages[-1] == {"role": "tool", "tool_call_id": messages[-2]["tool_calls"][0]["id"],
                            "content": "README.md"}


def test_count_tokens_counts_the_schema_the_backend_gets(router) -> None:
    def count(tools: list[dict]) -> int:
        return client(router).messages.count_tokens(model="test-model", messages=USER,
                                                    tools=tools).input_tokens

    assert count([{"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}]) \
        > count([{"name": "str_replace_based_edit_tool",
                  "input_schema": {"type": "object", "properties": {}}}]) + 20


def test_server_tools_without_a_local_equivalent_are_named_in_the_log(
        router, scripted: ScriptedBackend, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="continuum")
    scripted.queue(Text("Done."))
    message = client(router).messages.create(
        model="test-model", max_tokens=50, messages=USER,
        tools=[{"type": "code_execution_20250825", "name": "code_execution"},
               {"type": "bash_20250124", "name": "bash"}])
    assert message.content[0].text == "Done."
    assert [t["function"]["name"] for t in scripted.last_body["tools"]] == ["bash"]
    assert "answered without them: code_execution_20250825" in caplog.text
