"""GET /health, GET /v1/models (OpenAI shape), GET /anthropic/v1/models (Anthropic shape)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from continuum_cli.api.state import AppState
from continuum_cli.errors import ApiError
from continuum_cli.routing import backend_models
from continuum_cli.server.types import Request, Response, json_response

# A fixed creation time: the router cannot know when a self-hosted model was made.
_EPOCH = "2025-01-01T00:00:00Z"


async def _backend_health(state: AppState, backend: Any) -> dict[str, Any]:
    try:
        status, detail = await state.upstream.health(backend)
        url = _public_url(state.upstream.base_url(backend))
    except ApiError as exc:
        status, detail, url = state.backend_status.get(backend.name, "loading"), exc.message, None
    state.backend_status[backend.name] = status
    models = sorted(set(backend.models) | set(state.discovered.get(backend.name, ())))
    entry = {"name": backend.name, "type": backend.type, "url": url, "status": status,
             "detail": detail, "models": models}
    if backend.name in state.load_seconds:
        entry["load_seconds"] = state.load_seconds[backend.name]
    window = state.context_window(backend)
    if window:
        entry["context_window"] = window
    return entry


def _public_url(url: str) -> str:
    """/health is unauthenticated: never show credentials embedded in a backend URL."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


async def health(state: AppState, request: Request) -> Response:
    backends = await asyncio.gather(*(_backend_health(state, b) for b in state.settings.backends))
    statuses = {b["status"] for b in backends}
    if not backends:
        overall = "no_backends"
    elif statuses == {"ready"}:
        overall = "ok"
    elif "ready" not in statuses and "loading" in statuses:
        overall = "loading"
    else:
        overall = "degraded"
    code = 503 if overall == "loading" else 200
    return json_response(code, {"status": overall, "backends": list(backends)})


async def hello(state: AppState, request: Request) -> Response:
    return json_response(200, {"status": "ok"})


def _model_names(state: AppState) -> list[tuple[str, str]]:
    """(model id, owner) for backend models then alias names, without duplicates."""
    seen: dict[str, str] = {}
    for name, backend in backend_models(state.settings, state.discovered).items():
        seen.setdefault(name, backend.name)
    for alias, target in state.settings.model_aliases.items():
        seen.setdefault(alias, f"alias:{target}")
    return list(seen.items())


async def openai_models(state: AppState, request: Request) -> Response:
    data = [{"id": name, "object": "model", "created": 0, "owned_by": owner}
            for name, owner in _model_names(state)]
    return json_response(200, {"object": "list", "data": data})


async def anthropic_models(state: AppState, request: Request) -> Response:
    data = [{"type": "model", "id": name, "display_name": name, "created_at": _EPOCH}
            for name, _ in _model_names(state)]
    return json_response(200, {
        "data": data, "has_more": False,
        "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
    })
