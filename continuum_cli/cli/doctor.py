"""`continuum doctor`: run the checks with a live display on stderr, then print the report.

Each result is one line (✓ pass, ✗ fail, ! warning, - skipped) with its evidence, and the
fix under failures and warnings. `--json` prints the report as JSON on stdout instead.
Exit 0 when nothing failed (warnings allowed), 1 otherwise.
"""

import json
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from continuum_cli.cli.output import err, out, real_console
from continuum_cli.cli.serve import ConfigOpt

if TYPE_CHECKING:  # the rest is imported where used: the CLI must start fast (test_startup)
    from rich.progress import Progress, TaskID
    from rich.text import Text

    from continuum_cli.doctor import CheckResult, DoctorOptions, Report

MARKS = {"pass": ("✓", "green"), "fail": ("✗", "bold red"), "warn": ("!", "yellow"),
         "skip": ("-", "dim")}


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    config: ConfigOpt = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="Router URL to test (default: from the config's bind address).")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Do not send a real web-search query.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check everything Claude Code needs: config, backends, aliases, router, search, env."""
    import asyncio

    from continuum_cli.doctor import DoctorOptions

    _quiet_logs()
    report = asyncio.run(_run(DoctorOptions(config=config, url=url, offline=offline),
                              live=not as_json and err.is_terminal))
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        render(report)
    raise typer.Exit(0 if report.ok else 1)


def _quiet_logs() -> None:
    # Doctor reports every problem itself; library log lines (a provider's "rejected the
    # API key" error, say) would only repeat them between the live display's frames.
    logger = logging.getLogger("continuum")
    logger.handlers[:] = [logging.NullHandler()]
    logger.propagate = False


async def _run(opts: "DoctorOptions", live: bool) -> "Report":
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from continuum_cli.doctor import GROUPS, run_doctor

    if not live:
        return await run_doctor(opts)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                  console=real_console(err), transient=True) as progress:
        tasks = {g: progress.add_task(f"checking {g}…") for g in GROUPS}
        return await run_doctor(opts, lambda group, _: _finish(progress, tasks.get(group)))


def _finish(progress: "Progress", task: "TaskID | None") -> None:
    if task is not None:
        progress.update(task, visible=False)


def line(result: "CheckResult", width: int) -> "Text":
    from rich.text import Text

    mark, style = MARKS[result.status]
    return Text.assemble((mark, style), " ", (result.name.ljust(width), "bold"), "  ",
                         result.evidence)


def render(report: "Report") -> None:
    from rich.text import Text

    env = report.environment
    err.print(Text(f"continuum {env['continuum']} · Python {env['python']} · "
                   f"{env['platform']} · router {env['router_url']}", style="dim"))
    width = max((len(r.name) for r in report.results), default=0)
    for result in report.results:
        out.print(line(result, width), soft_wrap=True)
        if result.fix and result.status in ("fail", "warn"):
            out.print(Text.assemble(" " * (width + 4), ("fix: ", "cyan"), result.fix),
                      soft_wrap=True)
    counts = report.counts()
    summary = (f"{counts['pass']} passed, {counts['warn']} warning(s), {counts['fail']} "
               f"failed, {counts['skip']} skipped")
    err.print(Text(summary, style="green" if report.ok else "bold red"))
