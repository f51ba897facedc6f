"""`continuum doctor` end to end: a real router on a port, the scripted backend, fake search
providers, a stand-in `claude`; every check made to fail once on purpose, fix text asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from continuum_cli.cli import app
from continuum_cli.doctor import DoctorOptions, Report, run_doctor
from tests.cli.conftest import write_config
from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend
from tests.fakes.search_providers import FakeSearchServer
from tests.router import RouterThread

pytestmark = pytest.mark.anyio
StartRouter = Callable[..., RouterThread]


def doctor_config(tmp_path: Path, router: RouterThread | None, data: dict[str, Any]) -> Path:
    """The router's own config, bound to the port the test router listens on."""
    port = router.port if router is not None else 9
    return write_config(tmp_path / "config.yaml",
                        {**data, "server": {"bind_address": f"127.0.0.1:{port}"}})


def client_env(router: RouterThread | None, **extra: str) -> dict[str, str]:
    env = {"ANTHROPIC_API_KEY": "anything", "CLAUDE_CODE_ATTRIBUTION_HEADER": "0"}
    if router is not None:
        env["ANTHROPIC_BASE_URL"] = router.anthropic_url
    return {**env, **extra}


def run_cli(*args: str, env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run([sys.executable, "-m", "continuum_cli", "doctor", "--json", *args],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    return proc.returncode, json.loads(proc.stdout), proc.stdout + proc.stderr


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def web_search(fake: FakeSearchServer, key: str | None = None) -> dict[str, Any]:
    return {"enabled": True, "provider": fake.provider, "api_key": key or fake.key,
            "base_url": fake.base_url}


# -- subprocess: the command as a user runs it --------------------------------------------

def test_everything_passes_against_a_running_router(
        tmp_path: Path, scripted: ScriptedBackend, router_factory: StartRouter,
        claude_bin: Path) -> None:
    with FakeSearchServer("brave") as fake:
        data = basic_config(scripted, web_search=web_search(fake))
        data["model_aliases"]["default"] = scripted.models[0]
        router = router_factory(data)
        config = doctor_config(tmp_path, router, data)
        env = client_env(router)
        # Claude Code's own state as after its onboarding, with this key approved
        (Path(os.environ["HOME"]) / ".claude.json").write_text(json.dumps({
            "hasCompletedOnboarding": True,
            "customApiKeyResponses": {"approved": [env["ANTHROPIC_API_KEY"][-20:]]}}))
        code, report, output = run_cli("--config", str(config), env=env)
        assert fake.queries == ["continuum router"]
    assert code == 0, output
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        c["name"]: "pass" for c in report["checks"]}
    assert check(report, "claude CLI")["evidence"].startswith("2.1.332 (Claude Code) at ")
    assert "-> 200 in" in check(report, "router")["evidence"]
    assert fake.key not in output


def test_backend_down(tmp_path: Path, router_factory: StartRouter, claude_bin: Path) -> None:
    with ScriptedBackend() as gone:
        data = basic_config(gone)
        dead_url = gone.url
    router = router_factory(data)
    config = doctor_config(tmp_path, router, data)
    code, report, _ = run_cli("--config", str(config), env=client_env(router))
    assert code == 1
    backend = check(report, "backend scripted")
    assert backend["status"] == "fail"
    assert backend["evidence"] == f"{dead_url}/models: connection refused (nothing is " \
        "listening there)"
    root = dead_url.removesuffix("/v1")
    assert backend["fix"] == f"start the generic server at {root}, or fix `backends[0].url`"
    assert check(report, "router")["fix"] == ("the backend did not answer: start it or fix its "
                                             "url (see the backend check)")


def test_missing_alias(tmp_path: Path, scripted: ScriptedBackend, router_factory: StartRouter,
                       claude_bin: Path) -> None:
    data = {k: v for k, v in basic_config(scripted).items() if k != "model_aliases"}
    router = router_factory(data)
    config = doctor_config(tmp_path, router, data)
    code, report, _ = run_cli("--config", str(config), env=client_env(router))
    assert code == 1
    haiku = check(report, "alias haiku")
    assert (haiku["status"], haiku["evidence"]) == (
        "fail", "Model claude-haiku-4-5-20251001 not found")
    assert haiku["fix"] == ("model_aliases is not configured for it: add at least a `default:` "
                            "entry mapping to your backend's model (`continuum alias set "
                            "default test-model`)")
    assert check(report, "router")["status"] == "pass"


def test_bad_base_url(tmp_path: Path, router: RouterThread, scripted: ScriptedBackend,
                      claude_bin: Path) -> None:
    config = doctor_config(tmp_path, router, basic_config(scripted))
    wrong = router.anthropic_url + "/v1/messages"
    code, report, _ = run_cli("--config", str(config), "--offline",
                              env=client_env(router, ANTHROPIC_BASE_URL=wrong))
    assert code == 1
    result = check(report, "ANTHROPIC_BASE_URL")
    assert result["status"] == "fail"
    assert result["evidence"] == f"{wrong} ends in /v1/messages; Claude Code appends that itself"
    assert result["fix"] == f"export ANTHROPIC_BASE_URL={router.anthropic_url}"


class _OldRouter(BaseHTTPRequestHandler):
    """A router from before web_search_20250305 support: its tool schema wants input_schema."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._json(200, {"status": "ok", "backends": []})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if any("input_schema" not in t for t in body.get("tools", [])):
            self._json(422, {"detail": [{"loc": ["body", "tools", 0, "input_schema"],
                                         "msg": "field required", "type": "missing"}]})
        else:
            self._json(200, {"type": "message", "role": "assistant", "model": body["model"],
                             "content": [{"type": "text", "text": "hi"}]})


@pytest.fixture
def old_router() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OldRouter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_422_case(tmp_path: Path, scripted: ScriptedBackend, old_router: str,
                      claude_bin: Path) -> None:
    config = doctor_config(tmp_path, None, basic_config(scripted))
    code, report, _ = run_cli("--config", str(config), "--url", old_router, "--offline",
                              env=client_env(None, ANTHROPIC_BASE_URL=old_router + "/anthropic"))
    assert code == 1
    tool = check(report, "server tool")
    assert tool["status"] == "fail"
    assert tool["evidence"].startswith("HTTP 422: ") and "input_schema" in tool["evidence"]
    assert tool["fix"] == ("this router predates web_search_20250305 support: update continuum "
                           "(the fix accepts both custom and server tool shapes)")
    assert check(report, "router")["status"] == "pass"


def test_wrong_key(tmp_path: Path, scripted: ScriptedBackend, router_factory: StartRouter,
                   claude_bin: Path) -> None:
    keys = {"mode": "blocking", "keys": [{"key": "good-key-123", "name": "alice"}]}
    data = basic_config(scripted, api_keys=keys)
    router = router_factory(data)
    config = doctor_config(tmp_path, router, data)
    code, report, output = run_cli("--config", str(config), "--offline",
                                   env=client_env(router, ANTHROPIC_API_KEY="wrong"))
    assert code == 1
    result = check(report, "ANTHROPIC_API_KEY")
    assert result["status"] == "fail"
    assert result["fix"] == ("set ANTHROPIC_API_KEY to an enabled, unexpired key from api_keys "
                             "(keys: alice)")
    # doctor tests the router with a key it accepts, so only the client check fails
    assert check(report, "router")["status"] == "pass"
    assert "good-key-123" not in output


# -- in process: the remaining failure modes, through run_doctor ---------------------------

async def doctor(config: Path, router: RouterThread | None = None, offline: bool = False,
                 **env: str) -> Report:
    full = {**os.environ, **client_env(router), **env}
    url = router.url if router is not None else "http://127.0.0.1:9"
    return await run_doctor(DoctorOptions(config=str(config), url=url, offline=offline,
                                          env=full))


def result(report: Report, name: str) -> Any:
    return next(r for r in report.results if r.name == name)


async def test_unset_variable_is_named(tmp_path: Path, scripted: ScriptedBackend) -> None:
    data = basic_config(scripted)
    data["backends"][0]["api_key"] = "${BACKEND_API_KEY}"
    report = await doctor(write_config(tmp_path / "c.yaml", data))
    config = result(report, "config")
    assert config.status == "fail"
    assert config.evidence.endswith("environment variable BACKEND_API_KEY not set")
    assert config.fix == "export BACKEND_API_KEY=..."
    assert result(report, "backends").status == "skip"
    assert not report.ok


@pytest.mark.parametrize(("mode", "status", "text"), [
    pytest.param("rate_limited", "warn", "free tier may be capped at a low QPS", id="429"),
    pytest.param("bad_key", "fail", "rejected the API key", id="bad_key"),
    pytest.param("ok", "pass", "one real query -> 3 result(s)", id="ok"),
])
async def test_web_search_query(tmp_path: Path, scripted: ScriptedBackend, mode: str,
                                status: str, text: str) -> None:
    with FakeSearchServer("brave", mode="ok" if mode == "bad_key" else mode) as fake:
        key = "not-the-key" if mode == "bad_key" else None
        data = basic_config(scripted, web_search=web_search(fake, key))
        report = await doctor(write_config(tmp_path / "c.yaml", data))
    search = result(report, "web search")
    assert search.status == status
    assert text in search.evidence
    if mode == "bad_key":
        assert search.fix.startswith("verify the provider's API key is valid: set BRAVE_API_KEY")


async def test_offline_sends_no_query(tmp_path: Path, scripted: ScriptedBackend) -> None:
    with FakeSearchServer("serper") as fake:
        data = basic_config(scripted, web_search=web_search(fake))
        report = await doctor(write_config(tmp_path / "c.yaml", data), offline=True)
        assert fake.requests == []
    assert result(report, "web search").evidence == ("serper: api_key set (SERPER_API_KEY); no "
                                                     "query sent (--offline)")


async def test_loading_backend_is_not_down(tmp_path: Path) -> None:
    with ScriptedBackend() as loading:
        loading.health_status = 503
        data = basic_config(loading)
        data["backends"][0]["type"] = "vllm"
        report = await doctor(write_config(tmp_path / "c.yaml", data))
    backend = result(report, "backend scripted")
    assert backend.status == "warn"
    assert "loading its model (HTTP 503), not down" in backend.evidence


async def test_open_bind_in_permissive_mode_warns(tmp_path: Path,
                                                  scripted: ScriptedBackend) -> None:
    data = {**basic_config(scripted), "server": {"bind_address": "0.0.0.0:8000"}}
    path = write_config(tmp_path / "c.yaml", data)
    report = await run_doctor(DoctorOptions(config=str(path), url="http://127.0.0.1:9",
                                            offline=True, env={}))
    assert result(report, "safety").status == "warn"


# -- rendering ------------------------------------------------------------------------------

def test_text_report_marks_and_fixes(tmp_path: Path, scripted: ScriptedBackend,
                                     claude_bin: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {**basic_config(scripted),
                                                "server": {"bind_address": "127.0.0.1:9"}})
    outcome = CliRunner().invoke(app, ["doctor", "--config", str(config), "--offline"])
    assert outcome.exit_code == 1
    lines = outcome.stdout.splitlines()
    assert any(line.startswith("✓ backend scripted") for line in lines)
    router_line = next(i for i, line in enumerate(lines) if line.startswith("✗ router"))
    assert "not reachable at http://127.0.0.1:9" in lines[router_line]
    assert lines[router_line + 1].strip().startswith("fix: start it with `continuum serve`")
    assert any(line.startswith("! ANTHROPIC_BASE_URL") for line in lines)
    assert any(line.startswith("- server tool") for line in lines)
    assert "failed" in outcome.stderr
