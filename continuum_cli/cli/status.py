"""`continuum status`: the backends of a running router, from its /health.

A table of every backend (status, requests in flight, requests, errors, p50 latency, last
error); `--watch` redraws it live; `--json` prints what /health said. Exit 0 while every
model has a ready backend, 1 otherwise or when the router cannot be reached. Heavy imports
(httpx, rich's table and live display, the config schema) happen inside the command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from continuum_cli.cli.serve import ConfigOpt

if TYPE_CHECKING:
    from rich.console import RenderableType

STYLES = {"ready": "green", "loading": "yellow", "down": "bold red"}
OVERALL = {"ok": "green", "degraded": "bold red", "loading": "yellow", "no_backends": "yellow"}


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    config: ConfigOpt = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="Router URL (default: from the config's bind address).")] = None,
    watch: Annotated[bool, typer.Option(
        "--watch", "-w", help="Redraw the table live until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.2, help="Seconds between redraws with --watch.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the router's backends: status, in flight, requests, errors, p50, last error."""
    from continuum_cli.cli.output import guarded

    with guarded():
        router = _router(config, url)
        if watch and not as_json:
            _watch(router, interval)
            raise typer.Exit(0)
        health = fetch(router)
        if as_json:
            from continuum_cli.cli.output import out

            out.print_json(data=health)
        else:
            from continuum_cli.cli.output import out

            out.print(render(health, router))
        raise typer.Exit(0 if health.get("status") == "ok" else 1)


def _router(config: str | None, url: str | None) -> str:
    from continuum_cli.doctor.client import router_url

    if url:
        return router_url(None, url)  # type: ignore[arg-type]
    from continuum_cli.config.loader import load_config

    return router_url(load_config(config).settings)


def fetch(router: str) -> dict[str, Any]:
    """The router's /health (public: no key needed, and it shows no secret)."""
    import httpx

    from continuum_cli.errors import ContinuumError

    try:
        resp = httpx.get(router + "/health", timeout=15, trust_env=False)
        data = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ContinuumError(f"cannot read {router}/health: {type(exc).__name__}: {exc}",
                             hint="start it with `continuum serve`, or pass --url") from None
    if not isinstance(data, dict) or not isinstance(data.get("backends"), list):
        raise ContinuumError(f"{router}/health did not answer like a continuum router")
    return data


def _watch(router: str, interval: float) -> None:
    import time

    from rich.live import Live

    from continuum_cli.cli.output import out, real_console
    from continuum_cli.errors import ContinuumError

    def frame() -> RenderableType:
        try:
            return render(fetch(router), router)
        except ContinuumError as exc:
            from rich.text import Text

            return Text(f"{exc.message} (retrying)", style="bold red")

    with Live(frame(), console=real_console(out), auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(frame(), refresh=True)
        except KeyboardInterrupt:
            pass


def render(health: dict[str, Any], router: str) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    overall = str(health.get("status", "?"))
    title = Text.assemble("router ", (router, "bold"), "  ", (overall, OVERALL.get(overall, "")))
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in (("backend", "left"), ("status", "left"), ("since", "left"),
                          ("in flight", "right"), ("requests", "right"), ("errors", "right"),
                          ("p50", "right"), ("last error", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for entry in health.get("backends", []):
        table.add_row(*row(entry))
    return Group(title, table)


def row(entry: dict[str, Any]) -> list[Any]:
    from rich.text import Text

    state = str(entry.get("status", "?"))
    ejected = entry.get("ejected_for")
    shown = f"{state} (ejected {ejected:g}s)" if ejected else state
    p50 = entry.get("latency_p50_ms")
    error = entry.get("last_error") or ""
    if error and entry.get("last_error_at"):
        error = f"{_clock(entry['last_error_at'])} {error}"
    return [str(entry.get("name", "?")), Text(shown, style=STYLES.get(state, "")),
            _clock(entry.get("since")), str(entry.get("in_flight", 0)),
            str(entry.get("requests", 0)), str(entry.get("errors", 0)),
            "-" if p50 is None else f"{p50:g} ms", Text(error[:120], style="dim")]


def _clock(iso: Any) -> str:
    """`2026-12-05T12:30:01Z` -> `12:30:01` (UTC): short enough for a table cell."""
    text = str(iso or "")
    return text[11:19] if len(text) >= 19 else text or "-"
