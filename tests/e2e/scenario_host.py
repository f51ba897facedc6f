"""Host one Claude Code scenario inside a loopback-only network namespace.

Run by the e2e tests as `unshare -n -- python -m tests.e2e.scenario_host SPEC.json` from the
repository root. This process is already inside the new namespace: it brings `lo` up, then
starts everything the scenario needs IN this namespace (the router, the scripted or the real
llama.cpp backend, the search-provider fake, the TLS page), runs `claude -p ...` headless
with a fresh HOME, and writes `result.json` into the spec's `out` directory:

    claude_rc, claude (parsed --output-format json), claude_stderr,
    inbound  [{path, model, stream}]          every request Claude Code sent the router
    upstream [{path, stream, body}]           every chat request the router sent a backend
    provider [query, ...]                     search-provider queries
    page_hits                                 GETs of the TLS page
    log      [str]                            router log lines (continuum.*)
    error                                     set when the scenario could not run

The tests read it and assert; this module only sets up, runs and records.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from continuum_cli.config.models import Backend, Settings, WebSearchSettings
from tests.e2e import replies
from tests.fakes.scripted_backend import ScriptedBackend
from tests.fakes.search_providers import FakeSearchServer
from tests.router import RouterThread

SCENARIOS: dict[str, Callable[[Host], None]] = {}
PAGE_SECRET = "ZEBRA-7731"
REAL_COMMAND = "echo continuum-real-engine"
# GBNF: one sentence of at most ~120 characters, so the answer ends on any CPU.
ONE_SENTENCE = r'root ::= [A-Za-z] [A-Za-z0-9 ,]{1,118} [.!]'
PAGE_HTML = (f"<html><head><title>Continuum e2e page</title></head><body><h1>Field notes</h1>"
             f"<p>The secret word is {PAGE_SECRET}.</p></body></html>")


def scenario(fn: Callable[[Host], None]) -> Callable[[Host], None]:
    SCENARIOS[fn.__name__] = fn
    return fn


class LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


class RecordingApp:
    """Wraps the router's app: records what Claude Code sent before handling it."""

    def __init__(self, inner: Any, seen: list[dict[str, Any]]) -> None:
        self._inner = inner
        self._seen = seen

    async def handle(self, request: Any) -> Any:
        entry: dict[str, Any] = {"path": request.path, "method": request.method}
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            body = None
        if isinstance(body, dict):
            entry.update(model=body.get("model"), stream=body.get("stream", False),
                         safeguards="safeguards" in body)
        self._seen.append(entry)
        try:
            response = await self._inner.handle(request)
        except Exception as exc:
            entry["status"] = getattr(exc, "status", 500)
            raise
        entry["status"] = response.status
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Host:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.out = Path(spec["out"])
        self.result: dict[str, Any] = {"inbound": [], "upstream": [], "provider": [],
                                       "page_hits": 0, "log": []}
        self.logs = LogCollector()
        self.router: RouterThread | None = None
        self.backend: ScriptedBackend | None = None
        self.provider: FakeSearchServer | None = None
        self.page: ThreadingHTTPServer | None = None
        self.claude_args: list[str] = []
        self.claude_env: dict[str, str] = {}
        self.work_files: dict[str, bytes] = {}  # written into Claude Code's working directory
        self._upstream_calls: list[dict[str, Any]] = []

    # -- services --

    def start_router(self, settings: Settings, ready_timeout: float = 180.0) -> None:
        root = logging.getLogger("continuum")
        root.setLevel(logging.DEBUG)
        root.addHandler(self.logs)
        self.router = RouterThread(settings).start()
        app = self.router.service.server.app
        self.router.service.server.app = RecordingApp(app, self.result["inbound"])
        self._record_upstream(self.router.service.state.upstream)
        self._wait_healthy(ready_timeout)

    def _record_upstream(self, upstream: Any) -> None:
        calls = self._upstream_calls
        chat, stream_chat = upstream.chat, upstream.stream_chat

        async def recorded_chat(backend: Any, body: dict[str, Any]) -> Any:
            calls.append({"backend": backend.name, "stream": False, "via": "chat",
                          "body": body})
            return await chat(backend, body)

        def recorded_stream(backend: Any, body: dict[str, Any]) -> Any:
            calls.append({"backend": backend.name, "stream": bool(body.get("stream")),
                          "via": "stream_chat", "body": body})
            return stream_chat(backend, body)

        upstream.chat, upstream.stream_chat = recorded_chat, recorded_stream

    def _wait_healthy(self, timeout: float) -> None:
        assert self.router is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.router.url + "/health", timeout=5) as resp:
                    if json.load(resp).get("status") == "ok":  # every backend ready
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"router not healthy within {timeout:.0f}s")

    def start_scripted(self, responder: Callable[[Any], Any]) -> ScriptedBackend:
        self.backend = ScriptedBackend(models=("test-model",)).start()
        self.backend.default = responder
        return self.backend

    def start_provider(self) -> FakeSearchServer:
        self.provider = FakeSearchServer("brave").start()
        return self.provider

    def start_page(self) -> str:
        """The WebFetch target: HTTPS on 127.0.0.1 with the spec's throwaway certificate."""
        host = self

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                host.result["page_hits"] += 1
                data = PAGE_HTML.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.page = ThreadingHTTPServer(("127.0.0.1", 0), Page)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.spec["tls_cert"], self.spec["tls_key"])
        self.page.socket = context.wrap_socket(self.page.socket, server_side=True)
        threading.Thread(target=self.page.serve_forever, daemon=True).start()
        return f"https://127.0.0.1:{self.page.server_address[1]}/notes.html"

    def scripted_settings(self, **extra: Any) -> Settings:
        assert self.backend is not None
        backend = Backend(name="scripted", type="llamacpp", url=self.backend.url,
                          models=("test-model",))
        return Settings(backends=(backend,), **extra)

    # -- claude --

    def run_claude(self) -> None:
        assert self.router is not None
        home = self.out / "home"
        work = self.out / "work"
        home.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        for name, data in self.work_files.items():
            (work / name).write_bytes(data)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
        env.update(HOME=str(home), ANTHROPIC_BASE_URL=self.router.anthropic_url,
                   ANTHROPIC_API_KEY="e2e-key", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
                   DISABLE_TELEMETRY="1", CLAUDE_CODE_MAX_RETRIES="2")
        env.update(self.claude_env)
        argv = [self.spec["claude_bin"], *self.claude_args, "--output-format", "json"]
        done = subprocess.run(argv, env=env, cwd=work, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=float(self.spec.get("timeout", 240)))
        self.result["claude_rc"] = done.returncode
        self.result["claude_stderr"] = done.stderr.decode(errors="replace")[-4000:]
        try:
            self.result["claude"] = json.loads(done.stdout)
        except ValueError:
            self.result["claude"] = {"unparsed_stdout": done.stdout.decode(errors="replace")}

    # -- teardown --

    def close(self) -> None:
        if self.router is not None:
            self.router.stop()
        if self.backend is not None:
            self.result["upstream"] = [
                {"path": r.path, "stream": bool((r.body or {}).get("stream")), "body": r.body}
                for r in self.backend.chat_requests()]
            self.backend.stop()
        else:
            self.result["upstream"] = self._upstream_calls
        if self.provider is not None:
            self.result["provider"] = self.provider.queries
            self.provider.stop()
        if self.page is not None:
            self.page.shutdown()
        self.result["log"] = self.logs.lines


