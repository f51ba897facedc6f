"""Helpers shared by the handlers: JSON bodies, protocol flavour of a path, error responses."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from continuum_cli.errors import BackendUnreachable, Flavor, Overloaded, envelope
from continuum_cli.server.types import Response, json_response
from continuum_cli.wire.json_text import parse_json_body

__all__ = ["error_response", "flavor_of", "for_flavor", "parse_json_body"]


_OAUTH_PATHS = ("/anthropic/oauth/", "/anthropic/.well-known/", "/.well-known/")

# The request's routing facts (backend, model) as soon as it is routed, for metrics and the
# access point when the answer is an error built outside the handler (set per request by
# ContinuumApp.handle; a handler's own Response.log wins).
ROUTED: ContextVar[dict[str, Any]] = ContextVar("continuum_routed")


def note_route(backend: str, model: str) -> None:
    tags = ROUTED.get(None)
    if tags is not None:
        tags["backend"], tags["model"] = backend, model


def flavor_of(path: str) -> Flavor:
    """OAuth errors on the gateway's sign-in endpoints; Anthropic envelope under /anthropic
    and for the root Messages routes; else OpenAI."""
    if path.startswith(_OAUTH_PATHS):
        return "oauth"
    if path.startswith("/anthropic") or path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"


def for_flavor(exc: BaseException, flavor: Flavor) -> BaseException:
    # Under /anthropic a refused connection is answered 529 overloaded_error, which Claude Code
    # retries with backoff (issue: "upstream 503 / connection refused / queue full -> 529").
    if flavor == "anthropic" and isinstance(exc, BackendUnreachable):
        return Overloaded(exc.message, hint=exc.hint)
    return exc


def error_response(exc: BaseException, path: str) -> Response:
    flavor = flavor_of(path)
    exc = for_flavor(exc, flavor)
    status, body = envelope(exc, flavor)
    headers = dict(getattr(exc, "headers", {}) or {})
    if getattr(exc, "should_retry", None) is False:
        headers["x-should-retry"] = "false"
    return json_response(status, body, headers)
