"""What an upstream error means for failover, ejection and metrics (pure, table-driven)."""

from __future__ import annotations

import pytest


from continuum_cli.errors import (
    BackendUnreachable,
    InvalidRequest,
    Overloaded,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from continuum_cli.fleet import classify


def tagged(exc, *, status=None, failure=None, cause=None):  # type: ignore[no-untyped-def]
    exc.upstream_status, exc.upstream_failure, exc.upstream_cause = status, failure, cause
    return exc


@pytest.mark.parametrize(("exc", "another_ready", "reason", "outcome", "kind"), [
    pytest.param(tagged(BackendUnreachable("x"), failure="connect", cause="ConnectError"),
                 False, "ConnectError", "failure", "connect", id="refused"),
    pytest.param(tagged(UpstreamUnavailable("x"), failure="reset", cause="ReadError"),
                 False, "ReadError", "failure", "reset", id="reset"),
    pytest.param(tagged(UpstreamTimeout("x"), failure="timeout", cause="ConnectTimeout"),
                 False, "ConnectTimeout", "failure", "timeout", id="connect-timeout"),
    pytest.param(tagged(UpstreamUnavailable("x"), status=502), False, "HTTP 502", "failure",
                 "status_5xx", id="502"),
    pytest.param(tagged(Overloaded("busy"), status=503), False, "HTTP 503", "failure",
                 "overloaded", id="503-busy"),
    pytest.param(tagged(Overloaded("b: Loading model"), status=503), False, "HTTP 503",
                 "loading", "overloaded", id="503-loading"),
    pytest.param(tagged(UpstreamTimeout("x"), status=504), False, "HTTP 504", "failure",
                 "status_5xx", id="504"),
    pytest.param(tagged(Overloaded("x"), status=529), False, "HTTP 529", "failure",
                 "overloaded", id="529"),
    pytest.param(tagged(UpstreamUnavailable("x (HTTP 500)"), status=500), True, None,
                 "failure", "status_5xx", id="500-no-failover"),
    pytest.param(tagged(RateLimited("x"), status=429), True, "HTTP 429", "answered",
                 "rate_limited", id="429-another-ready"),
    pytest.param(tagged(RateLimited("x"), status=429), False, None, "answered",
                 "rate_limited", id="429-alone"),
    pytest.param(tagged(InvalidRequest("x"), status=400), True, None, "answered", None,
                 id="400"),
    pytest.param(UpstreamUnavailable("answered with invalid JSON"), True, None, "failure",
                 "protocol", id="protocol"),
    pytest.param(InvalidRequest("bad request from the client"), True, None, "neutral", None,
                 id="not-upstream"),
    pytest.param(tagged(Overloaded("embedded loading"), failure="loading"), True, "loading",
                 "loading", "overloaded", id="embedded-starting"),
])
def test_classify(exc, another_ready, reason, outcome, kind) -> None:  # type: ignore[no-untyped-def]
    assert classify.failover_reason(exc, another_ready) == reason
    assert classify.outcome(exc) == outcome
    assert classify.error_kind(exc) == kind
