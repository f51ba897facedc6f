"""The shiv zipapp is a tested artefact: build it, run --version, serve from it."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests import pdfgen
from tests.fakes.scripted_backend import ScriptedBackend

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.zipapp


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "continuum.pyz"
    shiv = Path(sys.executable).with_name("shiv")
    subprocess.run([str(shiv), "-c", "continuum", "-o", str(out), "-p", "/usr/bin/env python3",
                    "--reproducible", str(ROOT)], check=True, capture_output=True, timeout=600)
    return out


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUUM_")}
    env["SHIV_ROOT"] = str(tmp_path / "shiv")
    env["HOME"] = str(tmp_path)
    return env


def test_pyz_version(pyz: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(pyz), "--version"], env=_env(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("continuum ")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_pyz_serves_against_scripted_backend(pyz: Path, tmp_path: Path) -> None:
    with ScriptedBackend() as backend:
        port = _free_port()
        config = tmp_path / "config.yaml"
        config.write_text(
            f"server:\n  bind_address: 127.0.0.1:{port}\nbackends:\n  - name: scripted\n"
            f"    url: {backend.url}\n    models: [test-model]\nmodel_aliases:\n"
            "  default: test-model\n")
        proc = subprocess.Popen([sys.executable, str(pyz), "serve", "--config", str(config)],
                                env=_env(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait_healthy(port, proc)
            resp = httpx.post(f"http://127.0.0.1:{port}/anthropic/v1/messages", json={
                "model": "claude-haiku-4-5-20251001", "max_tokens": 20,
                "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["content"][0]["text"] == "Hello from the scripted backend."
            assert body["model"] == "claude-haiku-4-5-20251001"
            # a PDF is read by a worker process started from the zipapp's own packages
            resp = httpx.post(f"http://127.0.0.1:{port}/anthropic/v1/messages", json={
                "model": "claude-haiku-4-5-20251001", "max_tokens": 20, "messages": [
                    {"role": "user", "content": [{"type": "document", "source": {
                        "type": "base64", "media_type": "application/pdf",
                        "data": base64.b64encode(pdfgen.pdf([["zipapp page"]])).decode()}}]}]},
                timeout=60)
            assert resp.status_code == 200, resp.text
            assert backend.last_body["messages"][-1]["content"] == "--- page 1 ---\nzipapp page"
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        assert "Rewrote request.model via model_aliases" in stderr
        assert json.dumps(backend.last_body["model"]) == '"test-model"'


def _wait_healthy(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"router exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("router did not become healthy")
