"""The `type: embedded` backend with the real xllamacpp server and the real SmolLM2 model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from continuum_cli.backends.embedded import EmbeddedServer, doctor_check
from continuum_cli.config.models import Backend, Settings
from continuum_cli.errors import ContinuumError
from tests.fixtures_llama import MODEL_CACHE, LoopThread, embedded_backend
from tests.router import RouterThread

pytestmark = pytest.mark.realbackend


def test_start_serves_under_the_configured_names_and_stop_ends_it(
    llama_model_path: Path, llama_loop: LoopThread
) -> None:
    backend = embedded_backend(llama_model_path, name="names", api_key=None,
                               models=("local-model", "second-name"))
    said: list[str] = []
    server = EmbeddedServer(backend, cache_dir=MODEL_CACHE, progress=said.append)
    base_url = llama_loop.run(server.start())
    try:
        assert server.state == "ready" and server.base_url == base_url
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        ids = [m["id"] for m in httpx.get(base_url + "/models", timeout=30).json()["data"]]
        assert "local-model" in ids
        assert server.load_seconds is not None and server.load_seconds > 0
        assert any(m.startswith("loading SmolLM2-135M-Instruct.Q4_1.gguf") for m in said)
        assert any("ready in" in m for m in said)
    finally:
        llama_loop.run(server.stop())
    with pytest.raises(httpx.TransportError):
        httpx.get(base_url + "/models", timeout=5)


def test_a_file_llama_cannot_load_fails_with_the_reason(tmp_path: Path,
                                                        llama_loop: LoopThread) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 4096)
    server = EmbeddedServer(embedded_backend(bad, name="broken"), cache_dir=tmp_path)
    with pytest.raises(ContinuumError) as caught:
        llama_loop.run(server.start())
    assert "failed to load" in caught.value.message
    assert server.state == "failed" and server.base_url is None
    llama_loop.run(server.stop())


_ORPHAN = """
import asyncio, sys
from pathlib import Path
from continuum_cli.backends.embedded import EmbeddedServer
from continuum_cli.config.models import Backend
async def main():
    server = EmbeddedServer(Backend(name="orphan", type="embedded", model_path=sys.argv[1],
                                    context_size=512), cache_dir=Path(sys.argv[2]))
    print(await server.start(), flush=True)
    import os; os._exit(9)   # the router dies without stopping anything
asyncio.run(main())
"""


def test_server_does_not_outlive_a_killed_router(llama_model_path: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _ORPHAN, str(llama_model_path), str(tmp_path)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 9, done.stderr
    health = done.stdout.strip()[: -len("/v1")] + "/health"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(health, timeout=2)
        except httpx.TransportError:
            return  # the child saw its stdin close and exited
        time.sleep(0.2)
    pytest.fail(f"llama.cpp child still serving {health} after its parent died")


def test_router_health_reports_loading_then_ready(
    llama_model_path: Path, router_factory: Callable[..., RouterThread]
) -> None:
    backend = embedded_backend(llama_model_path, name="embedded", api_key=None)
    router = router_factory(Settings(backends=(backend,),
                                     model_aliases={"default": "smollm2-135m"}))
    seen: list[tuple[int, str]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        resp = httpx.get(router.url + "/health", timeout=10)
        seen.append((resp.status_code, resp.json()["status"]))
        if resp.status_code == 200:
            break
        time.sleep(0.05)
    assert seen[-1] == (200, "ok"), seen
    assert all(s == (503, "loading") for s in seen[:-1]), seen
    entry = httpx.get(router.url + "/health", timeout=10).json()["backends"][0]
    assert entry["load_seconds"] > 0 and entry["context_window"] > 0  # doctor reports these
    reply = httpx.post(router.anthropic_url + "/v1/messages", timeout=120, json={
        "model": "claude-haiku-4-5-20251001", "max_tokens": 12,
        "messages": [{"role": "user", "content": "Say hello."}]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["content"][0]["text"].strip()


def test_doctor_check_reports_model_hash_and_load_time(llama_model_path: Path,
                                                       llama_loop: LoopThread) -> None:
    backend = Backend(name="embedded", type="embedded", context_size=512)
    report = llama_loop.run(doctor_check(backend, MODEL_CACHE))
    assert report.model_path == llama_model_path
    assert report.present and report.sha256_ok is True and report.error is None
    assert report.load_seconds is not None and report.load_seconds > 0


def test_doctor_check_without_the_model_says_so(tmp_path: Path, llama_loop: LoopThread) -> None:
    report = llama_loop.run(doctor_check(Backend(name="e", type="embedded"), tmp_path))
    assert not report.present and report.load_seconds is None
    assert report.error and "model file missing" in report.error


def test_doctor_check_flags_a_corrupted_default_model(tmp_path: Path,
                                                      llama_loop: LoopThread) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF not the real file")
    report = llama_loop.run(doctor_check(Backend(name="e", type="embedded"), tmp_path))
    assert report.present and report.sha256_ok is False and report.load_seconds is None
    assert report.error and "sha256" in report.error


def test_child_config_keeps_the_key_off_the_command_line(llama_model_path: Path) -> None:
    from continuum_cli.backends.embedded import child_config

    cfg = child_config(embedded_backend(llama_model_path, api_key="s3cret"), llama_model_path)
    assert cfg["api_key"] == "s3cret"  # sent on the child's stdin, never in argv or env
    assert json.loads(json.dumps(cfg))["aliases"] == ["smollm2-135m"]
    assert "s3cret" not in " ".join(os.environ.values())
