"""Host one Claude Code *gateway* scenario inside a loopback-only network namespace.

Run by tests/e2e/test_claude_gateway.py as `unshare -n -- python -m tests.e2e.gateway_host
SPEC.json`. Like scenario_host.py it starts everything in the namespace (the router with the
gateway on, two scripted backends, the state store in the scenario's folder), signs in with
the real device flow where the scenario needs a token, runs the real `claude` and writes
`result.json`:

    inbound   [{path, method, model, grant_type, if_none_match, team_header, auth}]
              every request Claude Code (or the sign-in) sent the router; `auth` is
              "gateway" / "other" / None, never the credential
    upstream  [{backend, model}]      every chat request a backend received
    runs      [{argv, rc, stdout, stderr}]  each claude invocation (stdout kept whole)
    checks    {...}                   facts the host measured after the runs
    log       [str]                   router log lines
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tests.e2e.scenario_host import LogCollector, bring_up_loopback
from tests.fakes.scripted_backend import ScriptedBackend
from tests.gateway.helpers import ALICE_KEY, bearer, gateway_config, sign_in
from tests.router import RouterThread, settings_for

SCENARIOS: dict[str, Callable[[GatewayHost], None]] = {}
TEAM_HEADER = "X-Team-Policy"
POLICY = {"env": {"CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
                  "ANTHROPIC_CUSTOM_HEADERS": f"{TEAM_HEADER}: team-7"}}
BUDGET = 1_000_000
MODELS = [{"id": "claude-sonnet-4-5", "display_name": "Team model A"},
          {"id": "claude-opus-4-5", "display_name": "Team model B"}]


def scenario(fn: Callable[[GatewayHost], None]) -> Callable[[GatewayHost], None]:
    SCENARIOS[fn.__name__] = fn
    return fn


class Recorder:
    """Wraps the router's app: notes each request (never a credential) before handling it."""

    def __init__(self, inner: Any, seen: list[dict[str, Any]]) -> None:
        self._inner = inner
        self._seen = seen

    async def handle(self, request: Any) -> Any:
        auth = request.headers.get("authorization", "")
        entry: dict[str, Any] = {
            "path": request.path, "method": request.method,
            "if_none_match": request.headers.get("if-none-match"),
            "team_header": request.headers.get(TEAM_HEADER.lower()),
            "user_agent": request.headers.get("user-agent"),
            "auth": None if not auth else ("gateway" if "cgw_at_" in auth else "other"),
        }
        if request.path.endswith("/oauth/token"):
            entry["grant_type"] = parse_qs(request.body.decode()).get("grant_type", [None])[0]
        elif request.path.endswith("/v1/messages"):
            try:
                entry["model"] = json.loads(request.body).get("model")
            except ValueError:
                entry["model"] = None
        self._seen.append(entry)
        try:
            response = await self._inner.handle(request)
        except Exception as exc:
            entry["status"] = getattr(exc, "status", 500)
            entry["error"] = getattr(exc, "message", type(exc).__name__)
            raise
        entry["status"] = response.status
        if request.path.endswith(("/v1/models", "/managed/settings")):
            entry["body"] = getattr(response, "body", b"").decode(errors="replace")
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class GatewayHost:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.out = Path(spec["out"])
        self.home = self.out / "home"
        self.work = self.out / "work"
        self.result: dict[str, Any] = {"inbound": [], "upstream": [], "runs": [],
                                       "checks": {}, "log": []}
        self.logs = LogCollector()
        self.backends: dict[str, ScriptedBackend] = {}
        self.router: RouterThread | None = None

    def start(self, budgets: list[dict[str, Any]] | None = None,
              tls: dict[str, str] | None = None, email: str | None = None,
              **gateway: Any) -> str:
        """Two backends (model-a, model-b) behind the gateway; returns the base URL.
        `budgets` go to alice's key (the one every sign-in here uses)."""
        import logging

        a = ScriptedBackend(models=("model-a",)).start()
        b = ScriptedBackend(models=("model-b",)).start()
        self.backends = {"a": a, "b": b}
        config = gateway_config(a, **gateway)
        config["backends"].append({"name": "b", "type": "generic", "url": b.url,
                                   "models": ["model-b"]})
        config["backends"][0]["name"] = "a"
        config["model_aliases"] = {"claude-opus-4-5": "model-b", "default": "model-a"}
        config["state"] = {"path": str(self.out / "state.db")}
        if budgets:
            config["api_keys"]["keys"][0]["budgets"] = budgets
        if tls:
            config["server"] = {"tls": tls}
        if email:
            config["api_keys"]["keys"][0]["email"] = email
        root = logging.getLogger("continuum")
        root.setLevel(logging.DEBUG)
        root.addHandler(self.logs)
        self.router = RouterThread(settings_for(config)).start()
        app = self.router.service.server.app
        self.router.service.server.app = Recorder(app, self.result["inbound"])
        return self.router.anthropic_url

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
        env.update(HOME=str(self.home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
                   DISABLE_TELEMETRY="1", CLAUDE_CODE_MAX_RETRIES="2", **extra)
        return env

    def claude(self, args: list[str], env: dict[str, str]) -> dict[str, Any]:
        self.home.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        argv = [self.spec["claude_bin"], *args]
        done = subprocess.run(argv, env=env, cwd=self.work, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=float(self.spec.get("timeout", 240)))
        run = {"argv": args, "rc": done.returncode,
               "stdout": done.stdout.decode(errors="replace"),
               "stderr": done.stderr.decode(errors="replace")[-4000:]}
        self.result["runs"].append(run)
        return run

    def store_sign_in(self, base: str, tokens: dict[str, Any], expires_in: float) -> Path:
        """`~/.claude/.credentials.json` as `/login` writes it (mode 600)."""
        folder = self.home / ".claude"
        folder.mkdir(parents=True, exist_ok=True)
        credentials = {
            "gatewayTrust": {"127.0.0.1": "http-loopback"},
            "enterpriseGateway": {
                "url": base, "jwt": tokens["access_token"],
                "expiresAt": int((time.time() + expires_in) * 1000),
                "tokenEndpoint": f"{base}/oauth/token",
                "revocationEndpoint": f"{base}/oauth/revoke",
                "idpRefreshToken": tokens["refresh_token"], "vouchedAtLogin": False},
        }
        path = folder / ".credentials.json"
        path.write_text(json.dumps(credentials))
        path.chmod(0o600)
        return path

    def close(self) -> None:
        if self.router is not None:
            self.router.stop()
        for name, backend in self.backends.items():
            self.result["upstream"] += [
                {"backend": name, "model": (r.body or {}).get("model")}
                for r in backend.chat_requests()]
            backend.stop()
        self.result["log"] = self.logs.lines


STREAM_JSON = ["--output-format", "stream-json", "--verbose", "--tools", "",
               "--system-prompt", "You are a helpful assistant."]


@scenario
def headless(host: GatewayHost) -> None:
    """(a) CLAUDE_CODE_USE_GATEWAY with a bearer token from the device flow."""
    base = host.start()
    tokens = sign_in(base)
    host.claude(["-p", "hi", *STREAM_JSON],
                host.env(CLAUDE_CODE_USE_GATEWAY="1", ANTHROPIC_BASE_URL=base,
                         ANTHROPIC_AUTH_TOKEN=tokens["access_token"]))


@scenario
def stored(host: GatewayHost) -> None:
    """(b) A stored sign-in: managed settings fetched and applied, models discovered, the
    listed model reaches its backend, the token refreshed, `claude auth logout` revokes."""
    base = host.start(managed_settings=POLICY, models=MODELS)
    tokens = sign_in(base)
    credentials = host.store_sign_in(base, tokens, expires_in=60)  # < 5 min: refreshed
    env = host.env()
    host.claude(["-p", "hi", "--model", "claude-opus-4-5", *STREAM_JSON], env)
    refreshed = json.loads(credentials.read_text())["enterpriseGateway"]
    host.result["checks"]["refreshed_token_differs"] = refreshed["jwt"] != tokens["access_token"]
    host.claude(["auth", "logout"], env)
    import httpx

    after = httpx.post(f"{base}/v1/messages", headers=bearer(refreshed["jwt"]),
                       json={"model": "claude-sonnet-4-5", "max_tokens": 5,
                             "messages": [{"role": "user", "content": "hi"}]})
    host.result["checks"]["after_logout"] = {"status": after.status_code,
                                             "retry": after.headers.get("x-should-retry")}
    host.result["checks"]["credentials_after_logout"] = credentials.exists() and \
        "enterpriseGateway" in json.loads(credentials.read_text())
    host.result["checks"]["api_key_used"] = ALICE_KEY in json.dumps(host.result["runs"])


class Pane:
    """Claude Code's interactive UI in a tmux pane (a real pty), read as text."""

    def __init__(self, folder: Path, command: str, cwd: Path) -> None:
        self.socket = str(folder / "tmux.sock")
        self.screens: list[str] = []
        subprocess.run(["tmux", "-S", self.socket, "new-session", "-d", "-x", "120", "-y", "45",
                        "-c", str(cwd), command], check=True)

    def screen(self) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, "capture-pane", "-p"],
                              capture_output=True, text=True)
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-S", self.socket, "send-keys", *keys], check=True)

    def drive(self, handlers: list[tuple[str, list[list[str]]]], goal: str,
              timeout: float, once: tuple[str, ...] = ()) -> str:
        """Answer each screen whose text matches a handler until `goal` shows. A screen
        still showing 5 s after its answer is answered again (a key pressed while the UI
        was still drawing can be lost), except the markers in `once`."""
        answered: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if goal in text:
                self.screens.append(text)
                return text
            for marker, presses in handlers:
                again = marker not in once and time.monotonic() - answered.get(marker, -99.0) > 5
                if marker in text and (marker not in answered or again):
                    answered[marker] = time.monotonic()
                    self.screens.append(text)
                    for press in presses:
                        self.keys(*press)
                        time.sleep(0.5)
                    break
            time.sleep(0.5)
        self.screens.append(self.screen())
        raise TimeoutError(f"{goal!r} not on screen in {timeout:.0f}s:\n{self.screens[-1]}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


def _browser_script(host: GatewayHost) -> Path:
    repo = Path(__file__).resolve().parents[2]
    script = host.out / "browser.sh"
    script.write_text(f"#!/bin/sh\ncd {repo} && PYTHONPATH={repo} exec {sys.executable} "
                      f"-m tests.e2e.gateway_browser \"$@\" >>{host.out}/browser.out 2>&1\n")
    script.chmod(0o755)
    return script


def _login_in_pane(host: GatewayHost, base: str, **extra_env: str) -> None:
    """Claude Code's interactive UI signs in at `base` (forced by settings.json), $BROWSER
    completes the page, then "say hi" is answered; screens are kept for the tests."""
    folder = host.home / ".claude"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(
        {"forceLoginMethod": "gateway", "forceLoginGatewayUrl": base}))
    host.work.mkdir(parents=True, exist_ok=True)
    env = host.env(BROWSER=str(_browser_script(host)), BROWSER_LOG=str(host.out / "browser.log"),
                   CONTINUUM_E2E_KEY=ALICE_KEY, TERM="xterm-256color", **extra_env)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k in ("HOME", "PATH", "BROWSER", "BROWSER_LOG", "CONTINUUM_E2E_KEY",
                                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY",
                                "TERM", *extra_env))
    pane = Pane(host.out, f"env -i {exports} {host.spec['claude_bin']}", host.work)
    try:
        login = [("Choose the text style", [["Enter"]]),
                 ("Enter to connect", [["Enter"]]),
                 ("Yes, trust this gateway", [["Up"], ["Enter"]]),
                 ("Waiting for sign-in", []),  # the code screen, kept for the test
                 ("Yes, continue", [["Up"], ["Enter"]])]  # the account (email) confirmation
        host.result["checks"]["connected_screen"] = pane.drive(
            login, "Connected to Cloud gateway", timeout=120)
        after = [("Connected to Cloud gateway", [["Enter"]]),
                 ("Security notes", [["Enter"]]),
                 ("Yes, I trust this folder", [["Down"], ["Enter"]]),
                 ("Managed settings require approval", [["Enter"]]),
                 ("auto mode on", [["-l", "say hi"], ["Enter"]])]
        host.result["checks"]["answer_screen"] = pane.drive(
            after, "Hello from the scripted backend.", timeout=120, once=("auto mode on",))
    finally:
        host.result["checks"]["screens"] = pane.screens
        pane.close()
    log = host.out / "browser.log"
    host.result["checks"]["browser_log"] = log.read_text() if log.exists() else ""
    credentials = folder / ".credentials.json"
    if credentials.exists():
        host.result["checks"]["trust"] = json.loads(credentials.read_text()).get("gatewayTrust")


