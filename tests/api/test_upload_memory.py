"""A 400 MB upload goes to disk as it arrives: the router's peak RSS stays under 100 MB."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from tests.fakes.scripted_backend import ScriptedBackend

ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = "rss-boundary-42"
SIZE = 400 * 10**6


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had (kB in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def body() -> Iterator[bytes]:
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
           "filename=\"big.bin\"\r\n\r\n").encode()
    piece = bytes(range(256)) * 4096  # 1 MiB, not all zeros
    for _ in range(SIZE // len(piece)):
        yield piece
    yield piece[:SIZE % len(piece)]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_router_rss_stays_under_100mb_during_a_400mb_upload(
        tmp_path: Path, scripted: ScriptedBackend) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "backends": [{"name": "s", "type": "generic", "url": scripted.url,
                      "models": list(scripted.models)}],
        "files": {"dir": str(tmp_path / "blobs")}, "state": {"path": str(tmp_path / "s.db")}}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuum_cli", "serve", "--config", str(config), "--bind",
         f"127.0.0.1:{port}"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        before = peak_rss_mb(proc.pid)
        resp = httpx.post(url + "/anthropic/v1/files", content=body(), timeout=300,
                          headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["size_bytes"] == SIZE
        peak = peak_rss_mb(proc.pid)
        assert peak < 100, f"peak RSS {peak:.1f} MB (before the upload: {before:.1f} MB)"
        stored = tmp_path / "blobs" / resp.json()["id"]
        assert stored.stat().st_size == SIZE
        with stored.open("rb") as f:
            assert f.read(1024) == bytes(range(256)) * 4
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
