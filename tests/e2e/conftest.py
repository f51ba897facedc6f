"""Fixtures for the Claude Code end-to-end tests: the CLI, the namespace, a TLS certificate.

Each scenario runs in a fresh loopback-only network namespace (`unshare -n`) through
`scenario_host.py`; nothing in it can reach beyond 127.0.0.1. Where `unshare -n` is not
permitted (not root and no unprivileged user namespaces) the tests skip and say why; CI runs
as root, where they run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CLAUDE_VERSION = "2.1.332"
DEFAULT_CLAUDE = REPO / ".cache" / "cc" / "node_modules" / ".bin" / "claude"
SCENARIO_TIMEOUT = 420.0


@pytest.fixture(scope="session")
def claude_bin() -> str:
    """The pinned Claude Code CLI (`make claude-code` installs it into .cache/cc)."""
    path = Path(os.environ.get("CLAUDE_BIN", DEFAULT_CLAUDE))
    if not path.exists():
        message = f"Claude Code CLI not found at {path}; run `make claude-code`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    version = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                             timeout=60)
    assert CLAUDE_VERSION in version.stdout, version.stdout + version.stderr
    return str(path)


@pytest.fixture(scope="session")
def netns() -> None:
    """Skip (with the reason) where a loopback-only network namespace cannot be made; on CI
    (root, `.ci/run` installs util-linux and iproute2) that is a failure, never a skip."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        _unavailable("`unshare` or `ip` is not installed (util-linux, iproute2)")
    probe = subprocess.run(["unshare", "-n", "--", "ip", "link", "set", "lo", "up"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        _unavailable(f"cannot create a network namespace with `unshare -n`: "
                     f"{probe.stderr.strip() or probe.returncode}")


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1 (WebFetch only fetches https)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


@pytest.fixture(scope="session")
def run_scenario(claude_bin: str, netns: None, tls_pair: tuple[str, str],
                 tmp_path_factory: pytest.TempPathFactory
                 ) -> Callable[..., dict[str, Any]]:
    """`run_scenario(name, **spec) -> result.json` (each scenario runs once per session)."""
    cache: dict[str, dict[str, Any]] = {}

    def run(name: str, **extra: Any) -> dict[str, Any]:
        if name not in cache:
            cache[name] = _run(name, claude_bin, tls_pair,
                               tmp_path_factory.mktemp(f"cc-{name}"), extra)
        return cache[name]

    return run


def _run(name: str, claude_bin: str, tls_pair: tuple[str, str], out: Path,
         extra: dict[str, Any]) -> dict[str, Any]:
    spec = {"scenario": name, "out": str(out), "claude_bin": claude_bin,
            "tls_cert": tls_pair[0], "tls_key": tls_pair[1], **extra}
    spec_file = out / "spec.json"
    spec_file.write_text(json.dumps(spec))
    done = subprocess.run(
        ["unshare", "-n", "--", sys.executable, "-m", "tests.e2e.scenario_host", str(spec_file)],
        cwd=REPO, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT)
    result_file = out / "result.json"
    assert result_file.exists(), f"scenario host failed ({done.returncode}): {done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(result_file.read_text())
    assert "error" not in result, f"{result['error']}\nlog tail: {result['log'][-20:]}"
    return result
