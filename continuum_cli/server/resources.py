"""File descriptors: the open-file limit raised at start-up, and what running out means.

Every client connection and every upstream connection is a file descriptor. A soft limit of
256 (macOS's default; some containers set 1024) runs out at about a hundred concurrent
streams, so start-up raises the soft limit to the hard limit, as nginx's
`worker_rlimit_nofile` and Go's runtime (since 1.19) do. When descriptors still run out
(EMFILE: this process; ENFILE: the whole system), requests are answered 529 / 503 instead
of failing one by one with a log line each, and the log says so at most once per second
(`LogThrottle`).
"""

from __future__ import annotations

import errno
import logging

try:
    import resource
except ImportError:  # Windows: no rlimits
    resource = None  # type: ignore[assignment]

log = logging.getLogger("continuum.server")

EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE})
# what setrlimit accepts when the hard limit is "unlimited" (macOS refuses RLIM_INFINITY
# for the soft limit; its kern.maxfilesperproc is typically 10240 to 245760)
_UNLIMITED_TARGETS = (1 << 20, 245_760, 10_240)


def is_exhausted(exc: BaseException) -> bool:
    """An OSError that means: no file descriptor left (EMFILE or ENFILE)."""
    return isinstance(exc, OSError) and exc.errno in EXHAUSTED


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit. Returns (old, new) when it changed
    (and logs it), None when it was already there or cannot be changed."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard or soft == resource.RLIM_INFINITY:
        return None
    targets = (hard,) if hard != resource.RLIM_INFINITY else _UNLIMITED_TARGETS
    for target in targets:
        if target <= soft:
            return None
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        log.info("open-file limit raised from %d to %d (the hard limit) so that every "
                 "connection gets a descriptor", soft, target)
        return soft, target
    log.warning("could not raise the open-file limit from %d (hard limit %s); many concurrent "
                "streams may be refused (raise it with `ulimit -n`)", soft, hard)
    return None


class LogThrottle:
    """At most one log record per `interval` seconds for a repeating condition; the next
    record says how many were left out. Sans-I/O: the caller passes the time."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next = float("-inf")
        self.suppressed = 0

    def allow(self, now: float) -> int | None:
        """None: stay quiet. Else the number of records left out since the last one."""
        if now < self._next:
            self.suppressed += 1
            return None
        self._next = now + self.interval
        left_out, self.suppressed = self.suppressed, 0
        return left_out
