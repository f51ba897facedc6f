"""Replay every request Claude Code was captured sending through the router: each one gets a
valid answer (streamed ones parse with the anthropic SDK's strict accumulator)."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend, Text, ToolCalls

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"


def _is_message_capture(path: Path) -> bool:
    data = json.loads(path.read_text())
    return isinstance(data, dict) and "/v1/messages" in data.get("raw_path", "")


MESSAGE_CAPTURES = sorted(p for p in CAPTURES.glob("*.json") if _is_message_capture(p))


def _capture(path: Path) -> dict:
    return json.loads(path.read_text())


def test_captures_present() -> None:
    assert len(MESSAGE_CAPTURES) >= 30


@pytest.mark.parametrize("path", MESSAGE_CAPTURES, ids=lambda p: p.stem)
def test_replay_capture(router_factory, scripted: ScriptedBackend, path: Path) -> None:
    router = router_factory(basic_config(scripted, model_aliases={"default": "test-model"}))
    capture = _capture(path)
    body = capture["body"]
    raw_path = capture["raw_path"].replace("/anthropic", "", 1)
    headers = {k: v for k, v in capture["headers"].items()
               if k.lower() in ("anthropic-beta", "anthropic-version", "x-app")}
    if "count_tokens" in raw_path:
        resp = httpx.post(router.anthropic_url + raw_path, json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["input_tokens"] > 0
        return
    if "safeguards" in body:  # auto mode: refused, and sent again without (gateway protocol)
        _assert_safeguards_refused(router, body, raw_path, headers)
        body = {k: v for k, v in body.items() if k != "safeguards"}
    scripted.queue(ToolCalls([("Bash", '{"command": "echo hi"}')], text="ok")
                   if body.get("tools") and not _is_server_tool_request(body) else Text("hi"))
    if body.get("stream"):
        _replay_stream(router, body, raw_path)
    else:
        resp = httpx.post(router.anthropic_url + raw_path, json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["type"] == "message" and resp.json()["content"]
    if not _is_server_tool_request(body):
        _assert_valid_openai_body(scripted.last_body)


def _assert_safeguards_refused(router, body: dict, raw_path: str, headers: dict) -> None:
    resp = httpx.post(router.anthropic_url + raw_path, json=body, headers=headers)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    # Claude Code recognizes the refusal by a message that starts with the field's name
    assert error["type"] == "invalid_request_error" and error["message"].startswith("safeguards:")


_SDK_PARAMS = {"model", "messages", "max_tokens", "system", "tools", "tool_choice", "metadata",
               "thinking", "stop_sequences"}


def _is_server_tool_request(body: dict) -> bool:
    return any(str(t.get("type", "")).startswith("web_search") for t in body.get("tools") or [])


def _replay_stream(router, body: dict, raw_path: str) -> None:
    c = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    known = {k: v for k, v in body.items() if k in _SDK_PARAMS}
    extra = {k: v for k, v in body.items() if k not in _SDK_PARAMS and k != "stream"}
    with c.messages.stream(**known, extra_body=extra) as stream:
        final = stream.get_final_message()
    assert final.content, "empty final message"
    assert final.stop_reason in ("end_turn", "tool_use", "max_tokens")


def _assert_valid_openai_body(sent: dict) -> None:
    messages = sent["messages"]
    assert "cache_control" not in json.dumps(sent)
    roles = [m["role"] for m in messages]
    assert all(r in ("system", "user", "assistant", "tool") for r in roles)
    assert "system" not in roles[1:], "system message only at the start"
    pending: list[str] = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            pending = [c["id"] for c in m["tool_calls"]]
        elif m["role"] == "tool":
            assert m["tool_call_id"] in pending
            pending.remove(m["tool_call_id"])
        else:
            assert not pending, "every tool call is answered before the next turn"
        if m["role"] != "assistant" or not m.get("tool_calls"):
            assert m.get("content") not in (None, "", []), f"empty content in {m['role']}"
    if sent.get("tools"):
        for tool in sent["tools"]:
            assert tool["type"] == "function" and tool["function"]["name"]
            assert tool["function"]["parameters"]["type"] == "object"
