"""Ledger records -> grouped totals with cost: the JSON of `continuum usage --json` and
`GET /admin/usage`.

A record: {ts, key, route, model, served_model, backend, input_tokens, output_tokens,
cached_tokens, web_searches, status, duration_ms, cost_usd (null: no price known)}.
Requests refused by a limit or budget (status 429 from the router itself, `limited: true`)
are counted as `rejected`, not as `requests`: they never reached a backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

GROUPS = ("key", "model", "backend", "day")
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float) -> float:
    """`7d`, `24h`, `30m`, `2w`, or an ISO date/time (UTC unless it says) -> unix seconds."""
    match = _SINCE.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: use a duration such as 7d, 24h, 30m or a date "
                         "such as 2026-08-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def group_value(record: dict[str, Any], by: str) -> str:
    if by == "day":
        return datetime.fromtimestamp(float(record.get("ts", 0)), UTC).strftime("%Y-%m-%d")
    if by == "model":
        return str(record.get("served_model") or record.get("model") or "-")
    return str(record.get(by) or "-")


def _empty() -> dict[str, Any]:
    return {"requests": 0, "rejected": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0,
            "cached_tokens": 0, "web_searches": 0, "cost_usd": None, "unpriced_requests": 0}


def _add(row: dict[str, Any], record: dict[str, Any]) -> None:
    if record.get("limited"):
        row["rejected"] += 1
        return
    row["requests"] += 1
    if int(record.get("status") or 0) >= 400:
        row["errors"] += 1
    for field in ("input_tokens", "output_tokens", "cached_tokens", "web_searches"):
        row[field] += int(record.get(field) or 0)
    cost = record.get("cost_usd")
    if cost is None:
        row["unpriced_requests"] += 1
    else:
        row["cost_usd"] = round((row["cost_usd"] or 0.0) + float(cost), 6)


def summarize(records: Iterable[dict[str, Any]], by: str, since: float,
              until: float) -> dict[str, Any]:
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")
    rows: dict[str, dict[str, Any]] = {}
    totals = _empty()
    for record in records:
        _add(rows.setdefault(group_value(record, by), _empty()), record)
        _add(totals, record)
    ordered = sorted(rows.items(), key=lambda kv: (kv[0] if by == "day" else
                                                   (-kv[1]["requests"], kv[0])))
    return {"by": by, "since": _iso(since), "until": _iso(until),
            "rows": [{by: name, **row} for name, row in ordered], "totals": totals}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
