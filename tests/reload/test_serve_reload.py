"""SIGHUP and `continuum reload` against a real `continuum serve` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fakes.scripted_backend import ScriptedBackend, Text

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 20,
           "messages": [{"role": "user", "content": "hi"}]}


class Serve:
    def __init__(self, tmp: Path, config: dict[str, Any]) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.config = tmp / "config.yaml"
        self.write(config)
        self.log = tmp / "router.log"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp / "state")}
        self.env.pop("CONTINUUM_CONFIG", None)
        self.run_dir = tmp / "state" / "continuum" / "run"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "continuum_cli", "serve", "--config", str(self.config),
                 "--bind", f"127.0.0.1:{self.port}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=log, env=self.env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_for(lambda: self._up() and list(self.run_dir.glob("router-*.json")),
                      "the router did not start")

    def _up(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def write(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Any, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"router exited: {self.text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{what}: {self.text()[-3000:]}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "continuum_cli", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)


@pytest.fixture
def backends() -> Iterator[tuple[ScriptedBackend, ScriptedBackend]]:
    with ScriptedBackend(models=("model-a",)) as a, ScriptedBackend(models=("model-b",)) as b:
        a.default, b.default = Text("from a"), Text("from b")
        yield a, b


def config(a: ScriptedBackend, b: ScriptedBackend, target: str) -> dict[str, Any]:
    return {"backends": [{"name": "a", "url": a.url, "models": ["model-a"]},
                         {"name": "b", "url": b.url, "models": ["model-b"]}],
            "model_aliases": {"sonnet": target}}


def answer(serve: Serve) -> str:
    resp = httpx.post(serve.url + "/anthropic/v1/messages", json=MESSAGE, timeout=30)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["content"][0]["text"])


@pytest.fixture
def serve(tmp_path: Path, backends) -> Iterator[Serve]:
    a, b = backends
    router = Serve(tmp_path, config(a, b, "model-a"))
    yield router
    router.stop()


def test_sighup_reloads(serve: Serve, backends) -> None:
    assert answer(serve) == "from a"
    serve.proc.send_signal(signal.SIGHUP)  # unchanged file: reloaded all the same
    serve.wait_for(lambda: "config reloaded (2 backends, 1 aliases)" in serve.text(),
                   "no reload after SIGHUP")
    assert serve.proc.poll() is None
    assert answer(serve) == "from a"


def test_continuum_reload_finds_the_router_and_reports(serve: Serve, backends) -> None:
    a, b = backends
    pid_files = list(serve.run_dir.glob("router-*.json"))
    assert len(pid_files) == 1
    info = json.loads(pid_files[0].read_text())
    assert info["pid"] == serve.proc.pid and info["port"] == serve.port
    serve.write(config(a, b, "model-b"))
    done = serve.cli("reload", "--config", str(serve.config))
    assert done.returncode == 0, done.stderr
    assert "config reloaded (2 backends, 1 aliases)" in done.stderr
    assert answer(serve) == "from b"
    # an invalid edit: exit 2, the reason with its line, as `continuum check` gives it
    serve.write("model_aliases:\n  sonnet: model-a\n  bogus_section: 1\nserver: {nope: 1}\n")
    done = serve.cli("reload", "--bind", f"127.0.0.1:{serve.port}", "--json")
    assert done.returncode == 2
    result = json.loads(done.stdout)
    check = serve.cli("check", "--config", str(serve.config))
    said = next(x for x in check.stderr.splitlines() if x.startswith("error: "))
    assert result["ok"] is False
    assert result["message"] == "config reload failed: " + said.removeprefix("error: ")
    assert ":4: unknown key `server.nope`" in result["message"]
    assert answer(serve) == "from b"  # the old config keeps serving
    metrics = httpx.get(serve.url + "/metrics").text
    assert 'continuum_config_reloads_total{result="success"}' in metrics
    assert 'continuum_config_reloads_total{result="failure"}' in metrics
    serve.stop()
    assert not list(serve.run_dir.glob("router-*.json"))  # removed on exit


def test_reload_without_a_router(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "continuum_cli", "reload", "--bind",
                           "127.0.0.1:9"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "no running continuum router found on 127.0.0.1:9" in done.stderr
