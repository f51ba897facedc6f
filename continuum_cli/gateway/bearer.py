"""Bearer tokens issued by the gateway -> the API key they were issued for.

A token carries its key's *name*; the key itself is looked up on every request, so a key
that is disabled, expires or leaves `api_keys` ends its tokens at once (the protocol's
deprovisioning hook) and the caller always gets that key's current limits and budgets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from continuum_cli.auth import presented_key
from continuum_cli.config.models import ApiKey
from continuum_cli.errors import AuthenticationFailed
from continuum_cli.gateway import codes


def key_by_name(name: str, keys: Iterable[ApiKey], now: datetime | None = None
                ) -> ApiKey | None:
    now = now or datetime.now(UTC)
    for entry in keys:
        if entry.name == name and entry.enabled and not _expired(entry, now):
            return entry
    return None


def _expired(entry: ApiKey, now: datetime) -> bool:
    if entry.expires_at is None:
        return False
    expires = entry.expires_at
    return (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) <= now


def gateway_token(headers: Mapping[str, str]) -> str | None:
    """The presented credential when it is one of the gateway's tokens."""
    token = presented_key(headers)
    return token if token and codes.is_gateway_token(token) else None


async def authenticate(gateway: Any, token: str, keys: Iterable[ApiKey]) -> ApiKey:
    """The key behind a gateway access token, or 401 (`x-should-retry: false`: Claude Code
    then asks the person to sign in again at once instead of retrying for minutes)."""
    record = await gateway.bearer(token)
    if record is None:
        raise AuthenticationFailed("the gateway token is expired, revoked or unknown; "
                                   "sign in again with /login")
    key = key_by_name(record["key_name"], keys)
    if key is None:
        raise AuthenticationFailed(f"the key {record['key_name']!r} this sign-in used is no "
                                   "longer enabled; sign in again with /login")
    return key
