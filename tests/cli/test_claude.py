"""`continuum claude`: a stand-in `claude` on PATH records the arguments and environment it
was started with, and what the router's /health said while it ran."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from platformdirs import user_log_dir
from typer.testing import CliRunner

from continuum_cli.cli import app
from continuum_cli.cli.claude import router_state
from continuum_cli.doctor.model import HttpOutcome
from tests.cli.conftest import read_record, write_config
from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend
from tests.router import RouterThread

runner = CliRunner()


def config_for(tmp_path: Path, data: dict[str, Any], port: int) -> Path:
    return write_config(tmp_path / "config.yaml",
                        {**data, "server": {"bind_address": f"127.0.0.1:{port}"}})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("outcome", "state"), [
    pytest.param(HttpOutcome(error="connection refused"), "down", id="down"),
    pytest.param(HttpOutcome(200, {"status": "ok", "backends": []}), "ready", id="ready"),
    pytest.param(HttpOutcome(200, {"status": "degraded", "backends": []}), "ready",
                 id="degraded_still_serves"),
    pytest.param(HttpOutcome(503, {"status": "loading", "backends": []}), "loading",
                 id="loading"),
    pytest.param(HttpOutcome(404, "<html>"), "foreign", id="something_else"),
])
def test_router_state(outcome: HttpOutcome, state: str) -> None:
    assert router_state(outcome) == state


def test_arguments_pass_through_unchanged(tmp_path: Path, router: RouterThread,
                                          scripted: ScriptedBackend, claude_bin: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_for(tmp_path, basic_config(scripted), router.port)
    monkeypatch.setenv("CLAUDE_EXIT", "3")
    result = runner.invoke(app, ["claude", "--config", str(config), "-p", "say hi",
                                 "--model", "opus", "-c", "--output-format", "json"])
    assert result.exit_code == 3
    record = read_record(tmp_path)
    assert record["args"] == ["-p", "say hi", "--model", "opus", "-c", "--output-format", "json"]
    assert record["env"]["ANTHROPIC_BASE_URL"] == router.anthropic_url
    assert record["env"]["ANTHROPIC_API_KEY"] == "continuum-local"
    assert record["env"]["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0"
    assert record["health"] == "ok"
    # it was already running, so it is left running
    assert httpx.get(router.url + "/health").status_code == 200


def test_double_dash_separates_claude_options(tmp_path: Path, router: RouterThread,
                                              scripted: ScriptedBackend,
                                              claude_bin: Path) -> None:
    config = config_for(tmp_path, basic_config(scripted), router.port)
    result = runner.invoke(app, ["claude", "--config", str(config), "--", "--help",
                                 "--config", "theirs.json"])
    assert result.exit_code == 0, result.output
    assert read_record(tmp_path)["args"] == ["--help", "--config", "theirs.json"]


def test_blocking_mode_gets_a_configured_key(tmp_path: Path, scripted: ScriptedBackend,
                                             router_factory: Any, claude_bin: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {"mode": "blocking", "keys": [{"key": "k-123", "name": "alice"}]}
    data = basic_config(scripted, api_keys=keys)
    router = router_factory(data)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "stale")
    result = runner.invoke(app, ["claude", "--config", str(config_for(tmp_path, data,
                                                                      router.port)), "-p", "x"])
    assert result.exit_code == 0, result.output
    assert read_record(tmp_path)["env"]["ANTHROPIC_API_KEY"] == "k-123"


def test_starts_the_router_and_stops_it_after(tmp_path: Path, scripted: ScriptedBackend,
                                              claude_bin: Path) -> None:
    port = free_port()
    config = config_for(tmp_path, basic_config(scripted), port)
    env = {**os.environ, "CLAUDE_EXIT": "7"}
    proc = subprocess.run([sys.executable, "-m", "continuum_cli", "claude", "--config",
                           str(config), "-p", "hi"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 7, proc.stderr
    assert f"starting the continuum router at http://127.0.0.1:{port}" in proc.stderr
    record = read_record(tmp_path)
    assert record["health"] == "ok"
    assert record["args"] == ["-p", "hi"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health")
    log = Path(user_log_dir("continuum")) / "router.log"
    assert "continuum listening on" in log.read_text(encoding="utf-8")


def test_claude_missing_from_path(tmp_path: Path, scripted: ScriptedBackend,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    config = config_for(tmp_path, basic_config(scripted), free_port())
    result = runner.invoke(app, ["claude", "--config", str(config)])
    assert result.exit_code == 1
    assert "claude is not on PATH" in result.stderr
    assert "npm install -g @anthropic-ai/claude-code" in result.stderr


class _NotARouter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def other_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotARouter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_refuses_a_port_held_by_something_else(tmp_path: Path, scripted: ScriptedBackend,
                                               other_server: int, claude_bin: Path) -> None:
    config = config_for(tmp_path, basic_config(scripted), other_server)
    result = runner.invoke(app, ["claude", "--config", str(config)])
    assert result.exit_code == 1
    assert "is not a continuum router" in result.stderr
    assert not (tmp_path / "claude-record.json").exists()
