"""kill -9 one of three backends under load: no request fails, streams on it end with one
`event: error` within a second, and it gets traffic again soon after it is restarted.

The backends run in their own processes, so the kill is a real SIGKILL: the kernel resets
their connections, as when a GPU server crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 1.0  # health_check.interval of every backend


class BackendProcess:
    def __init__(self, port: int = 0, *, words: int = 5, chunk_delay: float = 0.0) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.scripted_backend", "--port", str(port),
             "--models", "m", "--words", str(words), "--chunk-delay", str(chunk_delay)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        assert line.startswith("port "), f"backend did not start: {line!r}"
        self.port = int(line.split()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chat_requests(self) -> int:
        resp = httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=10)
        return int(resp.json()["chat_requests"])

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def processes() -> Iterator[list[BackendProcess]]:
    started: list[BackendProcess] = []
    try:
        # long streams: 300 events 20 ms apart, so streams are still running at the kill
        started.extend(BackendProcess(words=300, chunk_delay=0.02) for _ in range(3))
        yield started
    finally:
        for backend in started:
            backend.stop()


@dataclass
class StreamLog:
    events: list[tuple[float, str]] = field(default_factory=list)
    failed: str | None = None


def read_stream(url: str, log: StreamLog, started: threading.Event) -> None:
    body = {"model": "m", "max_tokens": 2000, "stream": True,
            "messages": [{"role": "user", "content": "a long answer"}]}
    try:
        with httpx.stream("POST", url + "/anthropic/v1/messages", json=body,
                          timeout=60) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    log.events.append((time.monotonic(), line[7:]))
                    if line[7:] == "content_block_delta":
                        started.set()
    except Exception as exc:  # the test asserts on it
        log.failed = repr(exc)


def test_kill_9_during_load(router_factory, processes: list[BackendProcess]) -> None:
    config = {"backends": [
        {"name": f"gpu-{name}", "type": "vllm", "url": p.url, "models": ["m"],
         "health_check": {"interval": f"{INTERVAL}s", "timeout": "1s"}}
        for name, p in zip("abc", processes, strict=True)]}
    router = router_factory(config)
    victim = processes[1]

    # six long streams, spread over the three backends by least_outstanding
    logs = [StreamLog() for _ in range(6)]
    started = [threading.Event() for _ in logs]
    readers = [threading.Thread(target=read_stream, args=(router.url, log, event), daemon=True)
               for log, event in zip(logs, started, strict=True)]
    for reader in readers:
        reader.start()
    for event in started:
        assert event.wait(30), "a stream did not start"

    done = 0
    lock = threading.Lock()
    killed_at: list[float] = []
    client = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=16))

    def one(_: int) -> int:
        nonlocal done
        resp = client.post(router.url + "/v1/chat/completions", json={
            "model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
        with lock:
            done += 1
            if done == 300:
                victim.kill9()
                killed_at.append(time.monotonic())
        return resp.status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(one, range(1000)))
    client.close()
    assert killed_at, "the backend was not killed"
    assert Counter(codes) == {200: 1000}  # no failed request

    for reader in readers:
        reader.join(60)
    assert not [log.failed for log in logs if log.failed]
    cut = [log for log in logs if log.events[-1][1] == "error"]
    finished = [log for log in logs if log.events[-1][1] == "message_stop"]
    assert len(cut) + len(finished) == len(logs)
    assert cut, "no stream was on the killed backend"
    for log in cut:
        names = [name for _, name in log.events]
        assert names.count("error") == 1 and "message_stop" not in names
        assert log.events[-1][0] - killed_at[0] <= 1.0

    health = httpx.get(router.url + "/health", timeout=30).json()
    entry = next(b for b in health["backends"] if b["name"] == "gpu-b")
    assert entry["status"] == "down" and entry["last_error"]

    # restarted on the same port: traffic again within two health intervals
    restarted = BackendProcess(victim.port)
    processes.append(restarted)
    back_at = time.monotonic()
    while restarted.chat_requests() == 0:
        assert time.monotonic() - back_at <= 2 * INTERVAL, "no traffic after the restart"
        resp = httpx.post(router.url + "/v1/chat/completions", timeout=30, json={
            "model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200
        time.sleep(0.05)
