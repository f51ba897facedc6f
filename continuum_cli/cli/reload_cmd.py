"""`continuum reload`: make the running router re-read its config file, and say how it went.

The router is found through the file `continuum serve` keeps in the user state directory
(`continuum_cli/reload/pidfile.py`), keyed by the address it listens on: `--bind`, else the
config's `server.bind_address`, else the only router running. It gets SIGHUP; the command
then waits for the router to record the reload's outcome in that file.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from continuum_cli.cli.output import err, out
from continuum_cli.cli.serve import ConfigOpt
from continuum_cli.errors import ContinuumError


def register(app: typer.Typer) -> None:
    app.command("reload")(reload)


def reload(
    config: ConfigOpt = None,
    bind: Annotated[str | None, typer.Option(
        "--bind", "-b", envvar="CONTINUUM_BIND",
        help="host:port of the router (default: the config's server.bind_address).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcome.")] = 15.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Re-read the config of the running router (same as sending it SIGHUP). Exit 0 reloaded,
    2 the new config was rejected (the old one keeps serving), 1 no router found."""
    from continuum_cli.cli.output import guarded

    with guarded():
        path, info = _find(bind, config)
        ok, message = _signal_and_wait(path, info, timeout)
    if as_json:
        out.print_json(json.dumps({"ok": ok, "message": message, "pid": info["pid"],
                                   "url": info.get("url"), "config": info.get("config")}))
    else:
        mark = "[green]✓[/]" if ok else "[bold red]✗[/]"
        err.print(f"{mark} {message} [dim]({info.get('url')}, pid {info['pid']})[/]",
                  highlight=False, soft_wrap=True)
    raise typer.Exit(0 if ok else 2)


def _wanted(bind: str | None, config: str | None) -> tuple[str, int] | None:
    from continuum_cli.config.models import split_bind_address

    if bind:
        try:
            return split_bind_address(bind)
        except ValueError as exc:
            raise ContinuumError(f"--bind: {exc}") from None
    try:
        from continuum_cli.config.loader import load_config

        server = load_config(config).settings.server
    except ContinuumError:  # an invalid config still names no address: use the only router
        return None
    return server.host, server.port


def _find(bind: str | None, config: str | None) -> tuple[Path, dict[str, Any]]:
    from continuum_cli.reload.pidfile import run_dir, running

    routers = running()
    wanted = _wanted(bind, config)
    if wanted is not None:
        host, port = wanted
        match = [(p, i) for p, i in routers if i.get("port") == port
                 and (i.get("host") == host or "0.0.0.0" in (host, i.get("host")))]
        if match:
            return match[0]
    if len(routers) == 1 and not bind:
        return routers[0]
    where = f" on {wanted[0]}:{wanted[1]}" if wanted else ""
    listed = ", ".join(f"{i.get('url')} (pid {i.get('pid')})" for _, i in routers)
    raise ContinuumError(
        f"no running continuum router found{where}" + (f"; running: {listed}" if listed else ""),
        hint=f"start one with `continuum serve`, or pass --bind HOST:PORT (routers are "
             f"listed in {run_dir()})")


def _signal_and_wait(path: Path, info: dict[str, Any], timeout: float) -> tuple[bool, str]:
    from continuum_cli.reload.pidfile import read

    before = info.get("reloads", 0)
    try:
        os.kill(info["pid"], signal.SIGHUP)
    except OSError as exc:
        raise ContinuumError(f"cannot signal the router (pid {info['pid']}): {exc.strerror}",
                             hint="run `continuum reload` as the user running the router") \
            from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = read(path)
        if now is not None and now.get("reloads", 0) > before and now.get("last_reload"):
            last = now["last_reload"]
            return bool(last.get("ok")), str(last.get("message"))
        time.sleep(0.05)
    raise ContinuumError(f"the router (pid {info['pid']}) did not report a reload within "
                         f"{timeout:g}s", hint="look at the router's log")
