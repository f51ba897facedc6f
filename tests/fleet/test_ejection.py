"""Passive ejection arithmetic and status transitions of one backend (pure, table-driven)."""

from __future__ import annotations

import pytest

from continuum_cli.fleet.state import BackendState, cooldown


@pytest.mark.parametrize(("level", "seconds"), [
    (1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (5, 60.0), (6, 60.0), (30, 60.0),
])
def test_cooldown_doubles_from_5s_up_to_60s(level: int, seconds: float) -> None:
    assert cooldown(level) == seconds


def ready(now: float = 0.0) -> BackendState:
    state = BackendState("gpu-a")
    state.checked_as(now, "ready", "HTTP 200")
    return state


def fail(state: BackendState, now: float, times: int = 1) -> None:
    for _ in range(times):
        state.begin(now)
        state.failed(now, "backend gpu-a is unreachable (ConnectError)")


def test_three_consecutive_failures_eject() -> None:
    state = ready()
    fail(state, 1.0, 2)
    assert state.routable(1.0) and state.status(1.0) == "ready"
    fail(state, 1.0)
    assert not state.routable(1.0) and state.status(1.0) == "down"
    assert state.ejected_until == 6.0 and state.errors == 3
    assert state.last_error == "backend gpu-a is unreachable (ConnectError)"


def test_a_success_in_between_resets_the_count() -> None:
    state = ready()
    fail(state, 1.0, 2)
    state.begin(1.0)
    state.succeeded(1.1, 0.1)
    fail(state, 1.2, 2)
    assert state.routable(1.2)


def test_a_client_error_answer_also_resets_the_count() -> None:
    state = ready()
    fail(state, 1.0, 2)
    state.begin(1.0)
    state.answered(1.0)
    fail(state, 1.0, 2)
    assert state.routable(1.0)


@pytest.mark.parametrize(("probe_ok", "routable_after", "next_cooldown"), [
    pytest.param(True, True, None, id="probe-succeeds"),
    pytest.param(False, False, 10.0, id="probe-fails-cooldown-doubles"),
])
def test_one_probe_decides(probe_ok: bool, routable_after: bool,
                           next_cooldown: float | None) -> None:
    state = ready()
    fail(state, 0.0, 3)  # ejected until 5.0
    assert not state.routable(4.9)
    assert state.routable(5.0)  # cooldown over: one probe may go
    state.begin(5.0)
    assert state.probing and not state.routable(5.0)  # only one probe at a time
    if probe_ok:
        state.succeeded(5.5, 0.5)
    else:
        state.failed(5.5, "timed out waiting for backend gpu-a")
    assert state.routable(5.5) is routable_after
    assert (None if state.ejected_until is None else state.ejected_until - 5.5) == next_cooldown


@pytest.mark.parametrize(("gap", "expected"), [
    pytest.param(30.0, 10.0, id="ejected-again-soon-doubles"),
    pytest.param(61.0, 5.0, id="a-minute-in-service-starts-over"),
])
def test_ejection_level_decays(gap: float, expected: float) -> None:
    state = ready()
    fail(state, 0.0, 3)
    state.begin(5.0)
    state.succeeded(5.0, 0.1)  # probe ok at 5.0
    fail(state, 5.0 + gap, 3)
    assert state.ejected_until == 5.0 + gap + expected


def test_a_backend_back_from_down_is_readmitted_at_once() -> None:
    """kill -9 then restart: the active check saw it down, then ready again; the new process
    does not wait out the cooldown."""
    state = ready()
    fail(state, 0.0, 3)
    state.checked_as(1.0, "down", "ConnectError")
    assert state.status(1.0) == "down"
    state.checked_as(2.0, "ready", "HTTP 200")
    assert state.routable(2.0) and state.status(2.0) == "ready" and state.since == 2.0


def test_a_passing_health_check_does_not_lift_an_ejection() -> None:
    """A backend whose /health says ok while its completions fail stays out for the
    cooldown; the probe request decides."""
    state = ready()
    fail(state, 0.0, 3)
    state.checked_as(1.0, "ready", "HTTP 200")
    assert not state.routable(1.0)


@pytest.mark.parametrize(("result", "status", "routable"), [
    ("ready", "ready", True), ("loading", "loading", False), ("down", "down", False),
    ("unknown", "down", False),
])
def test_status_from_checks(result: str, status: str, routable: bool) -> None:
    state = BackendState("b")
    state.checked_as(0.0, result, "")
    assert state.status(0.0) == status and state.routable(0.0) is routable


def test_loading_answer_is_not_a_failure() -> None:
    state = ready()
    for _ in range(5):
        state.begin(0.0)
        state.loading(0.0, "backend b: Loading model")
    assert state.status(0.0) == "loading" and state.errors == 0 and state.ejected_until is None


def test_counters_and_p50() -> None:
    state = ready()
    for seconds in (0.1, 0.3, 0.2):
        state.begin(0.0)
        assert state.in_flight == 1
        state.succeeded(1.0, seconds)
    assert (state.requests, state.in_flight, state.errors) == (3, 0, 0)
    assert state.p50() == pytest.approx(0.2)

