"""ServerClock (state/server_clock.py): the estimate of Redis's clock from reply stamps, and
the deadlines it gives the RUN script."""

from __future__ import annotations

import pytest

from continuum_cli.state.server_clock import GUARD, REFRESH, ServerClock

# the server runs 1000 s ahead of this process's monotonic clock
AHEAD = 1000.0


def stamped(sent: float, received: float, at: float) -> tuple[float, float, float]:
    """A reply that Redis stamped at local time `at` (sent <= at <= received)."""
    return sent, received, (at + AHEAD) * 1000


def test_no_deadline_before_the_first_sample() -> None:
    assert ServerClock().deadline_ms(10.0, 0.05) == 0


@pytest.mark.parametrize(("samples", "expected_offset"), [
    # one sample: the middle of its round trip
    ([stamped(10.0, 10.002, 10.001)], AHEAD),
    # a narrower sample replaces a wider one
    ([stamped(10.0, 10.010, 10.009), stamped(11.0, 11.001, 11.0005)], AHEAD),
    # a wider sample does not replace a narrower, recent one
    ([stamped(10.0, 10.001, 10.0005), stamped(11.0, 11.020, 11.019)], AHEAD),
    # ... but one newer than REFRESH after it does (the clocks drift apart)
    ([stamped(10.0, 10.001, 10.0005), stamped(10.0 + REFRESH + 1, 10.0 + REFRESH + 1.002,
                                              10.0 + REFRESH + 1.001)], AHEAD),
])
def test_the_estimate_is_the_middle_of_the_best_recent_sample(
        samples: list[tuple[float, float, float]], expected_offset: float) -> None:
    clock = ServerClock()
    for sent, received, server_ms in samples:
        clock.observe(sent, received, server_ms)
    assert clock.offset == pytest.approx(expected_offset, abs=0.0011)


def test_a_wide_sample_is_ignored_unless_forced() -> None:
    clock = ServerClock()
    clock.observe(*stamped(10.0, 10.001, 10.0005))
    clock.observe(11.0, 11.5, (11.25 + AHEAD + 7) * 1000)  # the server stepped 7 s ahead
    assert clock.offset == pytest.approx(AHEAD, abs=0.001)
    clock.observe(11.0, 11.5, (11.25 + AHEAD + 7) * 1000, force=True)
    assert clock.offset == pytest.approx(AHEAD + 7, abs=0.001)


def test_the_deadline_leaves_part_of_the_timeout_for_the_reply() -> None:
    clock = ServerClock()
    clock.observe(*stamped(10.0, 10.0, 10.0))
    assert clock.deadline_ms(20.0, 0.05) == int((20.0 + AHEAD + 0.05 * GUARD) * 1000)
    assert 0 < GUARD < 1
