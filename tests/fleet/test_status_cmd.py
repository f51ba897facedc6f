"""`continuum status` against a running router with three backends, one of them down."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from continuum_cli.cli import app
from continuum_cli.cli.status import render, row
from tests.fleet.conftest import fleet_config


def test_status_table_and_json(router_factory, trio) -> None:
    config = fleet_config(trio)
    config["backends"][0]["api_key"] = "sk-very-secret"
    trio[0].api_key = "sk-very-secret"
    router = router_factory(config)
    httpx.post(router.url + "/v1/chat/completions", timeout=30,
               json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    trio[1].health_status = 500
    deadline = time.monotonic() + 20
    while httpx.get(router.url + "/health", timeout=30).json()["backends"][1]["status"] != "down":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    result = CliRunner().invoke(app, ["status", "--url", router.url, "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["status"] == "ok"
    assert [(b["name"], b["status"]) for b in data["backends"]] == [
        ("gpu-a", "ready"), ("gpu-b", "down"), ("gpu-c", "ready")]
    assert sum(b["requests"] for b in data["backends"]) == 1
    assert "sk-very-secret" not in result.output

    proc = subprocess.run([sys.executable, "-m", "continuum_cli", "status", "--url", router.url],
                          capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": ":".join(sys.path)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "ok" in lines[0] and router.url in lines[0]
    assert lines[1].split()[:2] == ["backend", "status"]
    gpu_b = next(line for line in lines if line.startswith("gpu-b"))
    assert "down" in gpu_b and "HTTP 500" in gpu_b
    assert "sk-very-secret" not in proc.stdout


def test_status_exit_1_when_degraded_or_unreachable(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio[:1]))
    trio[0].health_status = 500
    result = CliRunner().invoke(app, ["status", "--url", router.url])
    assert result.exit_code == 1 and "degraded" in result.output
    dead = CliRunner().invoke(app, ["status", "--url", "http://127.0.0.1:9"])
    assert dead.exit_code == 1 and "cannot read http://127.0.0.1:9/health" in dead.output


def test_row_formats_an_ejected_backend() -> None:
    cells = row({"name": "gpu-a", "status": "down", "ejected_for": 9.5, "in_flight": 2,
                 "requests": 40, "errors": 3, "latency_p50_ms": 812.5,
                 "last_error": "backend gpu-a is unreachable (ConnectError)",
                 "last_error_at": "2026-12-05T12:30:01Z", "since": "2026-12-05T12:30:00Z"})
    assert [str(c) for c in cells] == [
        "gpu-a", "down (ejected 9.5s)", "12:30:00", "2", "40", "3", "812.5 ms",
        "12:30:01 backend gpu-a is unreachable (ConnectError)"]
    assert render({"status": "ok", "backends": []}, "http://x") is not None


def test_watch_redraws_live_in_a_terminal(router_factory, trio, tmp_path) -> None:
    """`continuum status --watch` in a real terminal (tmux): the table follows the router."""
    import shlex
    import shutil

    import pytest

    if shutil.which("tmux") is None:
        pytest.fail("tmux is required (installed by .ci/run)")
    router = router_factory(fleet_config(trio))
    session = f"status-{tmp_path.name}"[:40]
    command = (f"PYTHONPATH={shlex.quote(':'.join(sys.path))} {shlex.quote(sys.executable)} "
               f"-m continuum_cli status --watch --interval 0.3 --url {router.url}")
    socket_path = str(tmp_path / "tmux.sock")
    tmux = ["tmux", "-S", socket_path]
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "200", "-y", "20",
                    command], check=True, timeout=30)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", session], text=True,
                              capture_output=True, timeout=30).stdout

    def wait_screen(predicate) -> str:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 30
        while True:
            text = screen()
            if predicate(text):
                return text
            assert time.monotonic() < deadline, text
            time.sleep(0.1)

    try:
        first = wait_screen(lambda t: "gpu-c" in t)
        assert [line.split()[1] for line in first.splitlines()
                if line.startswith("gpu-")] == ["ready", "ready", "ready"]
        trio[1].health_status = 500
        later = wait_screen(lambda t: any(line.startswith("gpu-b") and " down" in line
                                          for line in t.splitlines()))
        assert later.count("router http://") == 1  # redrawn in place, not appended
        subprocess.run([*tmux, "send-keys", "-t", session, "C-c"], check=True, timeout=30)
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=30, capture_output=True)
