"""Pure API-key checks for inbound requests (issue "api_keys").

Permissive (default): every request passes. Blocking: `x-api-key` or `Authorization: Bearer`
must match an enabled, unexpired key, compared in constant time. No key ever appears in an
error message or a log line: the result is a `Caller`, the identity a request carries (its
key's name, limits, budgets, admin flag), never the key itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from dataclasses import dataclass

from continuum_cli.config.models import ApiKey, ApiKeysSettings, Budget, KeyLimits
from continuum_cli.errors import AuthenticationFailed

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """Who is asking: what limits, budgets, the usage ledger and /admin see of a request."""

    name: str
    limits: KeyLimits | None = None
    budgets: tuple[Budget, ...] = ()
    admin: bool = False
    authenticated: bool = False  # False: permissive mode, no (known) key presented

    @property
    def metered(self) -> bool:
        """Has any limit or budget (a key with none gets no rate-limit headers)."""
        return self.limits is not None or bool(self.budgets)


def caller_for_key(entry: ApiKey, settings: ApiKeysSettings) -> Caller:
    """The identity of a configured key; `api_keys.defaults` fills what the key leaves unset.
    Anything that authenticates on a key's behalf (e.g. a token issued for it) uses this."""
    defaults = settings.defaults
    limits = entry.limits if entry.limits is not None else defaults.limits
    budgets = entry.budgets if entry.budgets is not None else defaults.budgets
    return Caller(entry.name, limits, tuple(budgets or ()), entry.admin, authenticated=True)


def anonymous_caller(settings: ApiKeysSettings) -> Caller:
    """Permissive mode without a known key: `api_keys.defaults` applies to the router as a
    whole (one shared counter)."""
    defaults = settings.defaults
    return Caller(ANONYMOUS, defaults.limits, tuple(defaults.budgets or ()))


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
                 keys: Iterable[ApiKey] | None = None, now: datetime | None = None) -> Caller:
    """Return the caller (`anonymous_caller` in permissive mode without a known key), or
    raise 401."""
    candidate = presented_key(headers)
    pool = tuple(keys if keys is not None else settings.keys)
    match = find_key(candidate, pool, now) if candidate else None
    if match is not None:
        return caller_for_key(match, settings)
    if settings.mode == "permissive":
        return anonymous_caller(settings)
    if candidate is None:
        raise AuthenticationFailed(
            "missing API key: send it as x-api-key or Authorization: Bearer "
            "(set ANTHROPIC_API_KEY for Claude Code)"
        )
    raise AuthenticationFailed("invalid API key: it is not an enabled, unexpired key in api_keys")
