"""Helpers for the operator-command tests: config files, a stand-in `claude` on PATH."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

STAND_IN = """#!{python}
# A stand-in for Claude Code: records its arguments and environment, then exits.
import json, os, sys, urllib.request
if sys.argv[1:] == ["--version"]:
    print("2.1.332 (Claude Code)")
    sys.exit(0)
record = {{"args": sys.argv[1:], "env": dict(os.environ)}}
base = os.environ.get("ANTHROPIC_BASE_URL", "")
try:  # what the router says while claude runs
    url = base.rsplit("/anthropic", 1)[0] + "/health"
    record["health"] = json.load(urllib.request.urlopen(url, timeout=5))["status"]
except Exception as exc:
    record["health"] = repr(exc)
with open(os.environ["CLAUDE_RECORD"], "w") as f:
    json.dump(record, f)
sys.exit(int(os.environ.get("CLAUDE_EXIT", "0")))
"""


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def claude_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding a stand-in `claude`, put first on PATH; `CLAUDE_RECORD` is set."""
    directory = tmp_path / "bin"
    directory.mkdir()
    script = directory / "claude"
    script.write_text(STAND_IN.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("CLAUDE_RECORD", str(tmp_path / "claude-record.json"))
    return directory


def read_record(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "claude-record.json").read_text(encoding="utf-8"))
