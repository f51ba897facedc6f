"""GET /health, GET /v1/models (OpenAI shape), GET /anthropic/v1/models (Anthropic shape)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from continuum_cli.api.state import AppState
from continuum_cli.errors import ApiError
from continuum_cli.routing import backend_models, model_backends
from continuum_cli.server.types import Request, Response, json_response

# A fixed creation time: the router cannot know when a self-hosted model was made.
_EPOCH = "2025-01-01T00:00:00Z"


def _backend_entry(state: AppState, backend: Any, fleet: dict[str, Any]) -> dict[str, Any]:
    try:
        url: str | None = _public_url(state.upstream.base_url(backend))
    except ApiError:  # an embedded backend still starting has no address yet
        url = None
    models = sorted(set(backend.models) | set(state.discovered.get(backend.name, ())))
    entry = {"name": backend.name, "type": backend.type, "url": url, **fleet,
             "models": models}
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
    """Every backend with its status (ready | loading | down), requests in flight and last
    error; `ok` while every model has a ready backend, `degraded` while one has none,
    `loading` (503) while nothing is ready yet and something is still loading."""
    settings = state.settings
    await state.checker.check_all(settings)  # fresh, sharing probes already on their way
    fleet = {entry["name"]: entry for entry in state.fleet.snapshot()}
    backends = [_backend_entry(state, b, fleet.get(b.name, {"status": "down"}))
                for b in settings.backends]
    models = _model_readiness(state, fleet)
    overall = _overall([b["status"] for b in backends], models)
    code = 503 if overall == "loading" else 200
    return json_response(code, {"status": overall, "backends": backends, "models": models})


def _model_readiness(state: AppState, fleet: dict[str, Any]) -> dict[str, dict[str, int]]:
    """model -> how many of its backends are ready, of how many."""
    table = model_backends(state.settings, state.discovered)
    return {model: {"ready": sum(fleet.get(b.name, {}).get("status") == "ready"
                                 for b in backends), "backends": len(backends)}
            for model, backends in table.items()}


def _overall(statuses: list[str], models: dict[str, dict[str, int]]) -> str:
    if not statuses:
        return "no_backends"
    if "ready" not in statuses:
        return "loading" if "loading" in statuses else "degraded"
    if models:
        return "ok" if all(m["ready"] for m in models.values()) else "degraded"
    return "ok" if all(s == "ready" for s in statuses) else "degraded"


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
    from continuum_cli.gateway import endpoints as gateway

    if gateway.wants_gateway_models(state, request):  # Claude Code's model discovery
        return await gateway.models(state, request)
    data = [{"type": "model", "id": name, "display_name": name, "created_at": _EPOCH}
            for name, _ in _model_names(state)]
    return json_response(200, {
        "data": data, "has_more": False,
        "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
    })
