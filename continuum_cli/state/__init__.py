"""The state store: small shared state that must survive restarts and be the same on every
replica (limits, budgets, the usage ledger, files metadata, gateway tokens).

`StateStore` is the contract; `SQLiteStore` (stdlib sqlite3, WAL, the default: nothing to
install or configure) and `RedisStore` (`redis.asyncio`, the optional extra
`continuum[redis]`, shared by several `continuum serve` replicas) implement it. Every failure
raises `continuum_cli.errors.StoreUnavailable`.
"""

from __future__ import annotations

from continuum_cli.state.base import StateStore, default_state_path, open_store

__all__ = ["StateStore", "default_state_path", "open_store"]
