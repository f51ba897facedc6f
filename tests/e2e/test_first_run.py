"""A new user's first `continuum claude`: fresh HOME, the real Claude Code in a pseudo-terminal
(tmux), a loopback-only network namespace. Claude Code must reach its prompt with no dialog
but the folder-trust question, and answer a typed prompt from the router's backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.first_run_host import ANSWER, PROMPT

pytestmark = pytest.mark.e2e

# What a new user got stuck on before continuum claude set Claude Code up.
NEVER = ["Unable to connect to Anthropic services", "Detected a custom API key",
         "Do you want to use this API key", "Not logged in", "Please run /login",
         "Choose the text style", "Let's get started", "Security notes"]


def run_first_run(claude_bin: str, out: Path, *continuum_args: str) -> dict[str, Any]:
    spec = out / "spec.json"
    spec.write_text(json.dumps({"out": str(out), "claude_bin": claude_bin,
                                "continuum_args": list(continuum_args)}))
    done = subprocess.run(["unshare", "-n", "--", sys.executable, "-m",
                           "tests.e2e.first_run_host", str(spec)],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=900)
    result_file = out / "result.json"
    assert result_file.exists(), f"first-run host failed ({done.returncode}): {done.stderr}"
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


@pytest.fixture(scope="module")
def first_run(claude_bin: str, netns: None, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Any]:
    return run_first_run(claude_bin, tmp_path_factory.mktemp("first-run"))


def test_the_typed_prompt_is_answered_on_screen(first_run: dict[str, Any]) -> None:
    screens = first_run["screens"]
    assert "error" not in first_run, (first_run["error"], first_run["steps"],
                                      first_run["output"][-3000:])
    assert first_run["steps"] == ["started", "trust question", "prompt", "answered", "exited"]
    assert any(ANSWER in s for s in screens)
    assert any(PROMPT in p for p in first_run["prompts"])  # it went through the router
    assert first_run["exit"] == "exit status 0"


def test_no_dialog_but_the_folder_trust_question(first_run: dict[str, Any]) -> None:
    everything = "\n".join(first_run["screens"]) + first_run["output"]
    assert [text for text in NEVER if text in everything] == []


def test_what_was_recorded_and_said(first_run: dict[str, Any]) -> None:
    state = first_run["claude_json"]
    assert state["hasCompletedOnboarding"] is True
    assert state["customApiKeyResponses"]["approved"] == ["continuum-local"]
    assert state["customApiKeyResponses"]["rejected"] == []
    assert state["projects"]  # Claude Code itself went on writing its own entries
    said = first_run["output"]
    assert ".claude.json: hasCompletedOnboarding: true" in said
    assert ".claude.json: customApiKeyResponses: the ANTHROPIC_API_KEY continuum passes is " \
        "approved" in said
    assert "starting the continuum router at http://127.0.0.1:" in said


def test_without_the_setup_a_new_user_is_stuck(claude_bin: str, netns: None,
                                                tmp_path: Path) -> None:
    """The control: `--no-setup` leaves Claude Code's first run as it is, and it stops at the
    connection check that ignores ANTHROPIC_BASE_URL (anthropics/claude-code#26935). If a
    later Claude Code no longer does, this test says so."""
    result = run_first_run(claude_bin, tmp_path, "--no-setup")
    assert result["steps"] == ["started", "stuck"], (result.get("error"), result["steps"])
    assert result["claude_json"] is None or "hasCompletedOnboarding" not in result["claude_json"]
    assert "updated" not in result["output"]
