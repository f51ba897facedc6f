"""`continuum doctor` on Claude Code's own state file: onboarding not done, a key never
approved or rejected earlier -- each with its fix; and the same through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from continuum_cli.claude_state.store import apply_setup
from continuum_cli.doctor.claude_home import api_key, claude_home_checks, onboarding

KEY = "sk-some-router-key-0123456789"
PATH = Path("/home/u/.claude.json")


@pytest.mark.parametrize(("state", "exists", "status", "words"), [
    ({"hasCompletedOnboarding": True}, True, "pass", "done"),
    ({}, False, "warn", "does not exist yet"),
    ({"hasCompletedOnboarding": False}, True, "warn", "hasCompletedOnboarding is not true"),
])
def test_onboarding(state: dict[str, Any], exists: bool, status: str, words: str) -> None:
    result = onboarding(PATH, state, exists)
    assert result.status == status and words in result.evidence
    if status != "pass":
        assert "Unable to connect to Anthropic services" in result.evidence
        assert result.fix is not None and "continuum claude" in result.fix


@pytest.mark.parametrize(("responses", "env", "status", "words"), [
    ({"approved": [KEY[-20:]]}, {"ANTHROPIC_API_KEY": KEY}, "pass", "approved"),
    ({"rejected": [KEY[-20:]]}, {"ANTHROPIC_API_KEY": KEY}, "fail", "Not logged in"),
    ({}, {"ANTHROPIC_API_KEY": KEY}, "warn", "Detected a custom API key"),
    ({}, {}, "skip", "continuum claude"),
    ({}, {"ANTHROPIC_AUTH_TOKEN": KEY}, "skip", "needs no approval"),
])
def test_api_key(responses: dict[str, Any], env: dict[str, str], status: str,
                 words: str) -> None:
    result = api_key(PATH, {"customApiKeyResponses": responses}, env)
    assert result.status == status and words in result.evidence, result
    assert KEY not in result.evidence and KEY[-20:] not in result.evidence
    if status in ("fail", "warn"):
        assert result.fix is not None and "continuum claude" in result.fix
        assert "Use custom API key" in result.fix


def test_an_unreadable_file_is_a_failure_with_its_fix(tmp_path: Path) -> None:
    (tmp_path / ".claude.json").write_text("{broken")
    first, second = claude_home_checks({"HOME": str(tmp_path)})
    assert first.status == "fail" and "not valid JSON" in first.evidence
    assert second.status == "skip"


def doctor_json(env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "continuum_cli", "doctor", "--json",
                           "--offline", "--url", "http://127.0.0.1:9"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    return {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


def test_the_command_reports_then_passes_after_continuum_claude_set_up(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps(
        {"customApiKeyResponses": {"approved": [], "rejected": [KEY[-20:]]}}))
    env = {"HOME": str(home), "ANTHROPIC_API_KEY": KEY}
    checks = doctor_json(env)
    assert checks["claude onboarding"]["status"] == "warn"
    assert checks["claude API key"]["status"] == "fail"
    assert str(home / ".claude.json") in checks["claude API key"]["evidence"]
    apply_setup(env, KEY)  # what `continuum claude` runs first
    checks = doctor_json(env)
    assert checks["claude onboarding"]["status"] == "pass"
    assert checks["claude API key"]["status"] == "pass"
