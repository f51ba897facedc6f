"""A new user's first `continuum claude`, in a pseudo-terminal, inside a loopback-only netns.

Run as `unshare -n -- python -m tests.e2e.first_run_host SPEC.json` from the repository root.
It brings `lo` up, starts the scripted backend, writes a config.yaml for it, and runs
`continuum claude --config config.yaml` in tmux with a fresh HOME and the real Claude Code
on PATH -- nothing else is set up: continuum starts the router itself, as for a new user.
Then it answers the folder-trust question, types a prompt, and waits for the model's answer
on screen. `result.json` in the spec's `out` directory holds:

    screens      [str]   every screen read, in order (`continuum_args` in the spec are added
                         to the command line; a run that meets "Unable to connect to
                         Anthropic services" stops there, with the step "stuck")
    output       str     the whole terminal output, escape sequences removed
    steps        [str]   the steps that were reached
    seconds      {step: s}  when each step was reached, from the start of `continuum claude`
    claude_json  obj     HOME/.claude.json afterwards
    prompts      [str]   user text of every chat request the backend got
    exit         str     the "exit status N" line, when continuum ended
    error        str     when a step timed out or failed
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.e2e import replies
from tests.e2e.tui import Timeout, Tmux
from tests.fakes.scripted_backend import Recorded, ScriptedBackend, Text

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Say the first-run words."
ANSWER = "The local model answers: FIRST-RUN-OK-4711."
TRUST = "Yes, I trust this folder"
YES_SELECTED = re.compile(r"❯\s*Yes, I trust this folder")
STUCK = "Unable to connect to Anthropic services"
START_TIMEOUT = 240.0  # router start, Claude Code start, on a loaded 2-core machine
ANSWER_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answer(rec: Recorded) -> Text:
    return Text(ANSWER if PROMPT in replies.user_text(rec) else "ok")


def write_config(folder: Path, backend: ScriptedBackend) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"bind_address": f"127.0.0.1:{free_port()}"},
        "backends": [{"name": "local", "type": "llamacpp", "url": backend.url,
                      "models": ["test-model"]}],
        "model_aliases": {"default": "test-model"}}))
    return path


def user_env(home: Path, bin_dir: Path) -> dict[str, str]:
    """What a new user's terminal has: no ANTHROPIC_* or CLAUDE_* variables at all."""
    return {"HOME": str(home), "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "TERM": "xterm-256color", "LANG": "C.UTF-8", "PYTHONPATH": str(REPO),
            "XDG_STATE_HOME": str(home / ".local" / "state")}


class FirstRun:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.out = Path(spec["out"])
        self.claude_bin = spec["claude_bin"]
        self.extra_args: list[str] = list(spec.get("continuum_args", []))
        self.result: dict[str, Any] = {"steps": [], "screens": [], "seconds": {}}
        self.started = time.monotonic()
        self.tmux = Tmux(self.out)

    def step(self, name: str) -> None:
        self.result["steps"].append(name)
        self.result["seconds"][name] = round(time.monotonic() - self.started, 2)

    def run(self, backend: ScriptedBackend) -> None:
        home, work, bin_dir = self.out / "home", self.out / "work", self.out / "bin"
        for folder in (home, work, bin_dir):
            folder.mkdir(parents=True, exist_ok=True)
        (bin_dir / "claude").symlink_to(self.claude_bin)
        config = write_config(self.out, backend)
        self.tmux.start([sys.executable, "-m", "continuum_cli", "claude", "--config",
                         str(config), *self.extra_args], user_env(home, bin_dir), work)
        self.step("started")
        first = self.tmux.wait_for(lambda s: TRUST in s or STUCK in s, START_TIMEOUT,
                                   "the folder-trust question")
        if STUCK in first:
            self.step("stuck")
            return
        self.step("trust question")
        self._trust_the_folder()
        self.step("prompt")
        self._type_prompt()
        self.tmux.keys("Enter")
        self.tmux.wait_for(lambda s: ANSWER in s, ANSWER_TIMEOUT, "the model's answer")
        self.step("answered")
        self.tmux.type("/exit")
        self.tmux.keys("Enter")
        self.tmux.wait_for(lambda s: "exit status" in s, 60, "continuum to exit")
        self.step("exited")

    def _trust_the_folder(self) -> None:
        """Select "Yes, I trust this folder" and confirm; the dialog may redraw (and forget a
        selection) while Claude Code is still starting, so check each step and repeat."""
        for _ in range(20):
            self.tmux.keys("Down")
            try:
                self.tmux.wait_for(lambda s: YES_SELECTED.search(s) is not None, 5,
                                   "the selection on Yes")
                self.tmux.keys("Enter")
                self.tmux.wait_for(lambda s: TRUST not in s and "Claude Code v" in s, 20,
                                   "the prompt")
                return
            except Timeout:
                continue
        raise Timeout("the folder-trust question could not be answered")

    def _type_prompt(self) -> None:
        """Type the prompt and see it echoed; keys sent while the UI is still settling can be
        dropped, so clear the line and type again until it shows."""
        for _ in range(10):
            self.tmux.type(PROMPT)
            try:
                self.tmux.wait_for(lambda s: PROMPT in s, 5, "the typed prompt")
                return
            except Timeout:
                self.tmux.keys("C-u")
        raise Timeout("the typed prompt never showed on screen")

    def finish(self, backend: ScriptedBackend) -> None:
        self.result["screens"] = self.tmux.seen
        self.result["output"] = self.tmux.output()
        exits = [line for line in self.result["output"].splitlines()
                 if line.startswith("exit status")]
        self.result["exit"] = exits[-1] if exits else None
        state = self.out / "home" / ".claude.json"
        self.result["claude_json"] = json.loads(state.read_text()) if state.exists() else None
        self.result["prompts"] = [replies.user_text(r) for r in backend.chat_requests()]
        self.tmux.kill()


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.environ.pop("CONTINUUM_CONFIG", None)
    backend = ScriptedBackend(models=("test-model",)).start()
    backend.default = answer
    run = FirstRun(spec)
    try:
        run.run(backend)
    except Exception as exc:  # noqa: BLE001 - reported to the test through result.json
        run.result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            run.finish(backend)
        finally:
            backend.stop()
            (out / "result.json").write_text(json.dumps(run.result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
