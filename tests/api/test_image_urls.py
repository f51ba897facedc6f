"""Image URLs are fetched by the router for backends that cannot fetch them (Ollama), and sent
as data URLs; other backends get the URL as it is (checklist item 11)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwAD"
                       "hgGAWjR9awAAAABJRU5ErkJggg==")


class _Images(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/pixel.png":
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)
        elif self.path == "/page.html":
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"hi")
        else:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()


@pytest.fixture
def images() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _config(scripted, kind: str) -> dict:
    return {"backends": [{"name": "b", "type": kind, "url": scripted.url,
                          "models": ["test-model"]}]}


def _ask(router, url: str, in_tool_result: bool = False) -> httpx.Response:
    image = {"type": "image", "source": {"type": "url", "url": url}}
    if in_tool_result:
        messages = [
            {"role": "user", "content": "look"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                               "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": [image]}]}]
    else:
        messages = [{"role": "user", "content": [image, {"type": "text", "text": "what?"}]}]
    return httpx.post(router.anthropic_url + "/v1/messages", json={
        "model": "test-model", "max_tokens": 5, "messages": messages})


@pytest.mark.parametrize("in_tool_result", [False, True], ids=["message", "tool-result"])
def test_ollama_gets_a_data_url(router_factory, scripted, images, in_tool_result) -> None:
    router = router_factory(_config(scripted, "ollama"))
    assert _ask(router, images + "/pixel.png", in_tool_result).status_code == 200
    sent = str(scripted.last_body["messages"])
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in sent
    assert "/pixel.png" not in sent


def test_other_backends_get_the_url(router_factory, scripted, images) -> None:
    router = router_factory(_config(scripted, "vllm"))
    assert _ask(router, images + "/pixel.png").status_code == 200
    assert images + "/pixel.png" in str(scripted.last_body["messages"])


@pytest.mark.parametrize("path,fragment", [("/missing.png", "HTTP 404"),
                                           ("/page.html", "text/html")])
def test_unfetchable_image_is_a_clear_400(router_factory, scripted, images, path,
                                          fragment) -> None:
    router = router_factory(_config(scripted, "ollama"))
    resp = _ask(router, images + path)
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert fragment in resp.json()["error"]["message"]
    assert not scripted.chat_requests()
