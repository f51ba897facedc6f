"""Tool calls a backend writes as text (checklist item 23): recovered into tool_use blocks when
`recover_tool_calls` is on, left as text (with a warning naming the fix) when it is off."""

from __future__ import annotations

import logging

import anthropic
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend, Text

BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                         "required": ["command"]}}
TEXT_CALL = 'Let me check.<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>'


def _final(router, stream: bool):
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    kwargs = dict(model="test-model", max_tokens=64, tools=[BASH],
                  messages=[{"role": "user", "content": "list files"}])
    if stream:
        with client.messages.stream(**kwargs) as s:
            return s.get_final_message()
    return client.messages.create(**kwargs)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_recovered_when_enabled(router_factory, scripted: ScriptedBackend, stream) -> None:
    config = basic_config(scripted)
    config["backends"][0]["recover_tool_calls"] = True
    router = router_factory(config)
    scripted.queue(Text(TEXT_CALL))
    final = _final(router, stream)
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("Bash", {"command": "ls"})]
    assert final.stop_reason == "tool_use"
    assert "<tool_call>" not in "".join(b.text for b in final.content if b.type == "text")


def test_left_as_text_with_a_warning_when_disabled(router, scripted, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="continuum")
    scripted.queue(Text(TEXT_CALL))
    final = _final(router, stream=False)
    assert [b.type for b in final.content] == ["text"]
    assert "recover_tool_calls" in caplog.text
