"""`continuum claude [--config PATH] [CLAUDE_ARGS...]`: Claude Code wired to the router.

If nothing answers `/health` at the configured address, the router is started in the
background (`python -m continuum_cli serve`, its log in a file so it cannot scribble over
Claude Code's screen) and stopped again when Claude Code exits. Claude Code then runs with
`ANTHROPIC_BASE_URL`, `CLAUDE_CODE_ATTRIBUTION_HEADER=0` and, when needed, an API key, and
with every remaining argument unchanged; its exit code becomes ours.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from continuum_cli.cli.output import err, guarded
from continuum_cli.errors import ContinuumError

if TYPE_CHECKING:  # the rest is imported where used: the CLI must start fast (test_startup)
    from continuum_cli.config.models import Settings
    from continuum_cli.doctor.model import HttpOutcome

READY_TIMEOUT = 60.0
LOADING_TIMEOUT = 900.0  # the embedded backend may fetch and load its model first
STOP_TIMEOUT = 15.0


def register(app: typer.Typer) -> None:
    app.command("claude", context_settings={"allow_extra_args": True,
                                            "ignore_unknown_options": True})(claude)


def claude(
    ctx: typer.Context,
    # --config only: `-c` is Claude Code's own --continue and must pass through.
    config: Annotated[str | None, typer.Option(
        "--config", envvar="CONTINUUM_CONFIG", help="Path to config.yaml.")] = None,
    no_setup: Annotated[bool, typer.Option(
        "--no-setup", help="Leave ~/.claude.json alone (no onboarding or API key entries).")
    ] = False,
    gateway: Annotated[bool, typer.Option(
        "--gateway", help="Sign in through the router's Claude Code gateway (/login) "
        "instead of an API key: points /login at it in ~/.claude/settings.json, records its "
        "trust, and starts Claude Code, which signs in first.")] = False,
) -> None:
    """Run Claude Code against the router (starting it if needed); other args go to claude."""
    from continuum_cli.cli.env_cmd import wanted_env
    from continuum_cli.config.loader import load_config
    from continuum_cli.doctor.client import router_url

    with guarded():
        settings = load_config(config).settings
        executable = _claude_executable()
        if gateway:
            env = gateway_setup(settings, os.environ)
        else:
            env = {**os.environ, **wanted_env(settings, os.environ)}
            if not no_setup:
                first_run_setup(env)
        with running_router(router_url(settings), config, _verify(settings)):
            code = run_claude(executable, list(ctx.args), env)
    raise typer.Exit(code)


def first_run_setup(env: dict[str, str]) -> None:
    """Record Claude Code's onboarding as done and approve the key it gets, in its state file,
    so a new user reaches the prompt (see `claude_state`); say what changed. A file we cannot
    update is reported, and Claude Code starts anyway."""
    from continuum_cli.claude_state.store import apply_setup

    try:
        applied = apply_setup(env, env.get("ANTHROPIC_API_KEY"))
    except ContinuumError as exc:
        err.print(f"continuum: warning: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""),
                  highlight=False, markup=False, soft_wrap=True)
        return
    for change in applied.changes:
        err.print(f"continuum: updated {applied.path}: {change}", highlight=False, markup=False,
                  soft_wrap=True)


def gateway_setup(settings: "Settings", environ: dict[str, str]) -> dict[str, str]:
    """Point Claude Code's /login at the router's gateway (see gateway.claude_setup) and
    return its environment without API-key settings, which would bypass the sign-in."""
    from continuum_cli.doctor.client import router_url
    from continuum_cli.gateway.claude_setup import apply, gateway_base

    if not settings.gateway.enabled:
        raise ContinuumError("the gateway is not enabled in this config",
                             hint="set gateway.enabled: true (with api_keys.mode: blocking)")
    base, fingerprint = gateway_base(settings, router_url(settings))
    ca_file = None
    if fingerprint is not None and settings.server.tls is not None:
        ca_file = str(Path(settings.server.tls.cert).expanduser().resolve())
    for path, change in apply(environ, base, fingerprint, ca_file):
        err.print(f"continuum: updated {path}: {change}", highlight=False, markup=False,
                  soft_wrap=True)
    err.print(f"continuum: Claude Code signs in at {base} (/login)", highlight=False,
              markup=False, soft_wrap=True)
    dropped = ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
    return {k: v for k, v in environ.items() if k not in dropped}


def _verify(settings: "Settings") -> object:
    if settings.server.tls is None:
        return True
    from continuum_cli.tls import client_context

    return client_context(settings.server.tls.cert)


def _claude_executable() -> str:
    found = shutil.which("claude")
    if found is None:
        raise ContinuumError("claude is not on PATH",
                             hint="install Claude Code: npm install -g @anthropic-ai/claude-code")
    return found


def _health(url: str, verify: object = True, **options: float) -> "HttpOutcome":
    import asyncio

    from continuum_cli.doctor.probes import router_health

    return asyncio.run(router_health(url, verify=verify, **options))


def router_state(outcome: "HttpOutcome") -> str:
    """"down", "loading", "ready", or "foreign" (something that is not continuum answers)."""
    if not outcome.reached:
        return "down"
    body = outcome.body
    if not (isinstance(body, dict) and "status" in body and "backends" in body):
        return "foreign"
    return "loading" if outcome.status == 503 else "ready"


@contextmanager
def running_router(url: str, config: str | None, verify: object = True) -> Iterator[None]:
    state = router_state(_health(url, verify))
    if state == "foreign":
        raise ContinuumError(f"{url} answers, but it is not a continuum router",
                             hint="stop that program or change server.bind_address")
    if state != "down":
        yield
        return
    from platformdirs import user_log_dir

    log_path = Path(user_log_dir("continuum")) / "router.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = _spawn(config, log)
        try:
            _wait_ready(url, proc, log_path, verify)
            yield
        finally:
            stop(proc)


def _spawn(config: str | None, log: IO[bytes]) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "continuum_cli", "serve"]
    if config:
        args += ["--config", config]
    env = dict(os.environ)
    # The child must import what we import, also from a zipapp's unpacked site-packages.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.exists(p))
    log.write(f"--- continuum claude: starting the router at {time.ctime()} ---\n".encode())
    log.flush()
    # A session of its own: Ctrl-C in Claude Code must not reach the router mid-reply.
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                            start_new_session=True)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path,
                verify: object = True) -> None:
    err.print(f"starting the continuum router at {url} (log: {log_path})", highlight=False,
              soft_wrap=True)
    started, said_loading = time.monotonic(), False
    while True:
        if proc.poll() is not None:
            raise ContinuumError(f"the router exited with code {proc.returncode} before it "
                                 f"was ready", hint=f"see {log_path}, or run `continuum doctor`")
        state = router_state(_health(url, verify, timeout=2.0))
        if state == "ready":
            return
        if state == "loading" and not said_loading:
            err.print("the backend is loading its model; waiting…", highlight=False)
            said_loading = True
        limit = LOADING_TIMEOUT if state == "loading" else READY_TIMEOUT
        if time.monotonic() - started > limit:
            stop(proc)
            raise ContinuumError(f"the router at {url} was not ready after {limit:g} s",
                                 hint=f"see {log_path}, or run `continuum doctor`")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_claude(executable: str, args: Sequence[str], env: dict[str, str]) -> int:
    """Run claude in the foreground; Ctrl-C is claude's to handle, so we ignore it meanwhile."""
    proc = subprocess.Popen([executable, *args], env=env)
    # Ignored only after the spawn: an ignored signal would be inherited by claude.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code
