"""Redis's clock as this process sees it, so that a script can refuse to act once the call
that sent it has been given up.

A call that times out on the router (`state.timeout`) may still reach Redis -- it sits in the
server's socket buffer while Redis is stalled (a fork for a snapshot, a slow command, a paused
VM), and closing the connection does not take it back. Run then, an admission would take a
concurrency lease no request holds and apply the settlement the router has kept to send again.
So each RUN carries a deadline in Redis's own time, and the script does nothing past it.

Every reply carries the server's time. A sample taken between sending at `sent` and reading
at `received` (this process's monotonic clock) bounds the offset between the two clocks to
[server - received, server - sent]; the estimate is the middle of the narrowest recent sample,
refreshed every `REFRESH` seconds so that the drift of either clock stays small against the
timeout. Sans-I/O: the store feeds samples in and asks for deadlines.
"""

from __future__ import annotations

REFRESH = 5.0  # seconds a best sample is trusted before any newer one replaces it
GUARD = 0.8  # share of the caller's timeout in which the script may still run; the rest is
# for the reply's way back, so that a call Redis ran is (nearly always) one its caller heard


class ServerClock:
    def __init__(self) -> None:
        self.offset: float | None = None  # server seconds minus local monotonic seconds
        self._width = 0.0
        self._at = 0.0

    def observe(self, sent: float, received: float, server_ms: float, *,
                force: bool = False) -> None:
        """A reply stamped `server_ms` by Redis, to a call sent at `sent` and read at
        `received`. `force`: trust it even if wider (the server's clock was stepped)."""
        width = max(0.0, received - sent)
        if (force or self.offset is None or width <= self._width
                or sent - self._at > REFRESH):
            self.offset = server_ms / 1000 - (sent + received) / 2
            self._width, self._at = width, sent

    def deadline_ms(self, now: float, timeout: float) -> int:
        """Redis time (ms) after which a call sent `now` with `timeout` must not act; 0 (no
        deadline) until the first sample."""
        if self.offset is None:
            return 0
        return int((now + self.offset + timeout * GUARD) * 1000)
