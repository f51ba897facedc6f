"""The real Claude Code CLI (2.1.332) against the router, headless, in a loopback-only netns.

Each scenario runs once (scenario_host.py, in its own `unshare -n` namespace); the tests
below read what it recorded. Claude Code runs with a fresh HOME and
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1; the router, the backends, the search-provider
fake and the TLS page all live in the same namespace, so nothing can leave the machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import replies
from tests.e2e.scenario_host import PAGE_SECRET, REAL_COMMAND
from tests.fakes.search_providers import DEFAULT_RESULTS
from tests.fixtures_llama import TOOLS_TEMPLATE

pytestmark = pytest.mark.e2e

Run = Callable[..., dict[str, Any]]
SCENARIOS = ["plain", "bash", "websearch", "webfetch", "pdf_read"]


@pytest.fixture(scope="session")
def plain_run(run_scenario: Run, llama_model_path: Path) -> dict[str, Any]:
    return run_scenario("plain", model_path=str(llama_model_path))


def succeeded(result: dict[str, Any]) -> dict[str, Any]:
    """Claude Code's JSON result, after checking that the run itself went well."""
    claude = result["claude"]
    assert result["claude_rc"] == 0, (claude, result["claude_stderr"], result["log"][-20:])
    assert claude.get("type") == "result" and claude.get("is_error") is False, claude
    return claude


def message_calls(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in result["inbound"] if r["path"].endswith("/v1/messages")]


def test_plain_turn_is_answered_by_the_real_model(plain_run: dict[str, Any]) -> None:
    claude = succeeded(plain_run)
    assert claude["result"].strip()
    calls = message_calls(plain_run)
    assert calls and all(c["model"] for c in calls)
    assert plain_run["upstream"] and all(u["backend"] == "embedded"
                                         for u in plain_run["upstream"])
    assert any("Rewrote request.model via model_aliases" in line for line in plain_run["log"])


def test_bash_tool_round_trip(run_scenario: Run) -> None:
    result = run_scenario("bash")
    claude = succeeded(result)
    bodies = [u["body"] for u in result["upstream"]]
    asked = [b for b in bodies if any(m.get("role") == "tool" for m in b["messages"])]
    assert asked, "no request carried the Bash tool result back to the backend"
    tool_messages = [m for m in asked[-1]["messages"] if m.get("role") == "tool"]
    assert replies.BASH_OUTPUT in str(tool_messages[-1]["content"])  # the shell really ran
    assert f"The command printed {replies.BASH_OUTPUT}" in claude["result"]


def test_websearch_results_reach_the_final_turn(run_scenario: Run) -> None:
    result = run_scenario("websearch")
    claude = succeeded(result)
    assert result["provider"] == [replies.SEARCH_QUERY]  # one provider call, the model's query
    titles = [r["title"] for r in DEFAULT_RESULTS]
    final = [u["body"] for u in result["upstream"]
             if any(m.get("role") == "tool" for m in u["body"]["messages"])]
    assert final, "the WebSearch tool_result never reached the backend"
    tool_text = str([m["content"] for m in final[-1]["messages"] if m.get("role") == "tool"])
    assert all(title in tool_text for title in titles), tool_text
    assert all(title in claude["result"] for title in titles), claude["result"]
    assert len(message_calls(result)) >= 3  # main turn, the web_search side request, final
    log = "\n".join(result["log"])  # the seed's log lines for the emulation path
    assert "web_search server tool emulated" in log
    assert "web_search loop round complete" in log and "results=3" in log


def test_webfetch_summary_goes_through_model_aliases(run_scenario: Run) -> None:
    result = run_scenario("webfetch")
    claude = succeeded(result)
    assert result["page_hits"] >= 1
    summarizer = [u["body"] for u in result["upstream"]
                  if "Web page content:" in replies.user_text_of(u["body"])]
    assert summarizer and PAGE_SECRET in replies.user_text_of(summarizer[-1])
    assert any(c["model"] == replies.HAIKU for c in message_calls(result))
    rewrites = [line for line in result["log"]
                if "Rewrote request.model via model_aliases" in line and replies.HAIKU in line]
    assert rewrites, [line for line in result["log"] if "Rewrote" in line]
    assert PAGE_SECRET in claude["result"]


