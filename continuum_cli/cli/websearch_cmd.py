"""`continuum test-websearch "query"`: one real search with the configured provider and key.

Shows what Claude Code's WebSearch would get: ranked results, the latency and the
provider's remaining rate-limit figures (when it sends them). On failure it says what went
wrong and how to fix it (seed, Troubleshooting: "WebSearch returns zero results").
Exit codes: 0 results (or a valid empty answer), 1 provider error, 2 config error.
"""

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from continuum_cli.cli.output import err, out, report
from continuum_cli.cli.serve import ConfigOpt
from continuum_cli.errors import ConfigError, ProviderError

if TYPE_CHECKING:  # the rest is imported where used: the CLI must start fast (test_startup)
    from continuum_cli.config.models import WebSearchSettings
    from continuum_cli.websearch.providers import SearchResponse

_EXPLAIN = {
    "too_many_requests": "The provider answered HTTP 429: you are hitting its rate limit. "
    "Its free tier may be capped at a low QPS; wait, upgrade the plan or switch providers.",
    "query_too_long": "The query is longer than this provider accepts; shorten it.",
    "invalid_tool_input": "The query is empty; pass the words to search for.",
}


def register(app: typer.Typer) -> None:
    app.command("test-websearch")(test_websearch)


def test_websearch(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    provider: Annotated[str | None, typer.Option(
        "--provider", "-p", help="serper | brave | exa (default: web_search.provider).")] = None,
    count: Annotated[int | None, typer.Option(
        "--count", "-n", min=1, max=50, help="Results to ask for (default: max_results).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run one web search with the configured provider and key, and show the results."""
    import asyncio

    try:
        settings = search_settings(config, provider)
    except ConfigError as exc:
        if as_json:
            _fail_json(exc, "config")
        else:
            report(exc)
        raise typer.Exit(2) from None
    try:
        with _quiet_provider_logs():
            found = asyncio.run(_search(settings, query, count or settings.max_results))
    except ProviderError as exc:
        if as_json:
            _fail_json(exc, exc.error_code)
        else:
            _explain(exc, settings)
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(json.dumps(as_data(found), ensure_ascii=False))
    else:
        _render(found, settings)


def search_settings(config: str | None, provider: str | None) -> "WebSearchSettings":
    """The configured web_search section, switched to `provider` if given. A provider
    other than the configured one takes its key from its environment variable."""
    from continuum_cli.config.loader import load_config
    from continuum_cli.config.models import PROVIDER_KEY_ENV

    ws = load_config(config).settings.web_search
    name = provider or ws.provider
    if name not in PROVIDER_KEY_ENV:
        raise ConfigError(f"--provider must be one of {', '.join(PROVIDER_KEY_ENV)}, not {name}")
    env = PROVIDER_KEY_ENV[name]
    same = name == ws.provider
    key = (ws.api_key if same else None) or os.environ.get(env, "")
    if not key.strip():
        raise ConfigError(
            f"no API key for web search provider {name}", path="web_search.api_key",
            hint=f'export {env}=... and set web_search.api_key: "${{{env}}}" in config.yaml',
        )
    return ws.model_copy(update={"provider": name, "api_key": key,
                                 "base_url": ws.base_url if same else None})


async def _search(settings: "WebSearchSettings", query: str, count: int) -> "SearchResponse":
    import httpx

    from continuum_cli.websearch.providers import make_provider

    async with httpx.AsyncClient(trust_env=False) as client:
        return await make_provider(settings, client).search(query, count=count)


@contextlib.contextmanager
def _quiet_provider_logs() -> Iterator[None]:
    # the command prints its own explanation; the router's log line would repeat it
    logger = logging.getLogger("continuum.websearch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def as_data(found: "SearchResponse") -> dict[str, Any]:
    return {
        "ok": True, "provider": found.provider, "query": found.query,
        "latency_ms": round(found.latency_ms, 1), "rate_limit": found.rate_limit,
        "results": [{"rank": n, "title": r.title, "url": r.url, "page_age": r.page_age,
                     "snippet": r.snippet} for n, r in enumerate(found.results, 1)],
    }


def _render(found: "SearchResponse", settings: "WebSearchSettings") -> None:
    from rich.table import Table

    table = Table(title=f'{found.provider}: "{found.query}"')
    for column in ("#", "title", "url", "age", "snippet"):
        table.add_column(column, overflow="fold")
    for n, r in enumerate(found.results, 1):
        table.add_row(str(n), r.title, r.url, r.page_age or "", _short(r.snippet))
    out.print(table)
    err.print(f"{len(found.results)} result(s) from {found.provider} in "
              f"{found.latency_ms:.0f} ms", highlight=False)
    if found.rate_limit:
        figures = "; ".join(f"{k}: {v}" for k, v in sorted(found.rate_limit.items()))
        err.print(f"rate limit ({found.provider}) {figures}", highlight=False)
    if not found.results:
        err.print("[yellow]the provider answered, but with no results[/]")
    if not settings.enabled:
        err.print("[yellow]note:[/] web_search.enabled is false; the router will not search "
                  "until you set it to true")


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _explain(exc: ProviderError, settings: "WebSearchSettings") -> None:
    err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
    why = _EXPLAIN.get(exc.error_code)
    if why:  # says what to do, in the seed's troubleshooting words
        err.print(why, highlight=False)
    elif exc.hint:
        err.print(f"[yellow]fix:[/] {exc.hint}", highlight=False)
    if exc.status in (401, 403, 422) and "API key" in exc.message:
        from continuum_cli.config.models import PROVIDER_KEY_ENV

        env = PROVIDER_KEY_ENV[settings.provider]
        err.print(f"The {settings.provider} key in use comes from web_search.api_key / {env}; "
                  "check it in the provider's dashboard.", highlight=False)


def _fail_json(exc: ConfigError | ProviderError, code: str) -> None:
    data = {"ok": False, "error_code": code, "message": exc.message, "hint": exc.hint,
            "status": getattr(exc, "status", None)}
    out.print_json(json.dumps(data, ensure_ascii=False))
