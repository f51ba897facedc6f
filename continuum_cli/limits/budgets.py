"""Calendar budget periods (UTC) and each budget's standing.

`budget_standings` is the one computation behind the unified usage headers and
`GET /api/oauth/usage`: period, used, cap, utilization and the reset instant of every budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from continuum_cli.config.models import Budget


def period_bounds(period: str, now: float) -> tuple[float, float]:
    """(start, end) unix seconds of the UTC calendar period holding `now`: a day from
    midnight, a week from Monday, a month from the 1st."""
    # every period starts on a whole UTC hour: the bounds are the same all hour long
    return _bounds(period, int(now // 3600))


@lru_cache(maxsize=64)
def _bounds(period: str, hour: int) -> tuple[float, float]:
    moment = datetime.fromtimestamp(hour * 3600, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}")
    return start.timestamp(), end.timestamp()


def budget_kind(budget: Budget) -> str:
    return "tokens" if budget.tokens is not None else "cost"


def budget_cap(budget: Budget) -> float:
    return float(budget.tokens if budget.tokens is not None else budget.cost_usd or 0)


def budget_key(name: str, budget: Budget, now: float) -> tuple[str, float]:
    """The store counter of a key's budget in the current period, and the period's end."""
    start, end = period_bounds(budget.period, now)
    return f"budget:{name}:{budget.period}:{budget_kind(budget)}:{int(start)}", end


class BudgetStanding(NamedTuple):
    period: str  # daily | weekly | monthly
    kind: str  # tokens | cost
    used: float  # tokens, or USD
    cap: float
    starts_at: float  # unix seconds
    resets_at: float  # unix seconds: the end of the period

    @property
    def utilization(self) -> float:
        return self.used / self.cap if self.cap else 0.0

    @property
    def exhausted(self) -> bool:
        return self.used >= self.cap

    @property
    def resets_iso(self) -> str:
        """ISO 8601 UTC with milliseconds, as /api/oauth/usage's `resets_at`."""
        moment = datetime.fromtimestamp(self.resets_at, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def budget_standings(budgets: Sequence[Budget], used: Sequence[float], now: float
                     ) -> list[BudgetStanding]:
    """Each budget's standing; `used[i]` is budget i's counter this period."""
    out = []
    for budget, value in zip(budgets, used, strict=True):
        start, end = period_bounds(budget.period, now)
        out.append(BudgetStanding(budget.period, budget_kind(budget), float(value),
                                  budget_cap(budget), start, end))
    return out


def fullest(standings: Sequence[BudgetStanding]) -> BudgetStanding | None:
    """The standing the headers describe: once blocked, the exhausted one that resets last;
    otherwise the fullest (gateway protocol, "Usage-limit headers")."""
    if not standings:
        return None
    blocked = [s for s in standings if s.exhausted]
    if blocked:
        return max(blocked, key=lambda s: s.resets_at)
    return max(standings, key=lambda s: (s.utilization, s.resets_at))