@scenario
def plain(host: Host) -> None:
    """A plain turn answered by the real llama.cpp model (`type: embedded`, SmolLM2)."""
    # Claude Code sends no temperature on main turns; llama.cpp's default (0.8, random seed)
    # made the 135M model ramble past the output cap now and then. Greedy decoding is not
    # enough either: another CPU's kernels round differently and the 135M model can ramble
    # into the 200-token cap (Claude Code then asks it to go on, and fails the run). A
    # llama.cpp grammar (GBNF) keeps the real model's answer to one sentence.
    backend = Backend(name="embedded", type="embedded", model_path=host.spec["model_path"],
                      models=("smollm2-135m",), context_size=8192, threads=1,
                      request_defaults={"temperature": 0.0, "seed": 42,
                                        "grammar": ONE_SENTENCE})
    host.start_router(Settings(backends=(backend,), model_aliases={"default": "smollm2-135m"}))
    host.claude_args = ["-p", "Say hello in one short sentence.",
                        "--tools", "", "--system-prompt", "You are a helpful assistant."]
    # A 135M model may ramble until its context is full; bound the answer (and the run time).
    host.claude_env = {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "200"}


@scenario
def bash_real(host: Host) -> None:
    """Bash with the REAL engine: llama.cpp (SmolLM2-135M) with a chat template that has a
    tool-call format llama.cpp knows (`chat_template_file`), and `tool_choice: required` as a
    request default (Claude Code sends none on main turns), so llama.cpp's grammar makes the
    model call Bash with schema-valid arguments. Claude Code runs the command (echo only is
    allowed) and sends the output back; the second turn is forced to call again, which
    `--max-turns 2` stops. Output tokens and the context are kept small for a 2-core machine."""
    backend = Backend(name="embedded", type="embedded", model_path=host.spec["model_path"],
                      models=("smollm2-135m",), context_size=8192,
                      chat_template_file=host.spec["chat_template_file"],
                      request_defaults={"temperature": 0.0, "seed": 42,
                                        "tool_choice": "required",
                                        "parallel_tool_calls": False})
    host.start_router(Settings(backends=(backend,), model_aliases={"default": "smollm2-135m"}))
    host.claude_args = ["-p", f"Run this shell command with the Bash tool: {REAL_COMMAND}",
                        "--bare", "--tools", "Bash", "--allowedTools", "Bash(echo:*)", "--max-turns", "2",
                        "--system-prompt", "You run shell commands for the user."]
    host.claude_env = {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "200"}


