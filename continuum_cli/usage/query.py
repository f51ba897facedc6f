"""Read the ledger and summarize it: the one function behind `continuum usage` and
`GET /admin/usage`, so both return the same JSON."""

from __future__ import annotations

import time
from typing import Any

from continuum_cli.usage.report import parse_since, summarize

READ_TIMEOUT = 30.0  # reading weeks of records is not on a request's hot path


async def usage_report(store: Any, by: str = "key", since: str = "7d",
                       now: float | None = None) -> dict[str, Any]:
    """Raises ValueError for a bad `by`/`since`, StoreUnavailable when the store fails."""
    now = time.time() if now is None else now
    start = parse_since(since, now)
    summarize([], by, start, now)  # validates `by` before reading anything
    records = await store.usage_query(start, None, timeout=READ_TIMEOUT)
    return summarize(records, by, start, now)