@scenario
def interactive(host: GatewayHost) -> None:
    """(d) `/login` in the interactive UI: gateway URL from settings, trust prompt, the
    browser ($BROWSER) completes the verification page, "Connected", then a prompt is
    answered; a later headless run revalidates the managed settings with If-None-Match."""
    base = host.start(managed_settings=POLICY, models=MODELS, poll_interval="2s",
                      login_notice="Sign in with your continuum key from the team wiki.",
                      email="alice@example.com")
    _login_in_pane(host, base)
    host.claude(["-p", "hi", *STREAM_JSON], host.env())


@scenario
def https_login(host: GatewayHost) -> None:
    """`/login` over https with continuum's self-signed certificate: the trust prompt shows
    its fingerprint, and Claude Code records the value continuum printed."""
    from continuum_cli import tls

    cert, key, _ = tls.self_signed(host.out / "tls", tls.default_names("127.0.0.1"))
    host.result["checks"]["fingerprint"] = tls.fingerprint(str(cert))
    host.start(poll_interval="2s", tls={"cert": str(cert), "key": str(key)})
    assert host.router is not None
    base = f"https://localhost:{host.router.port}/anthropic"
    # a self-signed certificate is its own CA: Claude Code verifies the chain, then pins it
    _login_in_pane(host, base, E2E_BROWSER_IGNORE_TLS="1", NODE_EXTRA_CA_CERTS=str(cert))
    host.claude(["-p", "hi", *STREAM_JSON], host.env(NODE_EXTRA_CA_CERTS=str(cert)))


