"""The gateway's routes, mounted by the app when `gateway.enabled` (base: `/anthropic`)."""

from __future__ import annotations

from continuum_cli.gateway import endpoints, oauth, usage, verify

_DISCOVERY = {"GET": oauth.discovery, "HEAD": oauth.discovery}
ROUTES = {
    "/anthropic/.well-known/oauth-authorization-server": _DISCOVERY,
    # RFC 8414 §3.1: the well-known segment goes before the issuer's path
    "/.well-known/oauth-authorization-server/anthropic": _DISCOVERY,
    "/anthropic/oauth/device_authorization": {"POST": oauth.device_authorization},
    "/anthropic/oauth/token": {"POST": oauth.token},
    "/anthropic/oauth/revoke": {"POST": oauth.revoke},
    "/anthropic/device": {"GET": verify.show, "POST": verify.submit},
    "/anthropic/managed/settings": {"GET": endpoints.managed_settings},
    "/anthropic/api/oauth/usage": {"GET": usage.usage},
    "/anthropic/v1/metrics": {"POST": endpoints.telemetry},
    "/anthropic/v1/logs": {"POST": endpoints.telemetry},
    "/anthropic/v1/traces": {"POST": endpoints.telemetry},
}
# unauthenticated: the sign-in itself
PUBLIC = frozenset({
    "/anthropic/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/anthropic",
    "/anthropic/oauth/device_authorization", "/anthropic/oauth/token",
    "/anthropic/oauth/revoke", "/anthropic/device",
})
