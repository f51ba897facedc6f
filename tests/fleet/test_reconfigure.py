"""`Fleet.reconfigure`: what a reload does to backends (pure, no sockets)."""

from __future__ import annotations

from continuum_cli.config.models import Settings
from continuum_cli.fleet import Fleet


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def settings(*backends: tuple[str, str], strategy: str = "least_outstanding") -> Settings:
    return Settings.model_validate({
        "routing": {"strategy": strategy},
        "backends": [{"name": n, "url": u, "models": ["m"]} for n, u in backends]})


def test_unchanged_keep_state_added_start_unknown_removed_drain() -> None:
    fleet = Fleet(settings(("a", "http://a"), ("b", "http://b"), ("c", "http://c")), Clock())
    for name in "abc":
        fleet.record_check(name, "ready", "HTTP 200")
    a, b, c = (fleet.states[n] for n in "abc")
    old = fleet.settings
    ticket = fleet.begin(old.backends[1])  # a request on b, in flight across the reload
    drained: list[str] = []
    fleet.on_drained = lambda state: drained.append(state.name)

    added, removed = fleet.reconfigure(settings(("a", "http://a"), ("c", "http://c2"),
                                                ("d", "http://d")))
    assert (sorted(added), sorted(removed)) == (["c", "d"], ["b", "c"])
    assert fleet.states["a"] is a and a.status(0) == "ready"  # unchanged: same state
    assert fleet.states["c"] is not c  # its url changed: a new backend under the old name
    assert fleet.states["d"].checked == "unknown"
    new = fleet.settings.backends
    assert fleet.choose(new) is new[0]  # only a is routable until the others are checked
    assert drained == ["c"]  # nothing in flight on the old c
    assert b.removed and b.in_flight == 1
    ticket.done()  # the request finishes on the backend it started with
    assert drained == ["c", "b"] and b.in_flight == 0 and b.requests == 1
    fleet.record_check("d", "ready", "HTTP 200")
    assert {fleet.choose(new).name for _ in range(4)} == {"a", "d"}


def test_a_new_strategy_takes_effect() -> None:
    fleet = Fleet(settings(("a", "http://a"), ("b", "http://b")), Clock())
    for name in "ab":
        fleet.record_check(name, "ready", "HTTP 200")
    fleet.reconfigure(settings(("a", "http://a"), ("b", "http://b"), strategy="priority"))
    backends = fleet.settings.backends
    assert [fleet.choose(backends).name for _ in range(4)] == ["a"] * 4


def test_a_request_resolved_on_the_old_config_is_still_counted() -> None:
    fleet = Fleet(settings(("a", "http://a")), Clock())
    gone = fleet.settings.backends[0]
    fleet.reconfigure(settings(("b", "http://b")))
    ticket = fleet.begin(gone)
    assert ticket.state.removed and ticket.state.in_flight == 1
    ticket.release()
    assert ticket.state.in_flight == 0 and "a" not in fleet.states
