"""Helpers shared by the handlers: JSON bodies, protocol flavour of a path, error responses."""

from __future__ import annotations

import json
from typing import Any

from continuum_cli.errors import BackendUnreachable, Flavor, InvalidRequest, Overloaded, envelope
from continuum_cli.server.types import Response, json_response


def flavor_of(path: str) -> Flavor:
    """Anthropic envelope under /anthropic and for the root Messages routes, else OpenAI."""
    if path.startswith("/anthropic") or path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"


def parse_json_body(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body; a 400 says where parsing failed."""
    if not body.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(char {exc.pos})"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"request body must be a JSON object, not {type(data).__name__}")
    return data


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
