"""Finding, locking and rewriting Claude Code's state file (the I/O around `setup.py`).

Where Claude Code 2.1.332 keeps it (read from its bundled source): `$CLAUDE_CONFIG_DIR/.claude.json`
when CLAUDE_CONFIG_DIR is set, else `~/.claude.json`; the name gains `-custom-oauth` before
`.json` when CLAUDE_CODE_CUSTOM_OAUTH_URL is set; a non-empty legacy `.config.json` in the
config folder (`$CLAUDE_CONFIG_DIR`, else `~/.claude`) wins over both.

Claude Code guards its own writes with a `proper-lockfile` lock: a directory named
`<file>.lock`, whose mtime the holder refreshes, stale after 10 s. We take the same lock, so
a Claude Code that is running at the same time never loses an update to us or we to it. The
file is replaced atomically (temporary file in the same folder, fsync, rename) and keeps its
permissions; a new file gets 0600, as Claude Code creates it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from continuum_cli.claude_state.setup import Plan, plan
from continuum_cli.errors import ContinuumError

LOCK_STALE_SECONDS = 10.0  # proper-lockfile's default `stale`
LOCK_WAIT_SECONDS = 15.0
NEW_FILE_MODE = 0o600


def state_path(environ: Mapping[str, str]) -> Path:
    """The state file Claude Code reads with this environment."""
    home = Path(environ.get("HOME") or Path.home())
    config_dir = environ.get("CLAUDE_CONFIG_DIR")
    legacy = Path(config_dir or home / ".claude") / ".config.json"
    if legacy.is_file() and legacy.stat().st_size > 0:
        return legacy
    suffix = "-custom-oauth" if environ.get("CLAUDE_CODE_CUSTOM_OAUTH_URL") else ""
    return Path(config_dir or home) / f".claude{suffix}.json"


def read_state(path: Path) -> dict[str, Any]:
    """The file's JSON object; {} when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ContinuumError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ContinuumError(f"{path} is not valid JSON ({exc}); left unchanged",
                             hint="fix or remove the file (Claude Code recreates it)") from exc
    if not isinstance(data, dict):
        raise ContinuumError(f"{path} does not hold a JSON object; left unchanged",
                             hint="fix or remove the file (Claude Code recreates it)")
    return data


@dataclass(frozen=True)
class Applied:
    path: Path
    changes: list[str]


def apply_setup(environ: Mapping[str, str], api_key: str | None) -> Applied:
    """Record onboarding as done and `api_key` as approved, under Claude Code's own lock.
    Writes nothing when both are already so."""
    path = state_path(environ)
    target = path.resolve()  # a symlinked ~/.claude.json (dotfile managers) stays a symlink
    try:
        with _locked(target):
            result: Plan = plan(read_state(target), api_key)
            if result.changed:
                _replace(target, result.state)
    except OSError as exc:
        raise ContinuumError(f"cannot update {path}: {exc.strerror or exc}",
                             hint="fix the file's permissions, or pass --no-setup") from exc
    return Applied(path, result.changes)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    lock = target.with_name(target.name + ".lock")
    target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not _try_lock(lock):
        if time.monotonic() > deadline:
            raise ContinuumError(f"{lock} is held by another program; {target} left "
                                 "unchanged", hint="close other Claude Code sessions and "
                                 "retry, or pass --no-setup")
        time.sleep(0.1)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.rmdir()


def _try_lock(lock: Path) -> bool:
    try:
        lock.mkdir()
        return True
    except FileExistsError:
        pass
    try:  # a holder refreshes the mtime; an old one means the holder died
        if time.time() - lock.stat().st_mtime > LOCK_STALE_SECONDS:
            lock.rmdir()
    except OSError:
        pass
    return False


def _replace(target: Path, state: Mapping[str, Any]) -> None:
    try:
        before = target.stat()
    except FileNotFoundError:
        before = None
    # Claude Code writes two-space JSON without a trailing newline; so do we.
    data = json.dumps(state, indent=2, ensure_ascii=False).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        _copy_owner_and_mode(tmp, before)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _copy_owner_and_mode(tmp: str, before: os.stat_result | None) -> None:
    os.chmod(tmp, (before.st_mode & 0o7777) if before else NEW_FILE_MODE)
    if before is not None and hasattr(os, "chown"):
        with contextlib.suppress(OSError):  # only root may give a file away
            os.chown(tmp, before.st_uid, before.st_gid)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