def _spend(host: GatewayHost, base: str, token: str, completion: int) -> None:
    """Use part of the key's budget with an ordinary request (the backend reports
    `completion` output tokens), and wait until the router has counted it."""
    import httpx

    from tests.fakes.scripted_backend import Text, usage

    assert host.router is not None
    host.backends["a"].queue(Text("ok", usage=usage(prompt=5, completion=completion)))
    answer = httpx.post(f"{base}/v1/messages", headers=bearer(token),
                        json={"model": "claude-sonnet-4-5", "max_tokens": 5,
                              "messages": [{"role": "user", "content": "hi"}]})
    answer.raise_for_status()
    deadline = time.monotonic() + 30
    while host.router.service.state.pending and time.monotonic() < deadline:
        time.sleep(0.05)


@scenario
def usage_limits(host: GatewayHost) -> None:
    """(c) A key at 82 % of its daily token budget, then at its cap."""
    base = host.start(budgets=[{"period": "daily", "tokens": BUDGET}])
    tokens = sign_in(base)
    env = host.env(CLAUDE_CODE_USE_GATEWAY="1", ANTHROPIC_BASE_URL=base,
                   ANTHROPIC_AUTH_TOKEN=tokens["access_token"])
    _spend(host, base, tokens["access_token"], int(BUDGET * 0.82))
    host.claude(["-p", "hi", *STREAM_JSON], env)
    _spend(host, base, tokens["access_token"], BUDGET)
    host.result["checks"]["before_capped_run"] = len(host.result["inbound"])
    host.claude(["-p", "hi", *STREAM_JSON], env)


