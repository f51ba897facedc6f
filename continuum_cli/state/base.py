"""The store protocol, the default SQLite location, and the factory `open_store`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from continuum_cli.config.models import StateSettings
from continuum_cli.state.counters import Admission, Check, Settlement

# tests and several routers on one machine can point the default elsewhere without a config
PATH_ENV = "CONTINUUM_STATE_PATH"


class StateStore(Protocol):
    """Values are JSON-able dicts; `ns` is a short namespace; `ttl` is seconds (None: forever).
    Expired entries are never returned."""

    description: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def kv_get(self, ns: str, key: str, timeout: float | None = None
                     ) -> dict[str, Any] | None: ...
    # `timeout` (default `state.timeout`): for callers off the request hot path, such as
    # the Files API, which may wait longer than an admission may
    async def kv_put(self, ns: str, key: str, value: dict[str, Any],
                     ttl: float | None = None, timeout: float | None = None) -> None: ...
    async def kv_put_new(self, ns: str, key: str, value: dict[str, Any],
                         ttl: float | None = None) -> bool: ...
    async def kv_take(self, ns: str, key: str) -> dict[str, Any] | None: ...
    async def kv_update(self, ns: str, key: str, expect: dict[str, Any], value: dict[str, Any],
                        ttl: float | None = None) -> bool: ...
    async def kv_delete(self, ns: str, key: str, timeout: float | None = None) -> bool: ...
    async def kv_list(self, ns: str, prefix: str = "", timeout: float | None = None
                      ) -> list[tuple[str, dict[str, Any]]]: ...

    # limits (counters.py): apply what finished requests left (`settlement`), then an
    # all-or-nothing check-and-add -- one atomic step, one round trip. `alone`: no other
    # request of this router is under way, so a store may finish writing after it answers
    # (SQLite: while the request waits on its upstream)
    async def admit(self, checks: list[Check], now: float,
                    settlement: Settlement | None = None, alone: bool = False
                    ) -> Admission: ...
    async def settle(self, settlement: Settlement, now: float,
                     timeout: float | None = None) -> None: ...
    async def counters(self, keys: list[str], now: float) -> list[float]: ...
    # the usage ledger: records appended by settlements, read back by time
    async def usage_query(self, since: float, until: float | None = None,
                          timeout: float | None = None) -> list[dict[str, Any]]: ...


def default_state_path() -> Path:
    """`$CONTINUUM_STATE_PATH`, else continuum.db in the user data dir (platformdirs)."""
    env = os.environ.get(PATH_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("continuum")) / "continuum.db"


def open_store(settings: StateSettings) -> StateStore:
    """The store the settings name (not yet opened): Redis when `redis_url` is set."""
    if settings.redis_url:
        from continuum_cli.state.redis_store import RedisStore

        return RedisStore(settings.redis_url, timeout=settings.timeout)
    from continuum_cli.state.sqlite_store import SQLiteStore

    path = Path(settings.path).expanduser() if settings.path else default_state_path()
    return SQLiteStore(path, timeout=settings.timeout)
