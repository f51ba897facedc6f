"""`continuum gateway tokens list|revoke`, `continuum gateway approve CODE --key-name NAME`.

These read and change the same state store the router uses (`state:` in the config: the
SQLite file by default, Redis when `state.redis_url` is set), so they work on a running
router, and on every replica of one. Heavy modules are imported inside the commands.
"""

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from continuum_cli.cli.output import err, guarded, out
from continuum_cli.errors import ConfigError, ContinuumError

gateway_app = typer.Typer(help="Claude Code gateway: sign-ins and their tokens.",
                          no_args_is_help=True)
tokens_app = typer.Typer(help="List and revoke gateway sign-ins.", no_args_is_help=True)
gateway_app.add_typer(tokens_app, name="tokens")
ConfigOpt = Annotated[str | None, typer.Option(
    "--config", "-c", envvar="CONTINUUM_CONFIG", help="Path to config.yaml.")]
T = TypeVar("T")


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")


def _settings(config: str | None) -> Any:
    from continuum_cli.config.loader import load_config

    settings = load_config(config).settings
    if not settings.gateway.enabled:
        err.print("[yellow]note:[/] gateway.enabled is false in this config", markup=True)
    return settings


def _with_gateway(settings: Any, action: Callable[[Any], Awaitable[T]]) -> T:
    import asyncio

    from continuum_cli.gateway.store import GatewayStore
    from continuum_cli.state import open_store

    async def run() -> T:
        store = open_store(settings.state)
        await store.open()
        try:
            return await action(GatewayStore(store, settings.gateway))
        finally:
            await store.close()

    return asyncio.run(run())


def _when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _rows(settings: Any, sessions: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    ttl = settings.gateway.refresh_ttl
    return [{"id": sid, "key_name": rec.get("key_name"), "signed_in": _when(rec.get("created")),
             "refreshed": _when(rec.get("refreshed")),
             "expires": _when((rec.get("refreshed") or 0) + ttl),
             "surface": rec.get("surface"), "client": rec.get("client"),
             "approved_via": rec.get("via")}
            for sid, rec in sessions]


@tokens_app.command("list")
def tokens_list(config: ConfigOpt = None, as_json: Annotated[bool, typer.Option(
        "--json", help="Machine-readable output.")] = False) -> None:
    """Every live sign-in (one per /login): key, when, from where. Never a token."""
    with guarded():
        settings = _settings(config)
        rows = _rows(settings, _with_gateway(settings, lambda gw: gw.sessions()))
        if as_json:
            out.print_json(json.dumps(rows))
            return
        from rich.table import Table

        table = Table("id", "key", "signed in", "refreshed", "expires", "surface", "client",
                      "via", title=f"{len(rows)} gateway sign-in(s)")
        for r in rows:
            table.add_row(r["id"], r["key_name"], r["signed_in"], r["refreshed"], r["expires"],
                          r["surface"] or "-", r["client"] or "-", r["approved_via"] or "-")
        out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    session: Annotated[str | None, typer.Argument(help="A sign-in id from `tokens list`.")]
    = None,
    key_name: Annotated[str | None, typer.Option(
        "--key-name", help="Revoke every sign-in of this key.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Revoke every sign-in.")] = False,
    config: ConfigOpt = None,
) -> None:
    """End sign-ins: their bearer tokens get 401 at once and refreshes fail (re-login)."""
    with guarded():
        if sum(bool(x) for x in (session, key_name, every)) != 1:
            raise ConfigError("give one of: a sign-in id, --key-name NAME, or --all")
        settings = _settings(config)
        count = _with_gateway(settings, lambda gw: _revoke(gw, session, key_name))
        if session and not count:
            raise ContinuumError(f"no live sign-in {session}",
                                 hint="see `continuum gateway tokens list`")
        out.print(f"revoked {count} sign-in(s)")


async def _revoke(gateway: Any, session: str | None, key_name: str | None) -> int:
    if session:
        return int(await gateway.revoke_session(session))
    count = 0
    for sid, record in await gateway.sessions():
        if key_name is None or record.get("key_name") == key_name:
            count += int(await gateway.revoke_session(sid))
    return count


@gateway_app.command("approve")
def approve(
    code: Annotated[str, typer.Argument(help="The code Claude Code shows (XXXX-XXXX).")],
    key_name: Annotated[str, typer.Option(
        "--key-name", help="The api_keys entry the sign-in acts as.")],
    deny: Annotated[bool, typer.Option("--deny", help="Deny the sign-in instead.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Approve (or deny) a pending sign-in from the terminal, for a key in api_keys."""
    with guarded():
        from continuum_cli.api.state import load_keys_file
        from continuum_cli.gateway.bearer import key_by_name
        from continuum_cli.gateway.codes import normalize_user_code

        settings = _settings(config)
        user_code = normalize_user_code(code)
        if user_code is None:
            raise ContinuumError(f"{code!r} is not a sign-in code (8 letters, e.g. WDJB-MJHT)")
        keys = settings.api_keys.keys + load_keys_file(settings.api_keys.keys_file)
        if not deny and key_by_name(key_name, keys) is None:
            raise ConfigError(f"no enabled, unexpired key named {key_name!r} in api_keys",
                              hint="names: " + ", ".join(sorted({k.name for k in keys})))
        outcome = _with_gateway(settings, lambda gw: gw.decide(user_code, not deny, key_name,
                                                               "cli"))
        _report_decision(outcome, user_code, key_name)


_DECISION_ERRORS = {
    "unknown": "no pending sign-in has that code (wrong code, or it expired)",
    "expired": "that code has expired; start the sign-in again",
    "already_decided": "that code was already approved or denied",
}


def _report_decision(outcome: str, user_code: str, key_name: str) -> None:
    if outcome in _DECISION_ERRORS:
        raise ContinuumError(_DECISION_ERRORS[outcome])
    if outcome == "approved":
        out.print(f"approved {user_code} as {key_name}: Claude Code completes the sign-in "
                  "at its next poll")
    else:
        out.print(f"denied {user_code}")
