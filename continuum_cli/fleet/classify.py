"""What an upstream error means for the fleet. Pure.

Failover (moving a request to another backend before anything was sent to the client) only
for errors that say the backend could not take the request: a refused or reset connection,
a connect or first-byte timeout, an upstream 502/503/504/529 or "overloaded" answer, and a
429 when another backend is ready. Never for other 4xx: the next backend would say the same.

Passive ejection counts connection failures, timeouts and 5xx answers; a backend answering
"loading" (llama.cpp's 503 `Loading model`, an embedded backend still starting) is loading,
not failing.
"""

from __future__ import annotations

from continuum_cli.errors import ApiError, Overloaded, RateLimited

FAILOVER_STATUSES = frozenset({502, 503, 504, 529})
_LOADING_WORDS = ("loading model", "still loading", "loading the model")

# outcomes for BackendState
FAILURE, LOADING, ANSWERED, NEUTRAL = "failure", "loading", "answered", "neutral"


def outcome(exc: BaseException) -> str:
    """failure | loading | answered (a live backend said no) | neutral (not the backend)."""
    if not isinstance(exc, ApiError) or exc.upstream_failure == "local":
        return NEUTRAL  # "local": the router itself failed (out of file descriptors)
    if is_loading(exc):
        return LOADING
    if exc.upstream_failure in ("connect", "timeout", "reset"):
        return FAILURE
    status = exc.upstream_status
    if status is None:
        # raised about a backend's answer without a status of its own (invalid JSON, a
        # stream cut short): the backend broke the protocol
        return FAILURE if exc.status >= 500 else NEUTRAL
    return FAILURE if status >= 500 else ANSWERED


def is_loading(exc: ApiError) -> bool:
    if exc.upstream_failure == "loading":
        return True
    return exc.upstream_status == 503 and any(w in exc.message.lower() for w in _LOADING_WORDS)


def failover_reason(exc: BaseException, another_ready: bool) -> str | None:
    """Why the request may move to the next backend (for the log line), or None."""
    if not isinstance(exc, ApiError):
        return None
    if exc.upstream_failure in ("connect", "timeout", "reset"):
        return exc.upstream_cause or exc.upstream_failure
    if exc.upstream_failure == "loading":
        return "loading"
    status = exc.upstream_status
    if status in FAILOVER_STATUSES or (status is not None and isinstance(exc, Overloaded)):
        return f"HTTP {status}"
    if status == 429 and isinstance(exc, RateLimited) and another_ready:
        return "HTTP 429"
    return None


def error_kind(exc: BaseException) -> str | None:
    """A bounded label for metrics (`continuum_upstream_errors_total{kind}`): connect |
    timeout | reset | overloaded | rate_limited | status_5xx | protocol; None for answers
    that are the client's business (other 4xx) and for errors not about a backend."""
    if not isinstance(exc, ApiError):
        return None
    if exc.upstream_failure in ("connect", "timeout", "reset"):
        return exc.upstream_failure
    if exc.upstream_failure == "loading" or isinstance(exc, Overloaded):
        return "overloaded"
    status = exc.upstream_status
    if status == 429:
        return "rate_limited"
    if status is not None:
        return "status_5xx" if status >= 500 else None
    return "protocol" if exc.status >= 500 else None


def describe(exc: BaseException) -> str:
    """One line for `last_error`: what went wrong, without anything secret (messages name
    the backend and the upstream's words, never a key)."""
    return getattr(exc, "message", None) or type(exc).__name__