@scenario
def continuum_claude(host: GatewayHost) -> None:
    """`continuum claude --gateway`: it writes the settings entries and the trust, starts the
    router (from the config file) and Claude Code, which signs in through the browser."""
    _continuum_claude(host, tls_on=False)


@scenario
def continuum_claude_tls(host: GatewayHost) -> None:
    """The same with `server.tls` (the self-signed certificate): the trust it records is the
    fingerprint, and the certificate is named as a CA for Claude Code."""
    _continuum_claude(host, tls_on=True)


def _continuum_claude(host: GatewayHost, tls_on: bool) -> None:
    import socket

    import yaml

    backend = ScriptedBackend(models=("model-a",)).start()
    host.backends = {"a": backend}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = gateway_config(backend, managed_settings=POLICY, poll_interval="2s")
    config["state"] = {"path": str(host.out / "state.db")}
    config["server"] = {"bind_address": f"127.0.0.1:{port}"}
    scheme, host_name = "http", "127.0.0.1"
    if tls_on:
        from continuum_cli import tls

        cert, key, _ = tls.self_signed(host.out / "tls", tls.default_names("127.0.0.1"))
        config["server"]["tls"] = {"cert": str(cert), "key": str(key)}
        host.result["checks"]["fingerprint"] = tls.fingerprint(str(cert))
        host.result["checks"]["cert"] = str(cert.resolve())
        scheme, host_name = "https", "localhost"
    config_file = host.out / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    host.home.mkdir(parents=True, exist_ok=True)
    host.work.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[2]
    path = os.pathsep.join([str(Path(host.spec["claude_bin"]).parent),
                            str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {"HOME": str(host.home), "PATH": path, "PYTHONPATH": str(repo),
           "BROWSER": str(_browser_script(host)), "BROWSER_LOG": str(host.out / "browser.log"),
           "CONTINUUM_E2E_KEY": ALICE_KEY, "TERM": "xterm-256color",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
           "ANTHROPIC_API_KEY": "must-not-reach-claude",
           **({"E2E_BROWSER_IGNORE_TLS": "1"} if tls_on else {})}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = (f"env -i {exports} {sys.executable} -m continuum_cli claude --gateway "
               f"--config {config_file}; sleep 30")
    pane = Pane(host.out, command, host.work)
    try:
        login = [("Choose the text style", [["Enter"]]),
                 ("Enter to connect", [["Enter"]]),
                 ("Yes, trust this gateway", [["Up"], ["Enter"]])]
        host.result["checks"]["connected_screen"] = pane.drive(
            login, "Connected to Cloud gateway", timeout=180)
        after = [("Connected to Cloud gateway", [["Enter"]]),
                 ("Security notes", [["Enter"]]),
                 ("Yes, I trust this folder", [["Down"], ["Enter"]]),
                 ("Managed settings require approval", [["Enter"]]),
                 ("auto mode on", [["-l", "say hi"], ["Enter"]])]
        host.result["checks"]["answer_screen"] = pane.drive(
            after, "Hello from the scripted backend.", timeout=120, once=("auto mode on",))
    finally:
        host.result["checks"]["screens"] = pane.screens
        pane.keys("C-c")
        time.sleep(0.5)
        pane.keys("C-c")
        pane.close()
    folder = host.home / ".claude"
    host.result["checks"]["settings"] = json.loads((folder / "settings.json").read_text())
    credentials = json.loads((folder / ".credentials.json").read_text())
    host.result["checks"]["trust"] = credentials.get("gatewayTrust")
    host.result["checks"]["signed_in_url"] = credentials.get("enterpriseGateway", {}).get("url")
    host.result["checks"]["base"] = f"{scheme}://{host_name}:{port}/anthropic"
    host.result["checks"]["messages"] = [r.body.get("model") for r in backend.chat_requests()]


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    host = GatewayHost(spec)
    host.out.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_DATA_HOME"] = str(host.out / "data")
    try:
        bring_up_loopback()
        SCENARIOS[spec["scenario"]](host)
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
