"""Who may read `/metrics` (pure).

The metrics name every backend, model and route with their traffic: in `api_keys` blocking
mode they are served to loopback clients only (a Prometheus on the same host, or a proxy in
front that decides for itself), unless `server.metrics_public: true` opens them to every
address. Permissive mode serves everything to everyone, metrics included.
"""

from __future__ import annotations

import ipaddress

from continuum_cli.config.models import Settings


def is_loopback(client: str) -> bool:
    """`client` is the peer as "host:port" (IPv6 hosts unbracketed, as asyncio reports them)."""
    host = client.rpartition(":")[0].strip("[]") if ":" in client else client
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return bool((mapped or address).is_loopback)


def metrics_allowed(settings: Settings, client: str) -> bool:
    if settings.api_keys.mode != "blocking" or settings.server.metrics_public:
        return True
    return is_loopback(client)
