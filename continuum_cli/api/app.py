"""The application the server calls: route table, authentication, dispatch."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from continuum_cli import auth
from continuum_cli.api import (
    admin,
    count_tokens,
    files,
    messages,
    meta,
    metrics_endpoint,
    openai_passthrough,
)
from continuum_cli.api.common import ROUTED, error_response, flavor_of
from continuum_cli.api.state import AppState
from continuum_cli.errors import (
    ApiError,
    MethodNotAllowed,
    ModelDenied,
    ModelNotFound,
    NotFound,
    Overloaded,
    ResourcesExhausted,
    envelope,
)
from continuum_cli.gateway import bearer as gateway_bearer
from continuum_cli.gateway import routes as gateway_routes
from continuum_cli.metrics.labels import route_label
from continuum_cli.server.resources import LogThrottle
from continuum_cli.server.types import Request, Response, StreamingResponse
from continuum_cli.translate.sse_encode import encode_event
from continuum_cli.usage.meter import start as start_meter

log = logging.getLogger("continuum.api")
Handler = Callable[[AppState, Request], Awaitable[Response | StreamingResponse]]

ROUTES: dict[str, dict[str, Handler]] = {
    "/health": {"GET": meta.health, "HEAD": meta.health},
    "/healthz": {"GET": meta.health, "HEAD": meta.health},
    "/v1/models": {"GET": meta.openai_models},
    "/v1/chat/completions": {"POST": openai_passthrough.chat_completions},
    "/anthropic/v1/models": {"GET": meta.anthropic_models},
    "/anthropic/v1/messages": {"POST": messages.create_message},
    "/anthropic/v1/messages/count_tokens": {"POST": count_tokens.count_tokens},
    "/v1/messages": {"POST": messages.create_message},
    "/v1/messages/count_tokens": {"POST": count_tokens.count_tokens},
    # Claude Code's connectivity probe when non-essential traffic is allowed (REPORT.md §1.4)
    "/anthropic/api/hello": {"GET": meta.hello, "HEAD": meta.hello},
    "/admin/usage": {"GET": admin.usage},
    # Prometheus; its own access rule instead of a key (api/metrics_endpoint.py)
    "/metrics": {"GET": metrics_endpoint.metrics},
}
PUBLIC = frozenset({"/health", "/healthz", "/anthropic/api/hello", "/metrics"})
# routes with `{param}` segments, tried when no exact route matches
TEMPLATE_ROUTES: dict[str, dict[str, Handler]] = {**files.routes()}


def find_route(path: str) -> dict[str, Handler] | None:
    methods = ROUTES.get(path)
    if methods is not None:
        return methods
    template = _template(path)
    return None if template is None else TEMPLATE_ROUTES[template]


def _template(path: str) -> str | None:
    """The `{param}` route that `path` matches, if any."""
    segments = path.split("/")
    for template in TEMPLATE_ROUTES:
        parts = template.split("/")
        if len(parts) == len(segments) and all(
                p == s or (p.startswith("{") and s) for p, s in zip(parts, segments,
                                                                     strict=True)):
            return template
    return None


_EXHAUSTED_LOG = LogThrottle()  # out of file descriptors: one line a second, not one a request


def _log_failure(request: Request, exc: ApiError) -> None:
    """Why a request failed, for the operator (the access line only has the status)."""
    level = logging.WARNING if exc.status >= 500 else logging.INFO
    more = ""
    if isinstance(exc, ResourcesExhausted):
        left_out = _EXHAUSTED_LOG.allow(time.monotonic())
        if left_out is None:
            return
        more = f" ({left_out} more in the last second)" if left_out else ""
    log.log(level, "%s %s failed: %d %s: %s%s", request.method, request.path, exc.status,
            exc.error_type, exc.message, more)


def _route_name(path: str) -> str:
    """The route table's name for a request path (a bounded metrics label)."""
    if path in ROUTES:
        return path
    path = normalize_path(path)
    if path in ROUTES or path in gateway_routes.ROUTES:
        return path
    return _template(path) or route_label(path, ROUTES)


def normalize_path(path: str) -> str:
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or "/"