def test_read_of_a_pdf_reaches_the_model_as_page_text(run_scenario: Run) -> None:
    result = run_scenario("pdf_read")
    claude = succeeded(result)
    bodies = [u["body"] for u in result["upstream"]]
    asked = [b for b in bodies if any(m.get("role") == "tool" for m in b["messages"])]
    assert asked, "no request carried the Read tool result back to the backend"
    tool_text = "\n".join(replies.tool_results_of(asked[-1]))
    assert "--- page 1 ---\nField report, page one.\nNothing to see here." in tool_text
    assert f"--- page 2 ---\nThe access phrase is {replies.PDF_SECRET}." in tool_text
    assert f"The PDF says {replies.PDF_SECRET}" in claude["result"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_request_was_streamed(name: str, run_scenario: Run,
                                    request: pytest.FixtureRequest) -> None:
    """Claude Code falls back to stream:false silently when our SSE is wrong (REPORT.md §5.1);
    here every request it sent, and every request we sent a backend, was streamed."""
    if name == "plain":
        result = request.getfixturevalue("plain_run")
    else:
        result = run_scenario(name)
    succeeded(result)
    calls = message_calls(result)
    assert calls and all(c["stream"] is True for c in calls), calls
    assert result["upstream"] and all(u["stream"] is True for u in result["upstream"])


def test_bash_round_trip_with_the_real_engine(run_scenario: Run, llama_model_path: Path
                                              ) -> None:
    """llama.cpp itself makes the Bash call: Claude Code runs it and the output goes back to
    the engine, which answers that turn too (with another forced call, stopped by
    --max-turns 2)."""
    result = run_scenario("bash_real", model_path=str(llama_model_path),
                          chat_template_file=str(TOOLS_TEMPLATE), timeout=400)
    bodies = [u["body"] for u in result["upstream"]]
    assert len(bodies) >= 2 and all(u["backend"] == "embedded" for u in result["upstream"])
    later = bodies[1]["messages"]
    (call,) = next(m for m in later if m.get("role") == "assistant")["tool_calls"]
    assert call["function"]["name"] == "Bash"
    command = json.loads(call["function"]["arguments"])["command"]
    tool = next(m for m in later if m.get("role") == "tool")
    assert tool["tool_call_id"] == call["id"]
    if command.strip() == REAL_COMMAND:  # what SmolLM2 writes here at temperature 0
        assert "continuum-real-engine" in str(tool["content"])  # the shell really ran it
    else:  # another CPU may sample other words; the result still came back
        assert str(tool["content"]).strip()
    served = [line for line in result["log"]
              if "POST /anthropic/v1/messages" in line and " 200 " in line]
    assert len(served) >= 2, result["log"][-20:]  # the turn holding the output was answered
    assert result["claude"].get("terminal_reason") == "max_turns", result["claude"]


def test_auto_mode_safeguards_are_refused_and_the_turn_goes_on_without(
        run_scenario: Run) -> None:
    """Auto mode asks the upstream for its safeguards check; the router answers 400 naming
    `safeguards` (gateway protocol, "Messages"), Claude Code sends the request again without
    it, and the Bash round trip completes."""
    result = run_scenario("auto_mode")
    claude = succeeded(result)
    calls = message_calls(result)
    asked = [c for c in calls if c.get("safeguards")]
    assert asked and all(c["status"] == 400 for c in asked), calls
    assert any(not c.get("safeguards") and c["status"] == 200 for c in calls), calls
    assert f"The command printed {replies.BASH_OUTPUT}" in claude["result"]
