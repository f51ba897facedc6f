"""`continuum alias list|resolve|set|remove`: the `model_aliases` table, read and edited.

`list` and `resolve` read the config (no network); `set` and `remove` edit config.yaml in
place through `alias_yaml` (comments and order kept; see its docstring for why).
"""

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from continuum_cli.cli.output import err, guarded, out
from continuum_cli.cli.serve import ConfigOpt
from continuum_cli.errors import ContinuumError, ModelNotFound

if TYPE_CHECKING:  # the rest is imported where used: the CLI must start fast (test_startup)
    from continuum_cli.config.models import Settings

# Names Claude Code sends (REPORT.md §4, §9), to show what each alias catches.
CLAUDE_MODELS = ("claude-opus-5-5", "claude-opus-4-5", "claude-sonnet-4-5",
                 "claude-haiku-4-5-20251001", "claude-3-5-haiku-latest")

alias_app = typer.Typer(help="Show, test and edit model_aliases.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def register(app: typer.Typer) -> None:
    app.add_typer(alias_app, name="alias")


def alias_key(rule: str, model: str) -> str:
    """The alias entry a match rule used (`family:haiku` -> `haiku`)."""
    if rule == "exact":
        return model
    return rule.split(":", 1)[1] if rule.startswith("family:") else rule


def pattern(key: str) -> str:
    from continuum_cli.routing import FAMILIES

    if key == "default":
        return "any other name"
    if key in FAMILIES:
        return f"names containing '{key}'"
    return f"exactly '{key}'"


def catches(settings: "Settings", key: str) -> list[str]:
    """Which of Claude Code's model names end up at this alias."""
    from continuum_cli.routing import backend_models, match_alias

    served = backend_models(settings)
    names = []
    for model in CLAUDE_MODELS:
        match = None if model in served else match_alias(model, settings.model_aliases)
        if match is not None and alias_key(match.rule, model) == key:
            names.append(model)
    return names


def table_rows(settings: "Settings") -> list[dict[str, Any]]:
    from continuum_cli.routing import backend_models

    served = backend_models(settings)
    return [{"alias": key, "target": target, "matches": pattern(key),
             "catches": catches(settings, key),
             "backend": served[target].name if target in served else None}
            for key, target in settings.model_aliases.items()]


@alias_app.command("list")
def list_aliases(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show each alias, its target, and which Claude model names it catches."""
    from rich.table import Table

    from continuum_cli.config.loader import load_config

    with guarded():
        loaded = load_config(config)
    rows = table_rows(loaded.settings)
    if as_json:
        out.print_json(json.dumps({"config": str(loaded.path) if loaded.path else None,
                                   "aliases": rows}))
        return
    table = Table(title=f"model_aliases ({loaded.path or 'no config file'})")
    for column in ("alias", "target", "backend", "catches"):
        table.add_column(column)
    for row in rows:
        caught = ", ".join(row["catches"]) or "-"
        table.add_row(row["alias"], row["target"], row["backend"] or "(not listed)",
                      f"{row['matches']}: {caught}")
    out.print(table)


def explain(model: str, settings: "Settings") -> dict[str, Any]:
    """What `model` becomes and why: exact / family / default / backend / not found."""
    from continuum_cli.doctor.checks import rule_text
    from continuum_cli.routing import resolve

    try:
        route = resolve(model, settings)
    except ModelNotFound as exc:
        return {"model": model, "rule": "not_found", "alias": None, "target": None,
                "backend": None, "reason": exc.message, "hint": exc.hint}
    rule = route.rule.split(":", 1)[0]
    return {"model": model, "rule": rule,
            "alias": alias_key(route.rule, model) if route.rewritten and
            rule not in ("only-backend",) else None,
            "target": route.upstream_model, "backend": route.backend.name,
            "reason": rule_text(route.rule), "hint": None}


@alias_app.command("resolve")
def resolve_alias(model: Annotated[str, typer.Argument(help="A model name, e.g. "
                                                      "claude-haiku-4-5-20251001.")],
                  config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show what a model name becomes and why (exit 1 when it is not found)."""
    from continuum_cli.config.loader import load_config

    with guarded():
        data = explain(model, load_config(config).settings)
    if as_json:
        out.print_json(json.dumps(data))
    elif data["rule"] == "not_found":
        out.print(f"{model}: not found ({data['reason']})", markup=False, highlight=False)
        err.print(f"hint: {data['hint']}", markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(f"{model} -> {data['target']} on backend {data['backend']} "
                  f"({data['reason']})", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1 if data["rule"] == "not_found" else 0)


def _edit(config: str | None, change: str, name: str, target: str | None) -> str:
    from continuum_cli.cli.alias_yaml import (
        current_aliases,
        remove_alias,
        set_alias,
        verify,
        write_atomic,
    )
    from continuum_cli.config.loader import find_config

    path = find_config(config)
    if path is None:
        raise ContinuumError("no config file to edit",
                             hint="create config.yaml (see README) or pass --config PATH")
    old = path.read_text(encoding="utf-8")
    aliases = current_aliases(old)
    if change == "set":
        new, aliases = set_alias(old, name, str(target), str(path)), {**aliases,
                                                                     name: str(target)}
    else:
        new = remove_alias(old, name, str(path))
        aliases = {k: v for k, v in aliases.items() if k != name}
    verify(old, new, aliases, str(path))
    write_atomic(path, new)
    return str(path)


@alias_app.command("set")
def set_command(name: Annotated[str, typer.Argument(help="Alias: haiku, sonnet, opus, "
                                                   "default, or an exact model name.")],
                target: Annotated[str, typer.Argument(help="The backend model it maps to.")],
                config: ConfigOpt = None) -> None:
    """Add or change an alias in config.yaml (comments and order are kept)."""
    from continuum_cli.config.loader import load_config
    from continuum_cli.routing import backend_models

    with guarded():
        if not name.strip() or not target.strip():
            raise ContinuumError("alias name and target must not be empty")
        path = _edit(config, "set", name, target)
        settings = load_config(str(path)).settings
    err.print(f"model_aliases.{name} = {target} in {path}", markup=False, highlight=False)
    if target not in backend_models(settings) and target not in settings.model_aliases and \
            all(b.models for b in settings.backends):
        err.print(f"note: no backend lists `{target}` in its models; requests for it will "
                  "fail until one does", markup=False, highlight=False, soft_wrap=True)


@alias_app.command("remove")
def remove_command(name: Annotated[str, typer.Argument(help="The alias to remove.")],
                   config: ConfigOpt = None) -> None:
    """Remove an alias from config.yaml (comments and order are kept)."""
    with guarded():
        path = _edit(config, "remove", name, None)
    err.print(f"removed model_aliases.{name} from {path}", markup=False, highlight=False)
