"""Which backend takes the next request. Pure: options in, an index out.

- `priority`: the first option (options come in file order).
- `round_robin`: smooth weighted round robin (the nginx algorithm): over any run of picks
  each option's share is its weight's share, and picks of one option are spread out.
- `least_outstanding` (default): the fewest requests in flight per unit of weight; ties (an
  idle fleet) are broken by smooth weighted round robin, so weights hold at low load too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

STRATEGIES = ("least_outstanding", "round_robin", "priority")


class Option(NamedTuple):
    name: str
    weight: float = 1.0
    in_flight: int = 0


class Balancer:
    """Holds the round-robin credits between picks (data only, no I/O)."""

    def __init__(self, strategy: str = "least_outstanding") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy = strategy
        self._credit: dict[str, float] = {}

    def pick(self, options: Sequence[Option]) -> int | None:
        """The index of the option to use, or None when there is none."""
        if not options:
            return None
        if len(options) == 1 or self.strategy == "priority":
            return 0
        if self.strategy == "round_robin":
            return self._smooth(options, range(len(options)))
        return self._smooth(options, _least_loaded(options))

    def forget(self, names: set[str]) -> None:
        """Drop the credits of backends that left the config."""
        for name in names:
            self._credit.pop(name, None)

    def _smooth(self, options: Sequence[Option], among: Sequence[int]) -> int:
        if len(among) == 1:
            return among[0]
        total, best, best_credit = 0.0, among[0], float("-inf")
        for i in among:
            option = options[i]
            credit = self._credit.get(option.name, 0.0) + option.weight
            self._credit[option.name] = credit
            total += option.weight
            if credit > best_credit:
                best, best_credit = i, credit
        self._credit[options[best].name] -= total
        return best


def _least_loaded(options: Sequence[Option]) -> list[int]:
    loads = [o.in_flight / o.weight for o in options]
    low = min(loads)
    return [i for i, load in enumerate(loads) if load == low]
