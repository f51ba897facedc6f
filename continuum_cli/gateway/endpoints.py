"""Bearer-authenticated gateway endpoints besides Messages: managed settings, the models
list, and OTLP telemetry (gateway protocol, "Managed settings", "Models", "Telemetry")."""

from __future__ import annotations

import logging
import time
from typing import Any

from continuum_cli.errors import NotFound
from continuum_cli.gateway import checksum
from continuum_cli.server.types import Request, Response, json_response

log = logging.getLogger("continuum.gateway")
_EPOCH = "2025-01-01T00:00:00Z"
_FORWARD_TIMEOUT = 5.0
_last_forward_error = [0.0]


def policy_for(gateway: Any, key_name: str | None) -> dict[str, Any] | None:
    """The settings object for a caller: its key's own entry, else the team's."""
    if key_name is not None and key_name in gateway.managed_settings_by_key:
        return gateway.managed_settings_by_key[key_name]  # type: ignore[no-any-return]
    return gateway.managed_settings  # type: ignore[no-any-return]


async def managed_settings(state: Any, request: Request) -> Response:
    caller = getattr(request, "caller", None)
    settings = policy_for(state.settings.gateway, getattr(caller, "name", None))
    if settings is None:
        # 404 is "no managed policy"; 200 with {} would be "an empty policy"
        raise NotFound("no managed settings are configured (gateway.managed_settings)")
    digest = checksum.settings_checksum(settings)
    headers = {"etag": checksum.etag(digest), "cache-control": "private, no-cache"}
    if checksum.not_modified(request.header("if-none-match") or None, digest):
        return Response(304, b"", "application/json", headers)
    body = {"uuid": checksum.policy_uuid(digest), "checksum": digest, "settings": settings}
    return json_response(200, body, headers)


def model_list(state: Any) -> list[dict[str, Any]]:
    """`gateway.models`, else one entry per `claude-*` alias in `model_aliases`."""
    configured = state.settings.gateway.models
    aliases = state.settings.model_aliases
    if configured:
        pairs = [(m.id, m.display_name or aliases.get(m.id) or m.id) for m in configured]
    else:
        pairs = [(name, target) for name, target in aliases.items()
                 if name.startswith("claude-")]
    return [{"type": "model", "id": mid, "display_name": shown, "created_at": _EPOCH}
            for mid, shown in pairs]


def unrouted_models(settings: Any, discovered: Any = None) -> list[str]:
    """Listed gateway model ids that `model_aliases` and the backends do not route (a person
    picking one would get `Model ... not found`)."""
    from continuum_cli.errors import ModelNotFound
    from continuum_cli.routing import resolve

    missing = []
    for model in settings.gateway.models:
        try:
            resolve(model.id, settings, discovered)
        except ModelNotFound:
            missing.append(model.id)
    return missing


def wants_gateway_models(state: Any, request: Request) -> bool:
    """The gateway's list goes to signed-in clients, and to everyone once `gateway.models`
    is set; an API-key client otherwise keeps the router's usual list."""
    from continuum_cli.gateway.bearer import gateway_token

    gateway = state.settings.gateway
    return gateway.enabled and (bool(gateway.models)
                                or gateway_token(request.headers) is not None)


async def models(state: Any, request: Request) -> Response:
    data = model_list(state)
    if not data:
        # 404: the client falls back to its built-in list (gateway protocol, "Models")
        raise NotFound("no gateway models are configured (gateway.models or claude-* "
                       "entries in model_aliases)")
    return json_response(200, {
        "data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"],
    })


async def telemetry(state: Any, request: Request) -> Response:
    """OTLP/HTTP export: 200 whether forwarded or dropped (a 404 makes the client's exporter
    log an error on every flush)."""
    signal = request.path.rstrip("/").rsplit("/", 1)[-1]
    target = state.settings.gateway.otlp_forward
    if target:
        await _forward(state, f"{target.rstrip('/')}/v1/{signal}", request)
    content_type = request.header("content-type", "application/json")
    if "protobuf" in content_type:
        return Response(200, b"", "application/x-protobuf")  # an empty Export*ServiceResponse
    return json_response(200, {})


async def _forward(state: Any, url: str, request: Request) -> None:
    headers = {name: request.header(name) for name in ("content-type", "content-encoding")
               if request.header(name)}
    try:
        answer = await state.http.post(url, content=request.body, headers=headers,
                                       timeout=_FORWARD_TIMEOUT)
        failure = None if answer.status_code < 300 else f"HTTP {answer.status_code}"
    except Exception as exc:  # any transport failure: telemetry never fails the client
        failure = type(exc).__name__
    if failure and time.monotonic() - _last_forward_error[0] > 30:
        _last_forward_error[0] = time.monotonic()
        log.warning("gateway: forwarding telemetry to %s failed (%s)", url, failure)
