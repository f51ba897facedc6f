"""Pure API-key checks for inbound requests (issue "api_keys").

Permissive (default): every request passes. Blocking: `x-api-key` or `Authorization: Bearer`
must match an enabled, unexpired key, compared in constant time. No key ever appears in an
error message or a log line; callers get the key's `name` for the access log.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from continuum_cli.config.models import ApiKey, ApiKeysSettings
from continuum_cli.errors import AuthenticationFailed


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: `x-api-key`, else a Bearer token."""
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def find_key(candidate: str, keys: Iterable[ApiKey], now: datetime | None = None) -> ApiKey | None:
    """The enabled, unexpired key equal to `candidate`; every key is compared (constant time)."""
    now = now or datetime.now(UTC)
    found = None
    for entry in keys:
        same = hmac.compare_digest(entry.key.encode(), candidate.encode())
        if same and entry.enabled and not _expired(entry, now):
            found = entry
    return found


def _expired(entry: ApiKey, now: datetime) -> bool:
    if entry.expires_at is None:
        return False
    expires = entry.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires <= now


def authenticate(headers: Mapping[str, str], settings: ApiKeysSettings,
                 keys: Iterable[ApiKey] | None = None, now: datetime | None = None) -> str:
    """Return the caller's key name ("anonymous" in permissive mode), or raise 401."""
    candidate = presented_key(headers)
    pool = tuple(keys if keys is not None else settings.keys)
    match = find_key(candidate, pool, now) if candidate else None
    if match is not None:
        return match.name
    if settings.mode == "permissive":
        return "anonymous"
    if candidate is None:
        raise AuthenticationFailed(
            "missing API key: send it as x-api-key or Authorization: Bearer "
            "(set ANTHROPIC_API_KEY for Claude Code)"
        )
    raise AuthenticationFailed("invalid API key: it is not an enabled, unexpired key in api_keys")
