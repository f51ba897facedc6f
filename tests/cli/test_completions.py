"""Shell completions: the committed scripts match a fresh generation, and they complete."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from continuum_cli.cli.completions_gen import FILES, generate, main

REPO = Path(__file__).resolve().parents[2]
SHELLS = Path(__file__).resolve().parent / "shells"


def test_committed_scripts_are_current(tmp_path: Path) -> None:
    generate(tmp_path)
    for name in FILES.values():
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        committed = (REPO / "completions" / name).read_text(encoding="utf-8")
        assert committed == fresh, f"completions/{name} is stale: run `make completions`"


def test_main_writes_every_shell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES.values())
    assert (tmp_path / "out" / "_continuum").read_text().startswith("#compdef continuum\n")


@pytest.fixture
def continuum_on_path(tmp_path: Path) -> dict[str, str]:
    """A `continuum` executable that runs this checkout, first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "continuum"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m continuum_cli "$@"\n')
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.parametrize(("words", "cword", "expected"), [
    pytest.param("continuum al", 1, ["alias"], id="command"),
    pytest.param("continuum alias ", 2, ["list", "resolve", "set", "remove"], id="subcommand"),
    pytest.param("continuum doctor --o", 2, ["--offline"], id="option"),
])
def test_bash_script_completes(continuum_on_path: dict[str, str], words: str, cword: int,
                               expected: list[str]) -> None:
    empty_word = ' ""' if words.endswith(" ") else ""  # bash's array for "complete here"
    script = (f"source {REPO / 'completions' / 'continuum.bash'}\n"
              f"COMP_WORDS=({words}{empty_word}); COMP_CWORD={cword}\n"
              "_continuum_completion continuum\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                         env=continuum_on_path, timeout=60)
    assert out.stdout.split() == expected, out.stderr


@pytest.mark.parametrize(("shell", "extra", "expected"), [
    pytest.param("zsh", {"_TYPER_COMPLETE_ARGS": "continuum cl"}, '"claude"', id="zsh"),
    pytest.param("fish", {"_TYPER_COMPLETE_ARGS": "continuum do",
                          "_TYPER_COMPLETE_FISH_ACTION": "get-args"}, "doctor", id="fish"),
])
def test_zsh_and_fish_protocol(continuum_on_path: dict[str, str], shell: str,
                               extra: dict[str, str], expected: str) -> None:
    # The zsh and fish scripts run exactly this: continuum with _CONTINUUM_COMPLETE set.
    env = {**continuum_on_path, "_CONTINUUM_COMPLETE": f"complete_{shell}", **extra}
    out = subprocess.run(["continuum"], capture_output=True, text=True, env=env, timeout=60)
    assert expected in out.stdout


def _shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.parametrize("mode", ["fpath", "source"])
@pytest.mark.parametrize(("line", "expected"), [
    pytest.param("continuum do", ["doctor"], id="command"),
    pytest.param("continuum alias ", ["list", "remove", "resolve", "set"], id="subcommand"),
    pytest.param("continuum doctor --o", ["--offline"], id="option"),
])
def test_real_zsh_completes_at_the_first_tab(continuum_on_path: dict[str, str],
                                             tmp_path: Path, mode: str, line: str,
                                             expected: list[str]) -> None:
    zsh = _shell("zsh")
    out = subprocess.run([zsh, "-f", str(SHELLS / "zsh_complete.zsh"), mode,
                          str(REPO / "completions"), str(tmp_path / "zcomp"), line],
                         capture_output=True, text=True, env=continuum_on_path, timeout=60)
    assert sorted(out.stdout.split()) == expected, out.stderr


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param("continuum do", ["doctor"], id="command"),
    pytest.param("continuum alias ", ["list", "remove", "resolve", "set"], id="subcommand"),
    pytest.param("continuum doctor --o", ["--offline"], id="option"),
])
def test_real_fish_completes(continuum_on_path: dict[str, str], line: str,
                             expected: list[str]) -> None:
    fish = _shell("fish")
    script = (f"source {REPO / 'completions' / 'continuum.fish'}; "
              f"complete --do-complete '{line}'")
    out = subprocess.run([fish, "--no-config", "-c", script], capture_output=True, text=True,
                         env=continuum_on_path, timeout=60)
    candidates = sorted(row.split("\t")[0] for row in out.stdout.splitlines() if row)
    assert candidates == expected, out.stderr
