"""`continuum --version`, `--help` and shell completion start fast: they import nothing heavy.

Every TAB of the shell completion and every `--help` is a new process, so what they import
is what a person waits for (budgets in README; timed by bench/cli_startup.py, never here).
These tests fail when a command module imports the server, httpx, pydantic or another heavy
package at module level -- import it inside the function that needs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# never needed to print a version, a help page or completion candidates
HEAVY = ("httpx", "httpcore", "pydantic", "pydantic_core", "h11", "yaml", "asyncio", "anyio",
         "rich", "redis", "pypdf", "prometheus_client", "sqlite3", "ssl", "xllamacpp",
         "continuum_cli.server", "continuum_cli.service", "continuum_cli.api",
         "continuum_cli.upstream", "continuum_cli.config", "continuum_cli.translate",
         "continuum_cli.websearch", "continuum_cli.doctor", "continuum_cli.routing",
         "continuum_cli.state", "continuum_cli.limits", "continuum_cli.usage",
         "continuum_cli.fleet", "continuum_cli.metrics", "continuum_cli.files",
         "continuum_cli.documents", "continuum_cli.gateway", "continuum_cli.backends.embedded")
# --version is answered before the command line library is loaded at all
BEFORE_TYPER = ("typer", "click", "continuum_cli.cli.output")

_PROBE = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["continuum", *json.loads(os.environ["ARGV"])]
from continuum_cli.cli import main
main()
"""


def run_cli(tmp_path: Path, args: list[str], env: dict[str, str] | None = None
            ) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    out = tmp_path / "modules.json"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "MODULES_OUT": str(out),
                "ARGV": json.dumps(args), **(env or {})}
    done = subprocess.run([sys.executable, "-c", _PROBE], env=full_env, capture_output=True,
                          text=True, timeout=120)
    return done, set(json.loads(out.read_text()))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules for n in names if m == n or m.startswith(n + "."))


def test_version_imports_nothing_heavy(tmp_path: Path) -> None:
    done, modules = run_cli(tmp_path, ["--version"])
    assert done.returncode == 0 and done.stdout == "continuum 0.1.0\n"
    assert loaded(modules, HEAVY + BEFORE_TYPER) == []


def test_version_through_typer_still_works(tmp_path: Path) -> None:
    # with other arguments the version comes from the Typer option (eager, exits first)
    done, _ = run_cli(tmp_path, ["--version", "serve"])
    assert done.returncode == 0 and done.stdout.strip() == "continuum 0.1.0"


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    done, modules = run_cli(tmp_path, ["--help"])
    assert done.returncode == 0
    for command in ("serve", "check", "doctor", "claude", "env", "alias", "test-websearch"):
        assert command in done.stdout
    assert loaded(modules, HEAVY) == []


COMPLETIONS = {
    "bash-commands": ({"_CONTINUUM_COMPLETE": "complete_bash", "COMP_WORDS": "continuum ",
                       "COMP_CWORD": "1"}, ["serve", "doctor", "alias"]),
    "bash-options": ({"_CONTINUUM_COMPLETE": "complete_bash",
                      "COMP_WORDS": "continuum serve --", "COMP_CWORD": "2"},
                     ["--config", "--bind"]),
    "bash-choice": ({"_CONTINUUM_COMPLETE": "complete_bash",
                     "COMP_WORDS": "continuum env --shell ", "COMP_CWORD": "3"},
                    ["bash", "zsh", "fish"]),
    "zsh-commands": ({"_CONTINUUM_COMPLETE": "complete_zsh",
                      "_TYPER_COMPLETE_ARGS": "continuum al"}, ['"alias":"Show']),
    "fish-subcommands": ({"_CONTINUUM_COMPLETE": "complete_fish",
                          "_TYPER_COMPLETE_FISH_ACTION": "get-args",
                          "_TYPER_COMPLETE_ARGS": "continuum alias "}, ["list", "resolve"]),
}


@pytest.mark.parametrize("case", sorted(COMPLETIONS))
def test_completion_imports_nothing_heavy(tmp_path: Path, case: str) -> None:
    env, expected = COMPLETIONS[case]
    done, modules = run_cli(tmp_path, [], env)
    assert done.returncode == 0, done.stderr
    for word in expected:
        assert word in done.stdout
    assert loaded(modules, HEAVY) == []


def commands(help_text: str) -> list[str]:
    """The command names a help page lists (click's plain layout)."""
    listed = help_text.partition("Commands:")[2]
    return [line.split()[0] for line in listed.splitlines() if line.startswith("  ")]


def test_every_command_help_imports_nothing_heavy(tmp_path: Path) -> None:
    """Each command's own help page, and its subcommands' (every command module another
    change adds is covered here without listing it)."""
    done, _ = run_cli(tmp_path, ["--help"])
    todo = [[name] for name in commands(done.stdout)]
    assert len(todo) >= 7
    seen = 0
    while todo:
        path = todo.pop()
        done, modules = run_cli(tmp_path, [*path, "--help"])
        assert done.returncode == 0 and "Usage:" in done.stdout, (path, done.stderr)
        assert loaded(modules, HEAVY) == [], path
        todo.extend([*path, name] for name in commands(done.stdout))
        seen += 1
    assert seen > 7  # groups (alias, ...) were walked into


def test_the_probe_sees_a_heavy_import(tmp_path: Path) -> None:
    # the check itself can fail: running a command that needs the config loads pydantic
    done, modules = run_cli(tmp_path, ["check", "--config", str(tmp_path / "missing.yaml")])
    assert done.returncode == 2
    assert "pydantic" in loaded(modules, HEAVY)