@scenario
def bash(host: Host) -> None:
    """The model asks for Bash, Claude Code runs it, the output reaches the backend."""
    host.start_scripted(replies.bash_round_trip)
    host.start_router(host.scripted_settings(model_aliases={"default": "test-model"}))
    host.claude_args = ["-p", "Run the marker command and tell me what it printed.",
                        "--tools", "Bash", "--allowedTools", "Bash"]


@scenario
def auto_mode(host: Host) -> None:
    """The bash round trip in auto permission mode: Claude Code asks for its safeguards
    check (a top-level `safeguards` field), which no local model runs."""
    host.start_scripted(replies.bash_round_trip)
    host.start_router(host.scripted_settings(model_aliases={"default": "test-model"}))
    host.claude_args = ["-p", "Run the marker command and tell me what it printed.",
                        "--tools", "Bash", "--permission-mode", "auto"]


@scenario
def websearch(host: Host) -> None:
    """WebSearch through the web_search_20250305 emulation and a local provider fake."""
    host.start_scripted(replies.websearch_flow)
    provider = host.start_provider()
    search = WebSearchSettings(enabled=True, provider="brave", api_key=provider.key,
                               base_url=provider.base_url)
    host.start_router(host.scripted_settings(model_aliases={"default": "test-model"},
                                             web_search=search))
    host.claude_args = ["-p", "Search the web for asyncio tutorials and list the titles.",
                        "--tools", "WebSearch", "--allowedTools", "WebSearch"]


@scenario
def webfetch(host: Host) -> None:
    """WebFetch of a TLS page; the haiku summarizer call is rewritten by model_aliases."""
    url = host.start_page()
    host.start_scripted(replies.webfetch_flow(url))
    host.start_router(host.scripted_settings(
        model_aliases={"haiku": "test-model", "default": "test-model"}))
    host.claude_args = ["-p", f"Fetch {url} and tell me the secret word.",
                        "--tools", "WebFetch", "--allowedTools", "WebFetch",
                        "--settings", json.dumps({"skipWebFetchPreflight": True})]
    host.claude_env = {"NODE_EXTRA_CA_CERTS": host.spec["tls_cert"],
                       "ANTHROPIC_DEFAULT_HAIKU_MODEL": replies.HAIKU}


@scenario
def pdf_read(host: Host) -> None:
    """Claude Code's Read tool on a PDF in its working directory: the PDF goes back as a
    base64 document in the tool result; the router turns it into page-marked text."""
    from tests import pdfgen

    path = host.out / "work" / "report.pdf"
    host.work_files = {"report.pdf": pdfgen.pdf(replies.PDF_PAGES, title="Field report")}
    host.start_scripted(replies.pdf_read_flow(str(path)))
    host.start_router(host.scripted_settings(model_aliases={"default": "test-model"}))
    host.claude_args = ["-p", "Read report.pdf and tell me the access phrase.",
                        "--tools", "Read", "--allowedTools", "Read"]


def bring_up_loopback() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    host = Host(spec)
    host.out.mkdir(parents=True, exist_ok=True)
    try:
        bring_up_loopback()
        SCENARIOS[spec["scenario"]](host)
        host.run_claude()
    except Exception as exc:  # noqa: BLE001 - reported to the test through result.json
        host.result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            host.close()
        finally:
            (host.out / "result.json").write_text(json.dumps(host.result, indent=1,
                                                             default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
