"""The two consoles (data to stdout, diagnostics to stderr) and log setup.

Rich for people on a terminal; when stderr is not a terminal (a file, systemd, a pipe) a plain
one-line formatter, so no line is wrapped or padded: people and tests grep for lines such as
`Rewrote request.model via model_aliases` (style.md §1.6). `--log-format json` gives one JSON
object per line for machines.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from continuum_cli.errors import ConfigError, ContinuumError

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made at first use: importing rich costs tens of milliseconds, and
    `continuum --version`, `--help` and shell completion must start fast (README)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)

    def real(self) -> Console:
        self.is_terminal  # noqa: B018 (made on first use)
        assert self._console is not None
        return self._console


def real_console(console: Any) -> Console:
    """The rich Console behind `out` or `err` (for rich objects that take a console)."""
    return console.real() if isinstance(console, _LazyConsole) else console


out: Console = _LazyConsole()  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]

def setup_logging(level: str = "info", fmt: str = "rich") -> None:
    import logging

    from continuum_cli.cli.log_format import JsonFormatter, PlainFormatter, cheap_records

    root = logging.getLogger("continuum")
    root.handlers.clear()
    root.setLevel(level.upper())
    root.propagate = False
    if fmt == "json":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif err.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=real_console(err), show_path=False, markup=False, rich_tracebacks=True,
                              tracebacks_show_locals=False, log_time_format="[%X]")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)-7s %(name)s: "
                                            "%(message)s"))
    cheap_records()
    root.addHandler(handler)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def report(exc: ContinuumError) -> int:
    """Print a one-line error (and its hint) to stderr; return the exit code for it."""
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"[yellow]hint:[/] {exc.hint}", markup=True, highlight=False, soft_wrap=True)
    return 2 if isinstance(exc, ConfigError) else 1


@contextmanager
def guarded() -> Iterator[None]:
    """Run a command body: a ContinuumError becomes a message and exit 2 (config) or 1."""
    try:
        yield
    except ContinuumError as exc:
        import typer

        raise typer.Exit(report(exc)) from None