class ContinuumApp:
    """`state` is the current config generation; a reload replaces it (one assignment), and
    each request keeps the generation it started with until `observe` (its last byte)."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        # id(request) -> (its generation, its routing facts) until `observe`
        self._generations: dict[int, tuple[AppState, dict[str, Any]]] = {}

    async def handle(self, request: Request) -> Response | StreamingResponse:
        state = self.state
        state.in_flight += 1
        routed: dict[str, Any] = {}
        ROUTED.set(routed)
        self._generations[id(request)] = (state, routed)
        return await self._dispatch(state, request)

    def observe(self, request: Request, status: int, seconds: float, ttft: float | None,
                tags: dict[str, Any]) -> None:
        """Once per answered request, after its last byte (server/http.py; also for requests
        refused before `handle`, such as 413): metrics, and the end of the request on its
        config generation."""
        state, routed = self._generations.pop(id(request), (None, tags))
        current = state or self.state
        first_token = tags.get("first_token_at")
        if first_token is not None:  # a stream's first model output (else its first byte)
            ttft = max(0.0, first_token - (time.perf_counter() - seconds))
        if current.metrics is not None:
            current.metrics.observe(
                _route_name(request.path), status,
                tags.get("backend") or routed.get("backend") or "",
                tags.get("model") or routed.get("model") or "",
                seconds, ttft, tags.get("input_tokens") or 0, tags.get("output_tokens") or 0)
        if state is not None:
            state.release()

    async def _dispatch(self, state: AppState,
                        request: Request) -> Response | StreamingResponse:
        path = normalize_path(request.path)
        gateway = state.settings.gateway.enabled
        methods = (gateway and gateway_routes.ROUTES.get(path)) or find_route(path)
        if methods is None:
            raise NotFound(f"no route for {request.method} {request.path}; the Anthropic API "
                           "is under /anthropic/v1/messages, the OpenAI API under /v1")
        handler = methods.get(request.method)
        if handler is None:
            raise MethodNotAllowed(f"{request.method} is not allowed on {path}; use "
                                   f"{', '.join(sorted(methods))}",
                                   headers={"allow": ", ".join(sorted(methods))})
        if path not in PUBLIC and not (gateway and path in gateway_routes.PUBLIC):
            request = dataclasses.replace(request, caller=await _authenticate(state, request))
        meter = start_meter(state, request, path, flavor_of(path))
        try:
            response = await _handle(handler, state, request)
        except BaseException as exc:
            if isinstance(exc, ApiError):
                _log_failure(request, exc)
            if meter is not None and isinstance(exc, Exception):
                await meter.failed(exc)
            elif meter is not None:  # cancelled: the client left
                meter.abandoned()
            raise
        return await meter.attach(response) if meter is not None else response

    def streams_body(self, method: str, path: str) -> bool:
        """Uploads take their body as it arrives (files.max_bytes, not server.max_body_bytes)."""
        return method == "POST" and normalize_path(path) in files.UPLOAD_PATHS

    def error_response(self, exc: BaseException, path: str) -> Response:
        response = error_response(exc, normalize_path(path))
        if isinstance(exc, (ModelNotFound, ModelDenied)):  # a made-up name: `other` in metrics
            response.log["model"] = exc.model
        return response

    def abort_chunk(self, path: str) -> bytes:
        """The last frame of a stream the server ends at shutdown, in the route's protocol."""
        exc = Overloaded("the router is shutting down; retry the request")
        flavor = flavor_of(normalize_path(path))
        _, body = envelope(exc, flavor)
        if flavor == "anthropic":
            return encode_event("error", body)
        return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _handle(handler: Any, state: AppState,
                  request: Request) -> Response | StreamingResponse:
    """The route's answer; a gateway sign-in asking for a model the router does not serve
    gets 400 (gateway protocol, "Messages -- required": a denied model is
    `invalid_request_error`), an API-key client the Anthropic API's 404."""
    try:
        return await handler(state, request)
    except ModelNotFound as exc:
        if state.gateway is None or gateway_bearer.gateway_token(request.headers) is None:
            raise
        raise ModelDenied(exc.model, exc.message, exc.hint) from None


async def _authenticate(state: AppState, request: Request) -> auth.Caller:
    """The caller; a gateway bearer token resolves to the same identity as the key it was
    issued for, anything else goes through `api_keys` (of the request's generation)."""
    token = gateway_bearer.gateway_token(request.headers) if state.gateway else None
    if token is not None:
        key = await gateway_bearer.authenticate(state.gateway, token, state.api_keys)
        return auth.caller_for_key(key, state.settings.api_keys)
    return auth.authenticate(request.headers, state.settings.api_keys, state.api_keys)


__all__ = ["ContinuumApp", "flavor_of"]
