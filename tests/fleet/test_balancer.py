"""The balancer's choice by strategy and weight (pure, table-driven)."""

from __future__ import annotations

from collections import Counter

import pytest

from continuum_cli.fleet.balancer import Balancer, Option


def picks(strategy: str, options: list[Option], n: int) -> Counter[str]:
    balancer = Balancer(strategy)
    return Counter(options[balancer.pick(options)].name for _ in range(n))


@pytest.mark.parametrize(("strategy", "options", "n", "expected"), [
    pytest.param("priority", [Option("a"), Option("b"), Option("c")], 9, {"a": 9},
                 id="priority-first-only"),
    pytest.param("priority", [Option("b", in_flight=5), Option("c")], 4, {"b": 4},
                 id="priority-ignores-load"),
    pytest.param("round_robin", [Option("a"), Option("b"), Option("c")], 9,
                 {"a": 3, "b": 3, "c": 3}, id="round-robin-even"),
    pytest.param("round_robin", [Option("a", 2), Option("b", 1)], 9, {"a": 6, "b": 3},
                 id="round-robin-weighted-2-1"),
    pytest.param("least_outstanding", [Option("a"), Option("b")], 10, {"a": 5, "b": 5},
                 id="idle-ties-alternate"),
    pytest.param("least_outstanding", [Option("a", 2), Option("b", 1)], 30,
                 {"a": 20, "b": 10}, id="idle-ties-follow-weight"),
    pytest.param("least_outstanding", [Option("a", in_flight=3), Option("b", in_flight=1)], 5,
                 {"b": 5}, id="fewest-in-flight"),
    pytest.param("least_outstanding", [Option("a", 4, 3), Option("b", 1, 1)], 3, {"a": 3},
                 id="in-flight-per-weight"),
    pytest.param("least_outstanding", [Option("only", in_flight=99)], 3, {"only": 3},
                 id="single-option"),
])
def test_pick(strategy: str, options: list[Option], n: int, expected: dict[str, int]) -> None:
    assert picks(strategy, options, n) == Counter(expected)


@pytest.mark.parametrize("strategy", ["priority", "round_robin", "least_outstanding"])
def test_no_options_no_pick(strategy: str) -> None:
    assert Balancer(strategy).pick([]) is None


def test_smooth_round_robin_spreads_the_heavy_backend() -> None:
    """nginx's smooth weighted round robin: 5:1:1 gives a a b a c a a, not a a a a a b c."""
    options = [Option("a", 5), Option("b", 1), Option("c", 1)]
    balancer = Balancer("round_robin")
    order = "".join(options[balancer.pick(options)].name for _ in range(7))
    assert order == "aabacaa"


def test_unknown_strategy_is_an_error() -> None:
    with pytest.raises(ValueError):
        Balancer("random")
