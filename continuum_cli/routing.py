"""Pure model routing: requested model name -> (backend, upstream model name).

Rules (issue "model_aliases"; checklist item 46):
1. a backend serves the name itself (configured `models`, or discovered via /v1/models);
2. an alias whose key equals the name exactly;
3. a family alias (`haiku`, `sonnet`, `opus`) whose word occurs in the name, case-insensitive
   (`claude-haiku-4-5-20251001`, `claude-3-5-haiku-latest`, `claude-opus-4-1`);
4. the `default` alias.
Exact beats family beats default. An alias target is itself a backend model name (or another
alias, followed once per hop up to a small limit).

Several backends may serve one model: a route carries every one of them (`candidates`, the
backends that list the model in `models` first, then those that discovered it, each in file
order); the fleet (`continuum_cli/fleet/`) picks among the ready ones per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from continuum_cli.config.models import Backend, Settings
from continuum_cli.errors import ModelNotFound

FAMILIES = ("haiku", "sonnet", "opus")
_MAX_HOPS = 4


@dataclass(frozen=True)
class Route:
    backend: Backend
    upstream_model: str
    requested: str
    rule: str  # "backend" | "exact" | "family:<word>" | "default" | "only-backend"
    # every backend that serves `upstream_model`, `backend` first; () means just `backend`
    candidates: tuple[Backend, ...] = ()

    @property
    def rewritten(self) -> bool:
        return self.rule != "backend"

    @property
    def backends(self) -> tuple[Backend, ...]:
        return self.candidates or (self.backend,)

    def on(self, backend: Backend) -> Route:
        """The same route, sent to `backend` (one of `backends`)."""
        if backend is self.backend:
            return self
        return Route(backend, self.upstream_model, self.requested, self.rule, self.candidates)


@dataclass(frozen=True)
class AliasMatch:
    target: str
    rule: str  # "exact" | "family:<word>" | "default"


def match_alias(model: str, aliases: Mapping[str, str]) -> AliasMatch | None:
    """The alias that applies to `model`, by precedence exact > family > default."""
    if model in aliases and model != "default":
        return AliasMatch(aliases[model], "exact")
    lowered = model.lower()
    for family in FAMILIES:
        if family in aliases and family in lowered:
            return AliasMatch(aliases[family], f"family:{family}")
    if "default" in aliases:
        return AliasMatch(aliases["default"], "default")
    return None


def backend_models(
    settings: Settings, discovered: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, Backend]:
    """model name -> first backend that serves it (configured models first, then discovered)."""
    return {name: backends[0] for name, backends in model_backends(settings, discovered).items()}


def model_backends(
    settings: Settings, discovered: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, tuple[Backend, ...]]:
    """model name -> every backend that serves it: those that list it in `models` first,
    then those that discovered it, each in file order."""
    table: dict[str, list[Backend]] = {}
    for backend in settings.backends:
        for name in backend.models:
            _add(table, name, backend)
    for backend in settings.backends:
        for name in (discovered or {}).get(backend.name, ()):
            _add(table, name, backend)
    return {name: tuple(backends) for name, backends in table.items()}


def _add(table: dict[str, list[Backend]], name: str, backend: Backend) -> None:
    backends = table.setdefault(name, [])
    # identity, not ==: pydantic compares every field, and this runs on every request
    if not any(b is backend for b in backends):
        backends.append(backend)


def resolve(
    model: str, settings: Settings, discovered: Mapping[str, tuple[str, ...]] | None = None
) -> Route:
    """Route `model`, or raise ModelNotFound (the seed's "Model … not found")."""
    table = model_backends(settings, discovered)
    if model in table:
        return _route(table[model], model, model, "backend")
    match = match_alias(model, settings.model_aliases)
    if match is None:
        return _fallback(model, settings, table)
    target, rule = _follow(match, settings.model_aliases, table)
    if target in table:
        return _route(table[target], target, model, rule)
    backend = _lone_backend(settings)
    if backend is not None and not backend.models:
        return Route(backend, target, model, rule)
    raise ModelNotFound(
        model,
        hint=f"model_aliases maps it to `{target}`, which no backend serves; add `{target}` to a "
        "backend's `models`",
    )


def _route(backends: tuple[Backend, ...], target: str, model: str, rule: str) -> Route:
    return Route(backends[0], target, model, rule, backends if len(backends) > 1 else ())


def fallback_models(route: Route, settings: Settings) -> tuple[str, ...]:
    """`routing.fallbacks` for a route: those of the model it resolved to, else those of the
    name the client asked for."""
    fallbacks = settings.routing.fallbacks
    return fallbacks.get(route.upstream_model) or fallbacks.get(route.requested) or ()


def _follow(match: AliasMatch, aliases: Mapping[str, str], table: Mapping[str, object]
            ) -> tuple[str, str]:
    target, rule = match.target, match.rule
    for _ in range(_MAX_HOPS):
        if target in table or target not in aliases or target == "default":
            break
        target = aliases[target]
    return target, rule


def _lone_backend(settings: Settings) -> Backend | None:
    return settings.backends[0] if len(settings.backends) == 1 else None


def _fallback(model: str, settings: Settings, table: Mapping[str, object]) -> Route:
    # A single backend that lists no models (e.g. llama.cpp serving whatever it loaded) takes
    # every name it is asked for, which is what that backend does itself.
    backend = _lone_backend(settings)
    if backend is not None and not backend.models and not table:
        return Route(backend, model, model, "only-backend")
    raise ModelNotFound(model)
