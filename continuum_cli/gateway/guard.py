"""Per-client attempt limits for the sign-in endpoints (RFC 8628 §5.1, §5.2), and the
gateway's shared secret, both kept in the state store so every replica sees the same."""

from __future__ import annotations

import ipaddress
import math
import secrets
import time
from collections.abc import Sequence
from typing import Any

ATTEMPTS = "gw_attempts"
SECRET = "gw_secret"
_CAS_TRIES = 5


async def allow(store: Any, bucket: str, client: str, limit: int, window: float,
                now: float | None = None) -> tuple[bool, int]:
    """Count one attempt by `client` in `bucket`: (allowed, seconds until the window resets).

    A fixed window; the count is raised with compare-and-set so replicas never lose one."""
    now = time.time() if now is None else now
    key = f"{bucket}:{client}"
    for _ in range(_CAS_TRIES):
        current = await store.kv_get(ATTEMPTS, key)
        if current is None:
            if await store.kv_put_new(ATTEMPTS, key, {"n": 1, "reset": now + window}, window):
                return True, math.ceil(window)
            continue
        left = max(current["reset"] - now, 1.0)
        if current["n"] >= limit:
            return False, math.ceil(left)
        if await store.kv_update(ATTEMPTS, key, current, {**current, "n": current["n"] + 1},
                                 left):
            return True, math.ceil(left)
    return True, math.ceil(window)  # contended past reason: never lock a person out for it


async def shared_secret(store: Any, name: str) -> bytes:
    """A random secret made once and shared by every replica through the store."""
    await store.kv_put_new(SECRET, name, {"hex": secrets.token_hex(32)}, None)
    record = await store.kv_get(SECRET, name)
    return bytes.fromhex(record["hex"])


def peer_ip(client: str) -> str:
    """`1.2.3.4:5678` / `::1:5678` -> the address without the port."""
    return client.rpartition(":")[0] or client or "unknown"


def _trusted(address: str, proxies: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in proxies)


def client_ip(client: str, forwarded_for: str = "", proxies: Sequence[str] = ()) -> str:
    """The address attempts are counted for. Behind `gateway.trusted_proxies` it is the
    right-most `X-Forwarded-For` hop that is not one of them (earlier hops are whatever the
    client wrote); otherwise the connection's peer."""
    peer = peer_ip(client)
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer
