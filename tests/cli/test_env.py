"""`continuum env`: the export lines `continuum claude` would set, in bash/zsh/fish syntax."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from continuum_cli.cli import app
from continuum_cli.cli.env_cmd import Shell, detect_shell, export_lines
from tests.cli.conftest import write_config

runner = CliRunner()
BLOCKING = {"mode": "blocking", "keys": [{"key": "it's a key", "name": "alice"}]}


def config(tmp_path: Path, **extra: object) -> Path:
    data = {"server": {"bind_address": "0.0.0.0:8123"},
            "backends": [{"name": "b", "url": "http://127.0.0.1:9/v1", "models": ["m"]}],
            **extra}
    return write_config(tmp_path / "config.yaml", data)


@pytest.mark.parametrize(("shell", "line"), [
    pytest.param(Shell.bash, "export A='x y'", id="bash"),
    pytest.param(Shell.zsh, "export A='x y'", id="zsh"),
    pytest.param(Shell.fish, "set -gx A 'x y'", id="fish"),
])
def test_export_lines(shell: Shell, line: str) -> None:
    assert export_lines({"A": "x y"}, shell) == [line]


@pytest.mark.parametrize(("value", "shell"), [
    pytest.param("/usr/bin/fish", Shell.fish, id="fish"),
    pytest.param("/bin/zsh", Shell.zsh, id="zsh"),
    pytest.param("/bin/tcsh", Shell.bash, id="other"),
    pytest.param("", Shell.bash, id="unset"),
])
def test_detect_shell(value: str, shell: Shell) -> None:
    assert detect_shell({"SHELL": value}) is shell


def test_permissive_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/bash")
    result = runner.invoke(app, ["env", "--config", str(config(tmp_path))])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "export ANTHROPIC_BASE_URL=http://127.0.0.1:8123/anthropic",
        "export CLAUDE_CODE_ATTRIBUTION_HEADER=0",
        "export ANTHROPIC_API_KEY=continuum-local",
    ]


def test_fish_and_a_key_already_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "mine")
    result = runner.invoke(app, ["env", "--shell", "fish", "--config", str(config(tmp_path))])
    assert result.stdout.splitlines() == [
        "set -gx ANTHROPIC_BASE_URL http://127.0.0.1:8123/anthropic",
        "set -gx CLAUDE_CODE_ATTRIBUTION_HEADER 0",
    ]


def test_blocking_mode_lines_eval_in_bash(tmp_path: Path) -> None:
    path = config(tmp_path, api_keys=BLOCKING)
    script = (f'eval "$({sys.executable} -m continuum_cli env --shell bash --config {path})" '
              '&& printf "%s|%s|%s" "$ANTHROPIC_BASE_URL" "$ANTHROPIC_API_KEY" '
              '"$CLAUDE_CODE_ATTRIBUTION_HEADER"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "http://127.0.0.1:8123/anthropic|it's a key|0"


def test_blocking_mode_keeps_an_accepted_key(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "it's a key")
    result = runner.invoke(app, ["env", "--shell", "bash",
                                 "--config", str(config(tmp_path, api_keys=BLOCKING))])
    assert "ANTHROPIC_API_KEY" not in result.stdout


def test_bad_config_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["env", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
