"""Running out of file descriptors: the soft limit is raised at start-up; when descriptors
still run out, answers are 529 (Anthropic) / 503 (OpenAI), the router keeps serving, logs it
at most once a second and does not spin. Real `continuum serve` processes with low limits
(set in `preexec_fn`), a scripted backend, raw concurrent clients."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from continuum_cli.server.resources import LogThrottle, is_exhausted, raise_open_file_limit
from tests.fakes.scripted_backend import ScriptedBackend

ROOT = Path(__file__).resolve().parents[2]
HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


@pytest.fixture(autouse=True, scope="module")
def _room_for_the_test_process() -> Iterator[None]:
    """This process holds the clients' and the scripted backend's sockets (2 per stream)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (before[1], before[1]))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def router(tmp_path: Path, backend: ScriptedBackend, soft: int, hard: int
           ) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    """`continuum serve` with RLIMIT_NOFILE (soft, hard), its log in a file."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "backends": [{"name": "scripted", "type": "generic", "url": backend.url,
                      "models": list(backend.models)}],
        "model_aliases": {"default": backend.models[0]},
        "state": {"path": str(tmp_path / "state.db")},
        "logging": {"level": "info", "format": "json"},
    }))
    port = _free_port()
    log_path = tmp_path / "router.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "continuum_cli", "serve", "--config",
                                 str(config), "--bind", f"127.0.0.1:{port}"],
                                env=env, stdout=log, stderr=log, preexec_fn=limits)
    try:
        _wait_healthy(port, proc, log_path)
        yield port, proc, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"router exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"router not healthy: {log_path.read_text()[-3000:]}")


def _records(log_path: Path) -> list[dict[str, object]]:
    out = []
    for line in log_path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"message": line, "level": "raw"})
    return out


ANTHROPIC = ("/anthropic/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 20,
                                         "stream": True,
                                         "messages": [{"role": "user", "content": "hi"}]})
OPENAI = ("/v1/chat/completions", {"model": "test-model", "stream": True,
                                    "messages": [{"role": "user", "content": "hi"}]})


async def _stream(port: int, path: str, body: dict[str, object]) -> tuple[int, str]:
    """One streamed request on its own connection: (status, whole response text); status 0
    when the connection failed or closed without an answer."""
    payload = json.dumps(body).encode()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0, ""
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
                     + payload)
        await writer.drain()
        data = await reader.read()
    except OSError:
        return 0, ""
    finally:
        writer.close()
    match = re.match(rb"HTTP/1.1 (\d+)", data)
    return (int(match.group(1)) if match else 0), data.decode("utf-8", "replace")


async def _many(port: int, n: int, target: tuple[str, dict[str, object]]
                ) -> list[tuple[int, str]]:
    return await asyncio.wait_for(asyncio.gather(*(_stream(port, *target) for _ in range(n))),
                                  180)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- pure parts ------------------------------------------------------------------------------
def test_log_throttle_counts_what_it_left_out() -> None:
    throttle = LogThrottle(interval=1.0)
    assert throttle.allow(10.0) == 0
    assert [throttle.allow(10.0 + i / 10) for i in range(1, 10)] == [None] * 9
    assert throttle.allow(11.0) == 9
    assert throttle.allow(11.5) is None and throttle.allow(12.5) == 1


@pytest.mark.parametrize(("error", "exhausted"), [
    (OSError(24, "Too many open files"), True), (OSError(23, "Too many open files in system"),
                                                  True),
    (OSError(111, "Connection refused"), False), (ValueError("x"), False)])
def test_is_exhausted(error: BaseException, exhausted: bool) -> None:
    assert is_exhausted(error) is exhausted


def test_soft_limit_is_raised_to_the_hard_limit() -> None:
    code = ("import resource, logging, sys; logging.basicConfig(level='INFO', stream=sys.stdout)\n"
            "from continuum_cli.server.resources import raise_open_file_limit\n"
            "print(raise_open_file_limit()); print(raise_open_file_limit())\n"
            "print(resource.getrlimit(resource.RLIMIT_NOFILE))")
    hard = min(HARD, 4096)
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
        capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert f"open-file limit raised from 256 to {hard}" in done.stdout
    assert lines[-3:] == [f"(256, {hard})", "None", f"({hard}, {hard})"]
    assert raise_open_file_limit() is None  # this process: already at the hard limit


# -- a real router -----------------------------------------------------------------------------
def test_400_streams_with_a_soft_limit_of_256(tmp_path: Path) -> None:
    with ScriptedBackend() as backend:
        backend.chunk_delay = 0.3  # every stream is still open when the last one starts
        with router(tmp_path, backend, soft=256, hard=HARD) as (port, proc, log_path):
            results = asyncio.run(_many(port, 400, ANTHROPIC))
            statuses = [status for status, _ in results]
            assert statuses.count(200) == 400, sorted(set(statuses))
            assert all("event: message_stop" in text for _, text in results)
            raised = [r for r in _records(log_path)
                      if "open-file limit raised from 256" in str(r.get("message"))]
            assert len(raised) == 1
            assert proc.poll() is None


@pytest.mark.parametrize("target", [ANTHROPIC, OPENAI], ids=["anthropic", "openai"])
def test_out_of_descriptors_answers_and_keeps_serving(tmp_path: Path,
                                                      target: tuple[str, dict[str, object]]
                                                      ) -> None:
    expected = 529 if target is ANTHROPIC else 503
    with ScriptedBackend() as backend:
        backend.chunk_delay = 0.4
        # hard limit low too: the router cannot raise it, so descriptors do run out
        with router(tmp_path, backend, soft=72, hard=72) as (port, proc, log_path):
            started = time.monotonic()
            results = asyncio.run(_many(port, 150, target))
            elapsed = time.monotonic() - started
            statuses = [status for status, _ in results]
            assert statuses.count(200) >= 5  # some were served all along
            refused = [text for status, text in results if status == expected]
            assert refused, sorted(set(statuses))
            assert set(statuses) <= {200, expected, 0}
            assert statuses.count(0) <= len(statuses) // 2
            for text in refused:
                body = json.loads(text.partition("\r\n\r\n")[2])
                if target is ANTHROPIC:
                    assert body["type"] == "error"
                    assert body["error"]["type"] == "overloaded_error"
                else:
                    assert body["error"]["code"] == 503
                assert "file descriptors" in text
            # the router is still serving, and says so in its log at most once a second
            after = asyncio.run(_many(port, 3, target))
            assert [status for status, _ in after] == [200] * 3
            assert proc.poll() is None
            records = _records(log_path)
            about = [r for r in records if "file descriptors" in str(r.get("message"))]
            assert 1 <= len(about) <= 2 * (elapsed + 2), len(about)
            assert not [r for r in records if r.get("exc") or r.get("level") == "raw"
                        and "Traceback" in str(r.get("message"))]


def test_no_busy_loop_while_descriptors_stay_exhausted(tmp_path: Path) -> None:
    with ScriptedBackend() as backend, \
            router(tmp_path, backend, soft=64, hard=64) as (port, proc, log_path):
        held: list[socket.socket] = []
        try:
            for _ in range(120):  # idle connections take every descriptor the router has
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(1.0)  # let the router accept what it can
            before = _cpu_seconds(proc.pid)
            time.sleep(3.0)  # connections wait in the backlog, the socket stays readable
            used = _cpu_seconds(proc.pid) - before
            assert used < 1.0, f"router used {used:.2f} s of CPU in 3 s while exhausted"
            assert proc.poll() is None
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        about = [r for r in _records(log_path) if "file descriptors" in str(r.get("message"))]
        assert 1 <= len(about) <= 10
