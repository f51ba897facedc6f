"""Per-client attempt limits for the sign-in endpoints (RFC 8628 §5.1, §5.2), and the
gateway's shared secret, both kept in the state store so every replica sees the same."""

from __future__ import annotations

import math
import secrets
import time
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


def client_ip(client: str) -> str:
    """`1.2.3.4:5678` / `::1:5678` -> the address without the port."""
    return client.rpartition(":")[0] or client or "unknown"
