"""The gateway's base URL as the client sees it, and the endpoint URLs derived from it.

The client uses a discovery URL only when it is absolute and on the same origin as `{base}`
(gateway protocol, "Discovery"), so every URL is built from the origin the request came to:
`gateway.public_url` when set, else the `Forwarded` / `X-Forwarded-*` headers of a proxy in
front, else the request's own scheme (https on a TLS listener) and `Host`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from continuum_cli.errors import InvalidRequest

BASE_PATH = "/anthropic"
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?$")


def _forwarded(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(proto, host) from RFC 7239 `Forwarded` (first hop), else `X-Forwarded-Proto/Host`."""
    proto = host = None
    first = headers.get("forwarded", "").split(",")[0]
    for part in first.split(";"):
        name, _, value = part.strip().partition("=")
        value = value.strip().strip('"')
        if name.lower() == "proto" and value:
            proto = value
        elif name.lower() == "host" and value:
            host = value
    proto = proto or headers.get("x-forwarded-proto", "").split(",")[0].strip() or None
    host = host or headers.get("x-forwarded-host", "").split(",")[0].strip() or None
    return proto, host


def base_url(headers: Mapping[str, str], scheme: str, public_url: str | None = None) -> str:
    """`{scheme}://{host}/anthropic` for this request."""
    if public_url:
        return public_url.rstrip("/")
    proto, host = _forwarded(headers)
    proto = (proto or scheme).lower()
    host = host or headers.get("host", "")
    if proto not in ("http", "https") or not _HOST.match(host):
        raise InvalidRequest("the Host header is missing or not a host name")
    return f"{proto}://{host}{BASE_PATH}"


def origin(base: str) -> str:
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def endpoints(base: str) -> dict[str, str]:
    return {
        "device_authorization_endpoint": f"{base}/oauth/device_authorization",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "verification_uri": f"{base}/device",
    }


def metadata(base: str) -> dict[str, object]:
    """RFC 8414 authorization server metadata. No `authorization_endpoint`: the device flow
    is the only way in (the protocol says it is intentionally absent)."""
    urls = endpoints(base)
    return {
        "issuer": base,
        "device_authorization_endpoint": urls["device_authorization_endpoint"],
        "token_endpoint": urls["token_endpoint"],
        "revocation_endpoint": urls["revocation_endpoint"],
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code",
                                  "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": [],
    }
