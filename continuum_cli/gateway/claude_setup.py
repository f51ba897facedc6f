"""`continuum claude --gateway`: point Claude Code's `/login` at this gateway.

Two files in Claude Code's config folder (`$CLAUDE_CONFIG_DIR`, else `~/.claude`), each
changed only in the entries below, atomically, under Claude Code's own lock, keeping every
other entry and the file's mode (the I/O of `claude_state.store`):

* `settings.json`: `forceLoginMethod: "gateway"` and `forceLoginGatewayUrl: <base>`, which
  make `/login` (and a first start) offer this gateway; with the router's own TLS
  certificate also `env.NODE_EXTRA_CA_CERTS: <cert>` (Claude Code verifies the chain);
* `.credentials.json`: `gatewayTrust[<host>]`: `"http-loopback"` for http on a loopback host,
  or the SHA-256 fingerprint of the certificate this router serves (lowercase hex, as
  Claude Code records it after its trust prompt), so the prompt is not needed. Nothing is
  written for a gateway whose certificate continuum cannot read locally: Claude Code then
  asks, showing the fingerprint (compare it with `continuum serve`'s log or `doctor`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from continuum_cli.errors import ContinuumError


def config_dir(environ: Mapping[str, str]) -> Path:
    custom = environ.get("CLAUDE_CONFIG_DIR")
    return Path(custom).expanduser() if custom else Path(environ.get("HOME", "~")).expanduser() \
        / ".claude"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def trust_value(base: str, fingerprint: str | None) -> tuple[str, str] | None:
    """(host, value) for `gatewayTrust`, or None when Claude Code should ask."""
    parts = urlsplit(base)
    host = parts.hostname or ""
    if parts.scheme == "http":
        return (host, "http-loopback") if is_loopback(host) else None
    return (host, fingerprint) if fingerprint else None


def gateway_base(settings: Any, router: str) -> tuple[str, str | None]:
    """(the /login URL, the certificate fingerprint to trust or None). Over TLS a loopback
    address becomes `localhost`: Claude Code wants the exact DNS name in a subjectAltName."""
    if settings.gateway.public_url:
        # served through something else (a proxy): its certificate is not ours to vouch for
        return settings.gateway.public_url.rstrip("/"), None
    else:
        parts = urlsplit(router)
        host = parts.hostname or "127.0.0.1"
        if parts.scheme == "https" and is_loopback(host):
            host = "localhost"
        host = f"[{host}]" if ":" in host else host
        base = f"{parts.scheme}://{host}:{parts.port}/anthropic"
    if settings.server.tls is None:
        return base, None
    from continuum_cli.tls import fingerprint

    return base, fingerprint(settings.server.tls.cert)


def plan_settings(current: Mapping[str, Any], base: str, ca_file: str | None = None
                  ) -> tuple[dict[str, Any], list[str]]:
    """The two login entries; with `ca_file` also `env.NODE_EXTRA_CA_CERTS` (Claude Code
    verifies the gateway's chain before it pins the certificate: a self-signed one must be
    named as a CA, as its own error message says)."""
    wanted = {"forceLoginMethod": "gateway", "forceLoginGatewayUrl": base}
    changes = [f"{k} = {v}" for k, v in wanted.items() if current.get(k) != v]
    updated = {**current, **wanted}
    env = dict(current.get("env") or {})
    if ca_file and env.get("NODE_EXTRA_CA_CERTS") != ca_file:
        updated["env"] = {**env, "NODE_EXTRA_CA_CERTS": ca_file}
        changes.append(f"env.NODE_EXTRA_CA_CERTS = {ca_file}")
    return updated, changes


def plan_trust(current: Mapping[str, Any], trust: tuple[str, str] | None
               ) -> tuple[dict[str, Any], list[str]]:
    if trust is None:
        return dict(current), []
    host, value = trust
    table = dict(current.get("gatewayTrust") or {})
    if table.get(host) == value:
        return dict(current), []
    table[host] = value
    return {**current, "gatewayTrust": table}, [f"gatewayTrust[{host}] = {value}"]


def apply(environ: Mapping[str, str], base: str, fingerprint: str | None,
          ca_file: str | None = None) -> list[tuple[Path, str]]:
    """Write both files; returns (file, change) for each entry that changed."""
    folder = config_dir(environ)
    done = _update(folder / "settings.json", lambda doc: plan_settings(doc, base, ca_file),
                   0o644)
    done += _update(folder / ".credentials.json",
                    lambda doc: plan_trust(doc, trust_value(base, fingerprint)), 0o600)
    return done


def _update(path: Path, change: Any, mode: int) -> list[tuple[Path, str]]:
    from continuum_cli.claude_state import store

    target = path.resolve()
    try:
        with store._locked(target):
            current = store.read_state(target) if target.exists() else {}
            updated, changes = change(current)
            if changes:
                existed = target.exists()
                store._replace(target, updated)
                if not existed:
                    os.chmod(target, mode)
    except OSError as exc:
        raise ContinuumError(f"cannot update {path}: {exc.strerror or exc}") from exc
    return [(path, c) for c in changes]
