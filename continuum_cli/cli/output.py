"""The two consoles (data to stdout, diagnostics to stderr) and log setup.

Rich for people on a terminal; when stderr is not a terminal (a file, systemd, a pipe) a plain
one-line formatter, so no line is wrapped or padded: people and tests grep for lines such as
`Rewrote request.model via model_aliases` (style.md §1.6). `--log-format json` gives one JSON
object per line for machines.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.logging import RichHandler

from continuum_cli.errors import ConfigError, ContinuumError

out = Console()
err = Console(stderr=True)

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in record.__dict__.items()
                     if k not in _STD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """`asctime level name: message`, with the date and time formatted once per second: the
    router writes two or three INFO lines per request (access, routing)."""

    _second: int | None = None
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


def _cheap_records() -> None:
    """Skip what no formatter here prints: the caller's file and line (a stack walk per
    record), thread and process names."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]  # documented switch in logging


def setup_logging(level: str = "info", fmt: str = "rich") -> None:
    root = logging.getLogger("continuum")
    root.handlers.clear()
    root.setLevel(level.upper())
    root.propagate = False
    if fmt == "json":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif err.is_terminal:
        handler = RichHandler(console=err, show_path=False, markup=False, rich_tracebacks=True,
                              tracebacks_show_locals=False, log_time_format="[%X]")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)-7s %(name)s: "
                                            "%(message)s"))
    _cheap_records()
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
        raise typer.Exit(report(exc)) from None
