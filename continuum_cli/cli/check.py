"""`continuum check`: validate the config and summarise it (secrets shown only as set/unset)."""

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from continuum_cli.cli.output import err, out, report
from continuum_cli.cli.serve import ConfigOpt
from continuum_cli.errors import ConfigError

if TYPE_CHECKING:  # imported where used: the CLI must start fast (tests/cli/test_startup.py)
    from continuum_cli.config.loader import LoadedConfig
    from continuum_cli.config.models import Settings


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def summary(loaded: "LoadedConfig") -> dict[str, Any]:
    """The config as data, with every secret replaced by whether it is set."""
    from continuum_cli.backends.profiles import normalize_base_url

    s: "Settings" = loaded.settings
    return {
        "valid": True,
        "config": str(loaded.path) if loaded.path else None,
        "bind_address": s.server.bind_address,
        "backends": [{
            "name": b.name, "type": b.type,
            "url": normalize_base_url(b.url, b.type) if b.url else None,
            "models": list(b.models), "api_key": "set" if b.api_key else "unset",
            "timeout": b.timeout, "weight": b.weight,
            "health_check": {"path": b.health_check.path, "interval": b.health_check.interval,
                             "timeout": b.health_check.timeout},
        } for b in s.backends],
        "routing": {"strategy": s.routing.strategy, "max_attempts": s.routing.max_attempts,
                    "fallbacks": {k: list(v) for k, v in s.routing.fallbacks.items()}},
        "model_aliases": dict(s.model_aliases),
        "web_search": {
            "enabled": s.web_search.enabled, "provider": s.web_search.provider,
            "api_key": "set" if s.web_search.api_key else "unset",
            "injection": s.web_search.injection, "max_results": s.web_search.max_results,
        },
        "api_keys": {"mode": s.api_keys.mode, "keys": len(s.api_keys.keys),
                     "keys_file": s.api_keys.keys_file,
                     "limited": sum(1 for k in s.api_keys.keys if k.limits or k.budgets),
                     "admin": sum(1 for k in s.api_keys.keys if k.admin)},
        "state": _state_summary(s),
        "pricing": sorted(s.pricing),
        "logging": {"level": s.logging.level, "format": s.logging.format},
        "tls": {"cert": s.server.tls.cert} if s.server.tls else None,
        "gateway": _gateway(s),
        "warnings": alias_warnings(s) + _gateway_warnings(s),
    }


def _gateway(s: "Settings") -> dict[str, Any]:
    from continuum_cli.gateway.checksum import settings_checksum

    g = s.gateway
    policy = settings_checksum(g.managed_settings) if g.managed_settings is not None else None
    return {"enabled": g.enabled, "token_ttl": g.token_ttl, "refresh_ttl": g.refresh_ttl,
            "managed_settings": policy, "models": [m.id for m in g.models],
            "otlp_forward": g.otlp_forward, "public_url": g.public_url}


def _gateway_warnings(s: "Settings") -> list[str]:
    if not s.gateway.enabled or any(not b.models for b in s.backends):
        return []  # models a backend reports at start-up may route them
    from continuum_cli.gateway.endpoints import unrouted_models

    return [f"gateway.models {model}: reaches no model; map it in model_aliases"
            for model in unrouted_models(s)]


def _state_summary(s: "Settings") -> dict[str, Any]:
    """Where limits, budgets and the ledger live (a Redis URL without its password)."""
    from continuum_cli.state import default_state_path
    from continuum_cli.state.redis_store import _safe_url

    st = s.state
    where = (_safe_url(st.redis_url) if st.redis_url
             else str(st.path or default_state_path()))
    return {"store": "redis" if st.redis_url else "sqlite", "where": where,
            "on_error": st.on_error, "timeout": st.timeout}


def alias_warnings(s: "Settings") -> list[str]:
    """Aliases whose target no backend lists (a backend that lists no models may still serve
    it: discovery happens at start-up, so this is a warning, not an error)."""
    listed = {m for b in s.backends for m in b.models}
    if not listed or any(not b.models for b in s.backends):
        return []
    aliases = [f"model_aliases.{alias} -> {target}: no backend lists `{target}` in its models"
               for alias, target in s.model_aliases.items()
               if target not in listed and target not in s.model_aliases]
    fallbacks = [f"routing.fallbacks.{model} -> {target}: no backend lists `{target}` in its "
                 "models" for model, targets in s.routing.fallbacks.items() for target in targets
                 if target not in listed and target not in s.model_aliases]
    return aliases + fallbacks


def check(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Validate config.yaml and show what the router will use. Exit 0 valid, 2 invalid."""
    from continuum_cli.config.loader import load_config

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        if as_json:
            out.print_json(json.dumps({"valid": False, "error": str(exc), "path": exc.path,
                                       "line": exc.line, "hint": exc.hint}))
            raise typer.Exit(2) from None
        raise typer.Exit(report(exc)) from None
    data = summary(loaded)
    if as_json:
        out.print_json(json.dumps(data))
        return
    _render(data)


def _render(data: dict[str, Any]) -> None:
    from rich.table import Table

    where = data["config"] or "no config file (built-in defaults)"
    err.print(f"[green]✓[/] config valid: {where}", highlight=False)
    table = Table(title="backends")
    for col in ("name", "type", "url", "models", "api_key"):
        table.add_column(col)
    for b in data["backends"]:
        table.add_row(b["name"], b["type"], b["url"] or "(embedded)",
                      ", ".join(b["models"]) or "(discovered)", b["api_key"])
    out.print(table)
    aliases = Table(title="model_aliases")
    aliases.add_column("alias")
    aliases.add_column("target")
    for k, v in data["model_aliases"].items():
        aliases.add_row(k, v)
    out.print(aliases)
    ws = data["web_search"]
    out.print(f"web_search: {'enabled' if ws['enabled'] else 'disabled'} "
              f"(provider {ws['provider']}, key {ws['api_key']}, injection {ws['injection']})")
    gw = data["gateway"]
    if gw["enabled"]:
        out.print(f"gateway: enabled ({'https' if data['tls'] else 'http'}; managed settings "
                  f"{gw['managed_settings'] or 'none'}; models: "
                  f"{', '.join(gw['models']) or 'from claude-* aliases'})")
    ak = data["api_keys"]
    out.print(f"api_keys: {ak['mode']} mode, {ak['keys']} key(s), {ak['limited']} with "
              f"limits or budgets" + (f", keys_file {ak['keys_file']}" if ak["keys_file"] else ""))
    st = data["state"]
    out.print(f"state: {st['store']} {st['where']} (on_error {st['on_error']}, timeout "
              f"{st['timeout'] * 1000:.0f} ms)", highlight=False)
    routing = data["routing"]
    fallbacks = "; ".join(f"{k} -> {', '.join(v)}" for k, v in routing["fallbacks"].items())
    out.print(f"routing: {routing['strategy']}, up to {routing['max_attempts']} backend(s) per "
              f"request" + (f", fallbacks {fallbacks}" if fallbacks else ""))
    out.print(f"server: {data['bind_address']}")
    for warning in data["warnings"]:
        err.print(f"[yellow]![/] {warning}", highlight=False)
