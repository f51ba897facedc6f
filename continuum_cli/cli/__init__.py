"""The `continuum` command line. The only package that imports typer and rich.

Each command module exposes `register(app)`; `main()` converts every `ContinuumError` into a
one-line message on stderr and an exit code (2 for configuration, 1 otherwise).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from continuum_cli import __version__
from continuum_cli.errors import ContinuumError

app = typer.Typer(
    name="continuum",
    help="Route Claude Code (and any Anthropic Messages API client) to self-hosted models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"continuum {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool | None, typer.Option(  
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """continuum: an Anthropic Messages API router for self-hosted models."""


def _register() -> None:
    from continuum_cli.cli import check, serve

    serve.register(app)
    check.register(app)
    for name in ("websearch_cmd", "doctor", "alias", "claude", "env_cmd", "gateway_cmd",
                 "usage_cmd", "status"):
        module = _optional(name)
        if module is not None:
            module.register(app)


def _optional(name: str):  # type: ignore[no-untyped-def]
    import importlib

    try:
        return importlib.import_module(f"continuum_cli.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"continuum_cli.cli.{name}":
            raise
        return None


_register()


def main() -> None:
    from continuum_cli.cli.output import report

    try:
        app(prog_name="continuum")
    except ContinuumError as exc:
        sys.exit(report(exc))
