"""PDFs for local models: base64, url and file sources become text with page markers."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import httpx
import pytest

from tests import pdfgen
from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend
from tests.router import RouterThread

MODEL = "claude-sonnet-4-5"
PAGES = [["Quarterly report", "Revenue grew 12 percent."], ["Costs fell in March."],
         ["Outlook: steady (no change)."]]
REPORT = pdfgen.pdf(PAGES, title="Q1 Report")
EXPECTED = ("--- page 1 ---\nQuarterly report\nRevenue grew 12 percent.\n\n"
            "--- page 2 ---\nCosts fell in March.\n\n"
            "--- page 3 ---\nOutlook: steady (no change).")


@pytest.fixture
def pdf_server() -> Iterator[Callable[[str, bytes, str], str]]:
    """A local HTTP server: `serve(path, body, content_type) -> url`."""
    routes: dict[str, tuple[bytes, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body, kind = routes.get(self.path, (b"missing", "text/plain"))
            self.send_response(200 if self.path in routes else 404)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def serve(path: str, body: bytes, kind: str = "application/pdf") -> str:
        routes[path] = (body, kind)
        return f"http://127.0.0.1:{server.server_address[1]}{path}"

    yield serve
    server.shutdown()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def document(source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "document", "source": source, **extra}


def ask(router: RouterThread, blocks: list[dict[str, Any]], stream: bool = False) -> Any:
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    messages = [{"role": "user", "content": [*blocks, {"type": "text", "text": "Summarise."}]}]
    if stream:
        with client.messages.stream(model=MODEL, max_tokens=20, messages=messages) as events:
            return events.get_final_message()
    return client.messages.create(model=MODEL, max_tokens=20, messages=messages)


def sent_text(scripted: ScriptedBackend) -> str:
    content = scripted.chat_requests()[-1].body["messages"][-1]["content"]
    return content if isinstance(content, str) else "\n".join(
        p.get("text", "") for p in content)


@pytest.mark.parametrize("kind", ["base64", "url", "file"])
def test_each_page_reaches_the_backend_with_markers(kind: str, router: RouterThread,
                                                    scripted: ScriptedBackend,
                                                    pdf_server: Callable[..., str]) -> None:
    if kind == "base64":
        source = {"type": "base64", "media_type": "application/pdf", "data": b64(REPORT)}
    elif kind == "url":
        source = {"type": "url", "url": pdf_server("/q1.pdf", REPORT)}
    else:
        client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k")
        uploaded = client.beta.files.upload(file=("q1.pdf", REPORT, "application/pdf"))
        source = {"type": "file", "file_id": uploaded.id}
    ask(router, [document(source, title="The report", context="Shared by finance")],
        stream=kind == "url")
    text = sent_text(scripted)
    assert "Document: The report\nShared by finance\n\n" + EXPECTED in text


def test_the_pdf_title_is_used_when_the_block_has_none(router: RouterThread,
                                                       scripted: ScriptedBackend) -> None:
    ask(router, [document({"type": "base64", "media_type": "application/pdf",
                           "data": b64(REPORT)})])
    assert "Document: Q1 Report\n\n" + EXPECTED in sent_text(scripted)


def test_a_pdf_inside_a_tool_result(router: RouterThread, scripted: ScriptedBackend) -> None:
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    client.messages.create(model=MODEL, max_tokens=20, messages=[
        {"role": "user", "content": "Read q1.pdf"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read",
                                           "input": {"file_path": "q1.pdf"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [document({
                                          "type": "base64", "media_type": "application/pdf",
                                          "data": b64(REPORT)})]}]}])
    tool = [m for m in scripted.chat_requests()[-1].body["messages"] if m["role"] == "tool"]
    assert EXPECTED in str(tool[-1]["content"]).replace("\\n", "\n")


def test_count_tokens_counts_the_extracted_text(router: RouterThread) -> None:
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    small = pdfgen.pdf([["a"]])
    big = pdfgen.pdf([[f"line {i} of many words to count" for i in range(40)]] * 3)

    def count(data: bytes) -> int:
        return client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": [
            document({"type": "base64", "media_type": "application/pdf",
                      "data": b64(data)})]}]).input_tokens

    assert count(big) > count(small) + 3 * 40 * 30 / 3.5 * 0.9
    assert count(small) < 100  # text, not the flat image estimate for an unreadable PDF


@pytest.mark.parametrize(("data", "why"), [
    (pdfgen.pdf([None, None]), "has no extractable text (2 pages; probably scanned images)"),
    (pdfgen.encrypted(REPORT), "it is encrypted (password-protected)"),
    (b"%PDF-1.4 not really", "it is not a readable PDF"),
    (b"plain", "is not a PDF"),
])
def test_unreadable_pdfs_are_400_naming_the_document(router: RouterThread, data: bytes,
                                                     why: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        ask(router, [document({"type": "base64", "media_type": "application/pdf",
                               "data": b64(data)}, title="scan.pdf")])
    message = info.value.body["error"]["message"]  # type: ignore[index]
    assert message.startswith('PDF document "scan.pdf" (messages.0.content.0)'), message
    assert why in message


def test_too_many_pages(scripted: ScriptedBackend,
                        router_factory: Callable[..., RouterThread]) -> None:
    router = router_factory(basic_config(scripted, documents={"max_pages": 2}))
    with pytest.raises(anthropic.BadRequestError, match="3 pages; at most 2 are read"):
        ask(router, [document({"type": "base64", "media_type": "application/pdf",
                               "data": b64(REPORT)})])


def test_url_failures_are_400(router: RouterThread, pdf_server: Callable[..., str]) -> None:
    missing = pdf_server("/elsewhere", b"x").replace("/elsewhere", "/gone.pdf")
    for url, message in ((missing, "HTTP 404"), ("ftp://x/y.pdf", "http(s)"),
                         (pdf_server("/zip", b"PK\x03\x04", "application/zip"),
                          "code execution")):
        with pytest.raises(anthropic.BadRequestError, match=message.replace("(", r"\(")
                           .replace(")", r"\)")):
            ask(router, [document({"type": "url", "url": url})])


def test_a_hostile_pdf_is_400_in_time_while_other_requests_are_served(
        scripted: ScriptedBackend, router_factory: Callable[..., RouterThread]) -> None:
    router = router_factory(basic_config(scripted, documents={"timeout": "2s"}))
    hostile = b64(pdfgen.slow_pdf(1_000_000))
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [
        document({"type": "base64", "media_type": "application/pdf", "data": hostile})]}]}
    result: dict[str, Any] = {}

    def send() -> None:
        started = time.monotonic()
        result["resp"] = httpx.post(router.anthropic_url + "/v1/messages", json=body,
                                    timeout=60)
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=send)
    thread.start()
    served = 0
    while thread.is_alive():  # plain requests keep being answered meanwhile, promptly
        started = time.monotonic()
        resp = httpx.post(router.anthropic_url + "/v1/messages", timeout=10, json={
            "model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200 and time.monotonic() - started < 2.0
        served += 1
    thread.join()
    assert served >= 3
    resp = result["resp"]
    assert resp.status_code == 400 and result["seconds"] < 2 + 8  # the limit + start-up slack
    assert resp.json()["error"]["message"].endswith("reading it took longer than 2s "
                                                    "(documents.timeout)")


def test_openai_file_parts_become_text_for_the_backend(router: RouterThread,
                                                       scripted: ScriptedBackend) -> None:
    import openai

    client = openai.OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0)
    stored = client.files.create(file=("notes.txt", b"stored notes: 7 apples"),
                                 purpose="user_data")
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "q1.pdf",
                                  "file_data": "data:application/pdf;base64," + b64(REPORT)}},
        {"type": "file", "file": {"file_id": stored.id}},
        {"type": "text", "text": "Summarise both."}]}])
    parts = scripted.chat_requests()[-1].body["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "Document: q1.pdf\n\n" + EXPECTED}
    assert parts[1] == {"type": "text", "text": "Document: notes.txt\n\nstored notes: 7 apples"}
    assert parts[2] == {"type": "text", "text": "Summarise both."}
    with pytest.raises(openai.BadRequestError, match="encrypted"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
            {"type": "file", "file": {"file_data": b64(pdfgen.encrypted(REPORT))}}]}])


@pytest.mark.parametrize(("make", "status"), [
    (pdfgen.nested_pdf, 400), (lambda: pdfgen.bomb_pdf(300), 400),
    (pdfgen.xref_loop_pdf, 200),  # a self-referencing xref chain is read once, not looped
], ids=["nested", "bomb", "xref_loop"])
def test_other_hostile_pdfs_are_answered_at_once(router: RouterThread, make: Any,
                                                 status: int) -> None:
    started = time.monotonic()
    resp = httpx.post(router.anthropic_url + "/v1/messages", timeout=60, json={
        "model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [
            document({"type": "base64", "media_type": "application/pdf",
                      "data": b64(make())})]}]})
    assert time.monotonic() - started < 20  # well inside documents.timeout (20 s)
    assert resp.status_code == status, resp.text
    if status == 400:
        assert resp.json()["error"]["message"].startswith("PDF document at messages.0")
