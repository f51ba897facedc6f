"""How `continuum reload` finds a running router: one JSON file per listening address.

`continuum serve` writes `<user state dir>/run/router-<host>-<port>.json` (on Linux
`~/.local/state/continuum/run/`, `$XDG_STATE_HOME` honoured) once it listens, holding its
pid, address, config file and the outcome of its last reload; it removes the file on exit.
`continuum reload` reads it, checks the pid is alive, sends SIGHUP, and waits for the reload
counter in the file to move to report the result. Files are replaced atomically (write to a
temporary name, then `os.replace`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from platformdirs import user_state_dir


def run_dir() -> Path:
    return Path(user_state_dir("continuum")) / "run"


def pid_path(host: str, port: int, directory: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", host) or "any"
    return (directory or run_dir()) / f"router-{safe}-{port}.json"


def write(path: Path, info: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".router-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f)
    os.replace(tmp, path)


def read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove(path: Path, pid: int) -> None:
    """Remove the file if it is still ours (another router may have taken the address)."""
    info = read(path)
    if info is not None and info.get("pid") == pid:
        with contextlib.suppress(OSError):
            path.unlink()


def alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def running(directory: Path | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Every router whose file is there and whose process is alive."""
    found = []
    for path in sorted((directory or run_dir()).glob("router-*.json")):
        info = read(path)
        if info is not None and alive(info.get("pid")):
            found.append((path, info))
        elif info is not None:  # a router that was killed without cleaning up
            with contextlib.suppress(OSError):
                path.unlink()
    return found


class RouterFile:
    """The file of one running router: written once it listens, updated after each reload,
    removed on exit."""

    def __init__(self, host: str, port: int, url: str, config: str | None,
                 directory: Path | None = None) -> None:
        self.path = pid_path(host, port, directory)
        self.info: dict[str, Any] = {
            "pid": os.getpid(), "host": host, "port": port, "url": url, "config": config,
            "started_at": time.time(), "reloads": 0, "last_reload": None,
        }

    def open(self) -> None:
        write(self.path, self.info)

    def reloaded(self, ok: bool, message: str) -> None:
        self.info["reloads"] += 1
        self.info["last_reload"] = {"ok": ok, "message": message, "at": time.time()}
        with contextlib.suppress(OSError):
            write(self.path, self.info)

    def close(self) -> None:
        remove(self.path, self.info["pid"])
