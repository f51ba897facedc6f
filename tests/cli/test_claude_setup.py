"""`continuum claude` records Claude Code's onboarding and the key it passes in
`~/.claude.json` before starting it (a stand-in `claude` records what it found there)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from continuum_cli.cli import app
from tests.cli.conftest import read_record
from tests.cli.test_claude import config_for
from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend
from tests.router import RouterThread

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    return folder


def run(tmp_path: Path, router: RouterThread, scripted: ScriptedBackend, *args: str):
    config = config_for(tmp_path, basic_config(scripted), router.port)
    return runner.invoke(app, ["claude", "--config", str(config), *args, "-p", "hi"])


def test_a_fresh_home_is_set_up_and_the_change_is_shown(
        tmp_path: Path, home: Path, router: RouterThread, scripted: ScriptedBackend,
        claude_bin: Path) -> None:
    result = run(tmp_path, router, scripted)
    assert result.exit_code == 0, result.output
    state = json.loads((home / ".claude.json").read_text())
    key = read_record(tmp_path)["env"]["ANTHROPIC_API_KEY"]
    assert state == {"hasCompletedOnboarding": True,
                     "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}}
    assert f"updated {home / '.claude.json'}: hasCompletedOnboarding: true" in result.stderr
    assert "customApiKeyResponses" in result.stderr
    # the second start has nothing to change and says nothing
    again = run(tmp_path, router, scripted)
    assert again.exit_code == 0 and "updated" not in again.stderr


def test_the_users_own_accepted_key_is_the_one_approved(
        tmp_path: Path, home: Path, router: RouterThread, scripted: ScriptedBackend,
        claude_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = "sk-my-own-router-key-0123456789"
    (home / ".claude.json").write_text(json.dumps({
        "userID": "u1", "hasCompletedOnboarding": True,
        "customApiKeyResponses": {"approved": [], "rejected": [mine[-20:]]}}))
    (home / ".claude.json").chmod(0o644)
    monkeypatch.setenv("ANTHROPIC_API_KEY", mine)
    result = run(tmp_path, router, scripted)
    assert result.exit_code == 0, result.output
    assert read_record(tmp_path)["env"]["ANTHROPIC_API_KEY"] == mine
    state = json.loads((home / ".claude.json").read_text())
    assert state == {"userID": "u1", "hasCompletedOnboarding": True,
                     "customApiKeyResponses": {"approved": [mine[-20:]], "rejected": []}}
    assert stat.S_IMODE((home / ".claude.json").stat().st_mode) == 0o644
    assert "no longer rejected" in result.stderr
    assert mine not in result.stderr and mine[-20:] not in result.stderr


def test_no_setup_leaves_the_file_alone(tmp_path: Path, home: Path, router: RouterThread,
                                        scripted: ScriptedBackend, claude_bin: Path) -> None:
    result = run(tmp_path, router, scripted, "--no-setup")
    assert result.exit_code == 0, result.output
    assert not (home / ".claude.json").exists()
    assert "--no-setup" not in read_record(tmp_path)["args"]


def test_claude_config_dir_is_honoured(tmp_path: Path, home: Path, router: RouterThread,
                                       scripted: ScriptedBackend, claude_bin: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-cfg"))
    assert run(tmp_path, router, scripted).exit_code == 0
    assert json.loads((tmp_path / "claude-cfg" / ".claude.json").read_text())[
        "hasCompletedOnboarding"] is True
    assert not (home / ".claude.json").exists()


def test_a_broken_file_is_reported_and_claude_still_starts(
        tmp_path: Path, home: Path, router: RouterThread, scripted: ScriptedBackend,
        claude_bin: Path) -> None:
    (home / ".claude.json").write_text("{oops")
    result = run(tmp_path, router, scripted)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "not valid JSON" in result.stderr
    assert (home / ".claude.json").read_text() == "{oops"
    assert read_record(tmp_path)["args"] == ["-p", "hi"]
    assert os.environ.get("HOME") == str(home)
