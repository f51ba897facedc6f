"""`continuum env`: the settings `continuum claude` gives Claude Code, as shell lines.

    eval "$(continuum env)"            # bash, zsh
    continuum env --shell fish | source

The API key line appears only when one is needed: a key the shell already has and the
router accepts is kept. In blocking mode the line carries a configured key, because that is
what the shell needs; it is printed only here, on request, never in logs or `--json`.
"""

import os
import shlex
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from continuum_cli.cli.output import guarded
from continuum_cli.cli.serve import ConfigOpt

if TYPE_CHECKING:  # the rest is imported where used: the CLI must start fast (test_startup)
    from continuum_cli.config.models import Settings


class Shell(str, Enum):  # noqa: UP042 (a plain str Enum is what Typer documents)
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def register(app: typer.Typer) -> None:
    app.command("env")(env)


def detect_shell(environ: Mapping[str, str]) -> Shell:
    name = Path(environ.get("SHELL", "")).name
    return Shell(name) if name in Shell.__members__ else Shell.bash


def export_lines(variables: Mapping[str, str], shell: Shell) -> list[str]:
    if shell is Shell.fish:
        return [f"set -gx {k} {shlex.quote(v)}" for k, v in variables.items()]
    return [f"export {k}={shlex.quote(v)}" for k, v in variables.items()]


def wanted_env(settings: "Settings", environ: Mapping[str, str]) -> dict[str, str]:
    """What Claude Code needs for the configured router (shared with `continuum claude`)."""
    from continuum_cli.doctor.client import client_env, router_url
    from continuum_cli.doctor.runner import configured_keys

    return client_env(settings, router_url(settings), environ, configured_keys(settings))


def env(
    config: ConfigOpt = None,
    shell: Annotated[Shell | None, typer.Option(
        "--shell", help="Syntax of the lines (default: from $SHELL).")] = None,
) -> None:
    """Print export lines that point Claude Code at the router: eval "$(continuum env)"."""
    from continuum_cli.config.loader import load_config

    with guarded():
        variables = wanted_env(load_config(config).settings, os.environ)
    # typer.echo, not the rich console: the lines must reach the shell byte for byte
    for text in export_lines(variables, shell or detect_shell(os.environ)):
        typer.echo(text)
