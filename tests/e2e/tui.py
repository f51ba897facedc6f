"""Drive an interactive terminal program in tmux: start it, read the screen, type, wait.

Every screen read is kept (`seen`), so a test can assert that some text never appeared, not
only that the last screen lacks it. `pipe-pane` records the raw output of the whole run, so
lines printed before a full-screen program took over the terminal are kept too.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]"
                  r"|\x1b[=>NOPMc78]")
POLL = 0.3


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


class Timeout(AssertionError):
    pass


class Tmux:
    """One tmux server on its own socket, with one session running one command."""

    def __init__(self, folder: Path, width: int = 150, height: int = 50) -> None:
        self.folder = folder
        self.socket = folder / "tmux.sock"
        self.log = folder / "pane.log"
        self.go = folder / "go"
        self.width, self.height = width, height
        self.seen: list[str] = []

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        """Run `argv` with exactly `env`; output is recorded from its first byte."""
        command = " ".join(shlex.quote(a) for a in ["env", "-i", *(f"{k}={v}" for k, v in
                                                                  env.items()), *argv])
        # Wait for `go` so that pipe-pane is attached before the program writes anything.
        script = (f"while [ ! -e {shlex.quote(str(self.go))} ]; do sleep 0.05; done; "
                  f"{command}; echo \"exit status $?\"; sleep 600")
        self._tmux("new-session", "-d", "-s", "run", "-x", str(self.width), "-y",
                   str(self.height), "-c", str(cwd), "sh", "-c", script)
        self._tmux("pipe-pane", "-t", "run", "-o", f"cat >> {shlex.quote(str(self.log))}")
        self.go.touch()

    def screen(self) -> str:
        """The visible screen (the scrollback is in `output()`)."""
        text = self._tmux("capture-pane", "-t", "run", "-p", "-J")
        self.seen.append(text)
        return text

    def output(self) -> str:
        """Everything the program wrote, escape sequences removed."""
        return strip_ansi(self.log.read_text(errors="replace")) if self.log.exists() else ""

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "run", *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "run", "-l", text)

    def wait_for(self, found: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if found(text):
                return text
            if time.monotonic() > deadline:
                raise Timeout(f"waited {timeout:.0f}s for {what}; screen:\n{text[-3000:]}")
            time.sleep(POLL)

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True,
                       timeout=30)
