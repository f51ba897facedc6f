"""`continuum usage`: who used what, from the ledger in the state store the router uses
(the config's `state` section: SQLite by default, Redis when configured)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any

import typer

ConfigOpt = Annotated[str | None, typer.Option(
    "--config", "-c", envvar="CONTINUUM_CONFIG", help="Path to config.yaml.")]


class By(str, Enum):
    key = "key"
    model = "model"
    backend = "backend"
    day = "day"


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)


def usage(
    by: Annotated[By, typer.Option("--by", help="Group by key, model, backend or day.")] = By.key,
    since: Annotated[str, typer.Option(
        "--since", help="How far back: a duration (7d, 24h, 30m, 2w) or a date (2026-08-01).")
    ] = "7d",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Requests, tokens, web searches and cost per key, model, backend or day."""
    import asyncio

    from continuum_cli.config.loader import load_config

    settings = load_config(config).settings
    try:
        report = asyncio.run(_read(settings, by.value, since))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    _render(report)


async def _read(settings: Any, by: str, since: str) -> dict[str, Any]:
    from continuum_cli.state import open_store
    from continuum_cli.usage.query import usage_report

    store = open_store(settings.state)
    await store.open()
    try:
        return await usage_report(store, by, since)
    finally:
        await store.close()


def _render(report: dict[str, Any]) -> None:
    from rich.table import Table

    from continuum_cli.cli.output import out

    by = report["by"]
    table = Table(title=f"usage by {by} since {report['since']}", title_justify="left")
    table.add_column(by)
    for name in ("requests", "rejected", "errors", "input", "output", "cached", "searches",
                 "cost"):
        table.add_column(name, justify="right")
    for row in report["rows"]:
        table.add_row(str(row[by]), *_cells(row))
    table.add_section()
    table.add_row("total", *_cells(report["totals"]), style="bold")
    out.print(table)
    if report["totals"]["unpriced_requests"]:
        out.print(f"[dim]{report['totals']['unpriced_requests']} request(s) without a price "
                  "(add their models under `pricing`)[/dim]")


def _cells(row: dict[str, Any]) -> list[str]:
    cost = row["cost_usd"]
    return [f"{row['requests']:,}", f"{row['rejected']:,}", f"{row['errors']:,}",
            f"{row['input_tokens']:,}", f"{row['output_tokens']:,}",
            f"{row['cached_tokens']:,}", f"{row['web_searches']:,}",
            f"${cost:,.4f}" if cost is not None else "-"]
