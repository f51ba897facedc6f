"""Local stand-ins for the Brave, Serper and Exa search APIs (websearch.md §3), on 127.0.0.1.

Each `FakeSearchServer` is a real HTTP server on an ephemeral port, in a background thread.
It checks what the real API documents (method, path, auth header name and value, required
parameters) and answers in that API's own response and error shapes. `mode` scripts the
next answers:

    ok             results (from `results`, capped at the requested count)
    empty          a valid answer with no results
    rate_limited   429 every time (Brave sends its X-RateLimit-* headers)
    rate_limited_once  429 for the first request, then ok
    quota          Brave: 429 QUOTA_LIMITED with the monthly window spent (no quick retry)
    server_error   HTTP 503
    slow           ok, after `delay` seconds
    no_credits     Exa: 402 NO_MORE_CREDITS

A wrong or missing key is answered the way each provider does it (Brave 422, Serper 403,
Exa 401); `bad_key_status` overrides the status to test the other bad-key answers.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATHS = {"brave": ("GET", "/res/v1/web/search"), "serper": ("POST", "/search"),
         "exa": ("POST", "/search")}
KEY_HEADERS = {"brave": "x-subscription-token", "serper": "x-api-key", "exa": "x-api-key"}
BAD_KEY_STATUS = {"brave": 422, "serper": 403, "exa": 401}

DEFAULT_RESULTS: list[dict[str, Any]] = [
    {"title": "asyncio — Asynchronous I/O",
     "url": "https://docs.python.org/3/library/asyncio.html",
     "snippet": "asyncio is a library to write concurrent code using the async/await syntax.",
     "age": "March 3, 2025", "iso": "2025-03-03T00:00:00"},
    {"title": "Asyncio in depth", "url": "https://blog.example.com/posts/asyncio",
     "snippet": "A long walk through the event loop.", "age": "2 days ago",
     "iso": "2026-11-25T10:00:00Z"},
    {"title": "Example guide", "url": "https://www.example.org/guides/asyncio",
     "snippet": "Guide to <strong>asyncio</strong> &amp; friends.", "age": None, "iso": None},
]


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_target: str


@dataclass
class FakeSearchServer:
    provider: str
    key: str = "test-key-123"
    mode: str = "ok"
    delay: float = 1.0
    bad_key_status: int | None = None
    results: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_RESULTS))
    # Brave's per-second / per-month windows (websearch.md §3.1)
    rate_headers: dict[str, str] = field(default_factory=lambda: {
        "X-RateLimit-Limit": "1, 15000", "X-RateLimit-Policy": "1;w=1, 15000;w=2592000",
        "X-RateLimit-Remaining": "0, 14000", "X-RateLimit-Reset": "0, 1419704"})
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --

    def start(self) -> FakeSearchServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeSearchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def queries(self) -> list[str]:
        return [self.query_of(r) for r in self.requests]

    def query_of(self, req: RecordedRequest) -> str:
        if self.provider == "brave":
            return req.params.get("q", "")
        return str((req.body or {}).get("q" if self.provider == "serper" else "query", ""))

    # -- answering --

    def answer(self, req: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        self.requests.append(req)
        problem = self._check(req)
        if problem is not None:
            return problem
        mode = self.mode
        if mode == "rate_limited_once":
            mode = "rate_limited" if len(self.requests) == 1 else "ok"
        if mode == "slow":
            time.sleep(self.delay)
            mode = "ok"
        return self._answer_mode(mode, req)

    def _answer_mode(self, mode: str, req: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        if mode == "rate_limited":
            return self._rate_limited()
        if mode == "quota":
            headers = {**self.rate_headers, "X-RateLimit-Remaining": "1, 0",
                       "X-RateLimit-Reset": "1, 1419704"}
            return 429, headers, _brave_error(429, "QUOTA_LIMITED", "Monthly quota exceeded.")
        if mode == "server_error":
            return 503, {}, {"message": "Service Unavailable", "statusCode": 503}
        if mode == "no_credits":
            return 402, {}, {"requestId": "r1", "error": "You have run out of credits",
                             "tag": "NO_MORE_CREDITS"}
        items = [] if mode == "empty" else self.results[: self._count(req)]
        return 200, self._ok_headers(), self._render(req, items)

    def _ok_headers(self) -> dict[str, str]:
        return dict(self.rate_headers) if self.provider == "brave" else {}

    def _rate_limited(self) -> tuple[int, dict[str, str], Any]:
        if self.provider == "brave":
            return 429, dict(self.rate_headers), _brave_error(
                429, "RATE_LIMITED", "Request rate limit exceeded for plan.")
        if self.provider == "serper":
            return 429, {}, {"message": "Too many requests", "statusCode": 429}
        return 429, {}, {"requestId": "r1", "error": "rate limit exceeded"}

    def _check(self, req: RecordedRequest) -> tuple[int, dict[str, str], Any] | None:
        method, path = PATHS[self.provider]
        if req.path != path:
            return 404, {}, {"message": f"no route {req.path}"}
        if req.method != method:
            return 405, {}, {"message": f"method {req.method} not allowed"}
        sent = req.headers.get(KEY_HEADERS[self.provider])
        if sent != self.key:
            return self._bad_key(sent)
        return self._check_params(req)

    def _bad_key(self, sent: str | None) -> tuple[int, dict[str, str], Any]:
        status = self.bad_key_status or BAD_KEY_STATUS[self.provider]
        if self.provider == "brave" and status == 422:
            if sent is None:
                return 422, {}, _brave_error(422, "VALIDATION", "Unable to validate request",
                                             meta={"errors": [{"loc": ["header",
                                                                       "x-subscription-token"]}]})
            return 422, {}, _brave_error(422, "SUBSCRIPTION_TOKEN_INVALID",
                                         "The provided subscription token is invalid.")
        if self.provider == "exa":
            return status, {}, {"requestId": "r1", "error": "Invalid API key"}
        return status, {}, {"message": "Unauthorized. Sign up for a free account.",
                            "statusCode": status}

    def _check_params(self, req: RecordedRequest) -> tuple[int, dict[str, str], Any] | None:
        if self.provider == "brave":
            count = int(req.params.get("count", "20"))
            if not req.params.get("q") or not 1 <= count <= 20:
                return 422, {}, _brave_error(422, "VALIDATION", "Unable to validate request")
            return None
        body = req.body if isinstance(req.body, dict) else {}
        if req.headers.get("content-type", "").split(";")[0] != "application/json":
            return 400, {}, {"message": "expected application/json", "statusCode": 400}
        field_name = "q" if self.provider == "serper" else "query"
        if not body.get(field_name):
            return 400, {}, {"message": f"Missing {field_name}", "statusCode": 400}
        return None

    def _count(self, req: RecordedRequest) -> int:
        if self.provider == "brave":
            return int(req.params.get("count", "20"))
        body = req.body or {}
        return int(body.get("num" if self.provider == "serper" else "numResults", 10))

    def _render(self, req: RecordedRequest, items: list[dict[str, Any]]) -> Any:
        if self.provider == "brave":
            return _brave_body(self.query_of(req), items)
        if self.provider == "serper":
            return _serper_body(req.body, items)
        return _exa_body(items)


def _brave_error(status: int, code: str, detail: str, meta: dict[str, Any] | None = None) -> Any:
    return {"type": "ErrorResponse",
            "error": {"id": str(uuid.uuid4()), "status": status, "code": code, "detail": detail,
                      "meta": meta or {"component": "rate_limiter"}},
            "time": int(time.time())}


def _brave_body(query: str, items: list[dict[str, Any]]) -> Any:
    results = []
    for item in items:
        entry = {"type": "search_result", "title": item["title"], "url": item["url"],
                 "description": item["snippet"], "is_source_local": False,
                 "is_source_both": False, "family_friendly": True}
        if item.get("age"):
            entry["age"] = item["age"]
        if item.get("iso"):
            entry["page_age"] = item["iso"]
        results.append(entry)
    return {"type": "search", "query": {"original": query, "more_results_available": False},
            "web": {"type": "search", "results": results, "family_friendly": True}}


def _serper_body(body: Any, items: list[dict[str, Any]]) -> Any:
    organic = []
    for position, item in enumerate(items, 1):
        entry = {"title": item["title"], "link": item["url"], "snippet": item["snippet"],
                 "position": position}
        if item.get("age"):
            entry["date"] = item["age"]
        organic.append(entry)
    params = {"q": body.get("q"), "gl": body.get("gl", "us"), "hl": "en", "type": "search",
              "num": body.get("num", 10), "engine": "google"}
    return {"searchParameters": params, "organic": organic, "credits": 1}


def _exa_body(items: list[dict[str, Any]]) -> Any:
    results = []
    for n, item in enumerate(items):
        entry = {"id": item["url"], "title": item["title"], "url": item["url"],
                 "highlights": [item["snippet"]], "highlightScores": [0.5], "score": 0.9 - n / 10}
        if item.get("iso"):
            entry["publishedDate"] = item["iso"]
        results.append(entry)
    return {"requestId": "req-1", "resolvedSearchType": "neural", "results": results,
            "costDollars": {"total": 0.005}}


def _handler_for(fake: FakeSearchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._handle()

        def do_POST(self) -> None:  # noqa: N802
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, headers, payload = fake.answer(_record(self, raw))
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


def _record(handler: BaseHTTPRequestHandler, raw: bytes) -> RecordedRequest:
    parts = urlsplit(handler.path)
    params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    headers = {k.lower(): v for k, v in handler.headers.items()}
    return RecordedRequest(handler.command, parts.path, params, headers, body, handler.path)
