"""Finding, locking and atomically rewriting Claude Code's state file on a real file system."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from continuum_cli.claude_state.store import apply_setup, read_state, state_path
from continuum_cli.errors import ContinuumError

KEY = "continuum-local"


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def test_where_claude_code_keeps_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert state_path(env_for(home)) == home / ".claude.json"
    assert state_path(env_for(home, CLAUDE_CONFIG_DIR=str(tmp_path / "cfg"))) == \
        tmp_path / "cfg" / ".claude.json"
    assert state_path(env_for(home, CLAUDE_CODE_CUSTOM_OAUTH_URL="https://x")) == \
        home / ".claude-custom-oauth.json"
    legacy = home / ".claude" / ".config.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("")
    assert state_path(env_for(home)) == home / ".claude.json"  # an empty legacy file is ignored
    legacy.write_text("{}")
    assert state_path(env_for(home)) == legacy


def test_a_fresh_home_gets_a_new_private_file(tmp_path: Path) -> None:
    applied = apply_setup(env_for(tmp_path), KEY)
    path = tmp_path / ".claude.json"
    assert applied.path == path and len(applied.changes) == 2
    assert json.loads(path.read_text()) == {
        "hasCompletedOnboarding": True,
        "customApiKeyResponses": {"approved": [KEY], "rejected": []}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / ".claude.json.lock").exists()


def test_an_existing_file_keeps_its_entries_order_and_mode(tmp_path: Path) -> None:
    path = tmp_path / ".claude.json"
    before = {"numStartups": 3, "userID": "abc", "theme": "light",
              "customApiKeyResponses": {"approved": [], "rejected": [KEY]},
              "projects": {"/w": {"allowedTools": ["Bash"]}}}
    path.write_text(json.dumps(before, indent=2))
    path.chmod(0o640)
    inode = path.stat().st_ino
    applied = apply_setup(env_for(tmp_path), KEY)
    after = json.loads(path.read_text())
    assert list(after) == [*before, "hasCompletedOnboarding"]
    assert after["customApiKeyResponses"] == {"approved": [KEY], "rejected": []}
    assert {k: after[k] for k in before if k != "customApiKeyResponses"} == \
        {k: before[k] for k in before if k != "customApiKeyResponses"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert len(applied.changes) == 2


def test_a_second_run_writes_nothing(tmp_path: Path) -> None:
    apply_setup(env_for(tmp_path), KEY)
    path = tmp_path / ".claude.json"
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    assert apply_setup(env_for(tmp_path), KEY).changes == []
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp


def test_a_symlinked_file_is_updated_through_the_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "claude.json"
    real.parent.mkdir()
    real.write_text('{"userID": "u"}')
    link = tmp_path / ".claude.json"
    link.symlink_to(real)
    apply_setup(env_for(tmp_path), None)
    assert link.is_symlink()
    assert json.loads(real.read_text()) == {"userID": "u", "hasCompletedOnboarding": True}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_broken_file_is_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / ".claude.json"
    path.write_text(text)
    with pytest.raises(ContinuumError, match="left unchanged"):
        apply_setup(env_for(tmp_path), KEY)
    assert path.read_text() == text


def test_waits_for_claude_codes_lock(tmp_path: Path) -> None:
    path = tmp_path / ".claude.json"
    path.write_text('{"n": 1}')
    lock = tmp_path / ".claude.json.lock"
    lock.mkdir()  # Claude Code (proper-lockfile) holds it

    def release() -> None:
        time.sleep(0.5)
        path.write_text('{"n": 2}')  # what the holder wrote before releasing
        lock.rmdir()

    holder = threading.Thread(target=release)
    holder.start()
    apply_setup(env_for(tmp_path), None)
    holder.join()
    assert json.loads(path.read_text()) == {"n": 2, "hasCompletedOnboarding": True}


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / ".claude.json.lock"
    lock.mkdir()
    old = time.time() - 60
    os.utime(lock, (old, old))
    apply_setup(env_for(tmp_path), None)
    assert read_state(tmp_path / ".claude.json") == {"hasCompletedOnboarding": True}


def test_a_home_that_is_not_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file, not a folder")
    started = time.monotonic()
    with pytest.raises(ContinuumError, match="cannot update"):
        apply_setup(env_for(home), KEY)
    assert time.monotonic() - started < 5  # no waiting for a lock that can never be taken
