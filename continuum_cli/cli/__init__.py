"""The `continuum` command line. The only package that imports typer and rich.

Each command module exposes `register(app)`; `main()` converts every `ContinuumError` into a
one-line message on stderr and an exit code (2 for configuration, 1 otherwise).

Start-up is part of the interface: `continuum --version`, `--help` and every TAB of the shell
completion run a new process (budgets in README, measured by bench/cli_startup.py). So
`--version` is answered before typer is imported, the Typer app is built on first use
(`app` below is made by the module's `__getattr__`), and command modules import heavy
things (httpx, pydantic, the server, asyncio, yaml, ...) inside the functions that use them;
tests/cli/test_startup.py fails when one does not.
"""

import os
import sys
from typing import TYPE_CHECKING, Any

from continuum_cli import __version__

if TYPE_CHECKING:
    import typer

    app: typer.Typer

COMPLETE_VAR = "_CONTINUUM_COMPLETE"


def _make_app() -> "typer.Typer":
    import typer

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"continuum {__version__}")
            raise typer.Exit()

    # a default-value option: an `Annotated[...]` annotation here would be evaluated in the
    # module's namespace, where typer is not imported
    def _root(version: bool | None = typer.Option(  # noqa: B008
            None, "--version", callback=_version, is_eager=True,
            help="Show the version and exit.")) -> None:
        """continuum: an Anthropic Messages API router for self-hosted models."""

    made = typer.Typer(
        name="continuum",
        help="Route Claude Code (and any Anthropic Messages API client) to self-hosted models.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        add_completion=True,
        # click's plain help layout: typer's rich one imports rich's markdown renderer and
        # syntax highlighter for every --help, about 0.1 s of a 0.12 s budget (README)
        rich_markup_mode=None,
    )
    made.callback()(_root)
    return made


def _register() -> None:
    from continuum_cli.cli import check, serve

    serve.register(app)
    check.register(app)
    for name in ("websearch_cmd", "doctor", "alias", "claude", "env_cmd", "gateway_cmd",
                 "usage_cmd", "status", "reload_cmd"):
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


def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global app
    app = _make_app()
    _register()
    return app


def _asks_for_help(args: list[str]) -> bool:
    """`--help` before any `--`: click answers it (eagerly) and runs no command."""
    words = args[:args.index("--")] if "--" in args else args
    return "--help" in words


def _parse_without_coercion() -> None:
    """A completion request or a help page only parses the words typed; it never runs a
    command. Typer (0.2x) coerces every parameter's value through a pydantic TypeAdapter
    even then, which imports pydantic and builds schemas on every TAB (about 0.3 s here). In
    this process only, values are taken as given. Typer internals: when they change, this
    still works, just slower (and tests/cli/test_startup.py says so)."""
    try:
        from typer import _coercion, core
    except ImportError:
        return
    if not hasattr(core, "build_runtime_param") or not hasattr(_coercion, "RuntimeParam"):
        return

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class _AsGiven(_coercion.RuntimeParam):  # type: ignore[misc]
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            return value

    core.build_runtime_param = lambda d: _AsGiven(annotation=d.annotation,
                                                  parameter_info=d.parameter_info)
    # help texts here carry no rich markup (rich_markup_mode=None): nothing to render, and
    # typer would import rich to render it for every zsh/fish TAB
    classes = sys.modules.get("typer._completion_classes")
    if classes is not None and hasattr(classes, "_sanitize_help_text"):
        classes._sanitize_help_text = str


def main() -> None:
    if sys.argv[1:] == ["--version"] and COMPLETE_VAR not in os.environ:
        # the one answer that needs no command tree: print it before typer is imported
        sys.stdout.write(f"continuum {__version__}\n")
        return
    from continuum_cli.cli.output import report
    from continuum_cli.errors import ContinuumError

    if COMPLETE_VAR in os.environ or _asks_for_help(sys.argv[1:]):
        _parse_without_coercion()
    try:
        __getattr__("app")(prog_name="continuum")
    except ContinuumError as exc:
        sys.exit(report(exc))
