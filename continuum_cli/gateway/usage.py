"""`GET {base}/api/oauth/usage`: the bearer's own caps in dollars and percent, the shape
claude.ai serves Claude Code's usage data in (gateway protocol, "Usage-limit headers").

`usage_body` is pure: it takes the budget standings (the same computation behind the
unified usage headers, `limits.budgets`) and, for a key without caps, its spend per period.
Amounts are cents; `utilization` and `percent` are whole percents; `resets_at` is the same
instant as the `-overage-reset` header of that cap.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from continuum_cli.limits.budgets import BudgetStanding, fullest, period_bounds
from continuum_cli.server.types import Request, Response, json_response


def _severity(standing: BudgetStanding) -> str:
    if standing.exhausted or standing.utilization > 0.95:
        return "critical"
    return "warning" if standing.utilization > 0.75 else "normal"


def _row(standing: BudgetStanding, active: bool) -> dict[str, Any]:
    return {"kind": "spend" if standing.kind == "cost" else "tokens",
            "group": standing.period, "percent": round(standing.utilization * 100),
            "resets_at": standing.resets_iso, "severity": _severity(standing),
            "is_active": active}


def _cents(usd: float) -> int:
    return round(usd * 100)


def capped_body(standings: Sequence[BudgetStanding]) -> dict[str, Any]:
    """A key with budgets: one `limits` row per cap; the dollars are those of the cap the
    headers describe when it is a spend cap, else of the fullest spend cap; a key whose caps
    are all token counts has no dollars to show (the client then shows the percent)."""
    headline = fullest(standings)
    spend = [s for s in standings if s.kind == "cost"]
    dollars = headline if headline is not None and headline.kind == "cost" else fullest(spend)
    rows = [_row(s, s is (dollars or headline)) for s in standings]
    if dollars is None:
        extra = {"is_enabled": True, "monthly_limit": None, "used_credits": 0,
                 "utilization": None, "currency": "USD"}
    else:
        extra = {"is_enabled": True, "monthly_limit": _cents(dollars.cap),
                 "used_credits": _cents(dollars.used),
                 "utilization": round(dollars.utilization * 100), "currency": "USD"}
    return {"extra_usage": extra, "limits": rows}


def uncapped_body(daily: float, weekly: float, monthly: float) -> dict[str, Any]:
    """A key without caps: its spend this UTC day, week (from Monday) and month, in cents;
    null limits (0 would read as a $0 cap)."""
    return {"extra_usage": {
        "is_enabled": True, "monthly_limit": None, "used_credits": _cents(monthly),
        "utilization": None, "currency": "USD",
        "daily": {"limit": None, "used_credits": _cents(daily), "utilization": None},
        "weekly": {"limit": None, "used_credits": _cents(weekly), "utilization": None}},
        "limits": []}


def spend_by_period(records: Sequence[dict[str, Any]], key: str, now: float
                    ) -> tuple[float, float, float]:
    """USD spent by `key` this day, week and month, from usage-ledger records."""
    starts = [period_bounds(p, now)[0] for p in ("daily", "weekly", "monthly")]
    totals = [0.0, 0.0, 0.0]
    for record in records:
        if record.get("key") != key:
            continue
        for i, start in enumerate(starts):
            if record.get("ts", 0) >= start:
                totals[i] += float(record.get("cost_usd") or 0.0)
    return totals[0], totals[1], totals[2]


async def usage(state: Any, request: Request) -> Response:
    from continuum_cli.limits.gate import read_budgets

    caller, now = request.caller, time.time()
    if caller is not None and caller.budgets:
        body = capped_body(await read_budgets(state.store, caller, now))
    else:
        since = min(period_bounds(p, now)[0] for p in ("weekly", "monthly"))
        records = await state.store.usage_query(since)
        body = uncapped_body(*spend_by_period(records, getattr(caller, "name", ""), now))
    return json_response(200, body, {"cache-control": "no-store"})
