"""The upload routes read their body as it arrives; every other route keeps the body limit."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend
from tests.rawhttp import exchange
from tests.router import RouterThread

BOUNDARY = "b0undary"


def head(path: str, length: int | None, extra: str = "") -> bytes:
    size = f"content-length: {length}\r\n" if length is not None else \
        "transfer-encoding: chunked\r\n"
    return (f"POST {path} HTTP/1.1\r\nhost: x\r\n{size}"
            f"content-type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n").encode()


def part_head(name: str = "f.bin") -> bytes:
    return (f"--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\n\r\n").encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.fixture
def blobs(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def upload_router(scripted: ScriptedBackend, router_factory: Callable[..., RouterThread],
                  blobs: Path) -> RouterThread:
    return router_factory(basic_config(
        scripted, files={"dir": str(blobs)},
        server={"max_body_bytes": "64KiB", "header_timeout": "2s"}))


def wait_empty(folder: Path) -> None:
    for _ in range(200):
        if not folder.exists() or not os.listdir(folder):
            return
        time.sleep(0.05)
    raise AssertionError(f"left in {folder}: {os.listdir(folder)}")


def test_uploads_are_not_bound_by_the_body_limit_other_routes_are(
        upload_router: RouterThread) -> None:
    big = os.urandom(1 << 20)  # 16 x server.max_body_bytes
    resp = httpx.post(upload_router.anthropic_url + "/v1/files",
                      files={"file": ("big.bin", big)})
    assert resp.status_code == 200 and resp.json()["size_bytes"] == len(big)
    file_id = resp.json()["id"]
    assert httpx.get(upload_router.url + f"/v1/files/{file_id}/content").content == big
    resp = httpx.post(upload_router.anthropic_url + "/v1/messages",
                      content=b'{"x": "' + b"a" * (1 << 20) + b'"}',
                      headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "server.max_body_bytes" in resp.text


def test_a_client_that_leaves_mid_upload_leaves_nothing(upload_router: RouterThread,
                                                        blobs: Path) -> None:
    sock = socket.create_connection(("127.0.0.1", upload_router.port))
    sock.sendall(head("/anthropic/v1/files", 10_000_000) + part_head() + b"x" * 3_000_000)
    for _ in range(200):  # the partial file exists while the upload runs ...
        if blobs.exists() and os.listdir(blobs):
            break
        time.sleep(0.05)
    assert os.listdir(blobs)
    sock.close()
    wait_empty(blobs)  # ... and is gone once the client left
    listed = httpx.get(upload_router.anthropic_url + "/v1/files").json()
    assert listed["data"] == []


def test_a_stalled_upload_times_out_408_and_leaves_nothing(upload_router: RouterThread,
                                                           blobs: Path) -> None:
    answer = exchange(upload_router.port, head("/anthropic/v1/files", 10_000) + part_head()
                      + b"x" * 100, until=b"}}", timeout=15)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"timeout_error" in answer
    wait_empty(blobs)


def test_the_time_limit_is_per_read_not_for_the_whole_upload(
        upload_router: RouterThread) -> None:
    sock = socket.create_connection(("127.0.0.1", upload_router.port), timeout=20)
    sock.sendall(head("/anthropic/v1/files", None) + b"%x\r\n%b\r\n" % (
        len(part_head()), part_head()))
    started = time.monotonic()
    while time.monotonic() - started < 3.0:  # longer than server.header_timeout (2 s) in all
        sock.sendall(b"400\r\n" + b"y" * 1024 + b"\r\n")
        time.sleep(0.25)
    sock.sendall(b"%x\r\n%b\r\n0\r\n\r\n" % (len(TAIL), TAIL))
    answer = b""
    while b"}" not in answer:
        answer += sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_expect_100_continue_is_answered_when_the_route_reads(
        upload_router: RouterThread) -> None:
    body = part_head("c.txt") + b"hello" + TAIL
    sock = socket.create_connection(("127.0.0.1", upload_router.port), timeout=10)
    sock.sendall(head("/anthropic/v1/files", len(body), "expect: 100-continue\r\n"))
    interim = sock.recv(65536)
    assert interim.startswith(b"HTTP/1.1 100 ")
    sock.sendall(body)
    answer = b""
    while b"}" not in answer:
        answer += sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"size_bytes":5' in answer


def test_keep_alive_after_a_complete_upload(upload_router: RouterThread) -> None:
    with httpx.Client(base_url=upload_router.url) as client:
        for i in range(3):
            resp = client.post("/v1/files", files={"file": (f"{i}.txt", b"x" * (i + 1))},
                               data={"purpose": "user_data"})
            assert resp.status_code == 200
        assert client.get("/v1/files").json()["data"][0]["filename"] == "2.txt"


def test_an_unwritable_files_dir_is_a_clear_500(scripted: ScriptedBackend, tmp_path: Path,
                                               router_factory: Callable[..., RouterThread]
                                               ) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the folder should be")
    router = router_factory(basic_config(scripted, files={"dir": str(blocker / "files")}))
    resp = httpx.post(router.anthropic_url + "/v1/files", files={"file": ("a.txt", b"abc")})
    assert resp.status_code == 500
    assert resp.json()["error"]["message"].startswith("cannot store the file in files.dir")
