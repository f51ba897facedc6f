"""The state request handlers see: settings, clients, discovered models.

One `AppState` is one config generation: a reload builds a new one (`Service.build_state`)
and swaps it in, while every request keeps the one it started with until its last byte
(`ContinuumApp.handle`). Read config only through the `state` a handler was given.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from continuum_cli.config.models import ApiKey, Backend, Settings
from continuum_cli.errors import ApiError, ConfigError, ModelNotFound
from continuum_cli.fleet import Fleet, Ticket, failover
from continuum_cli.fleet.health import HealthChecker
from continuum_cli.metrics.labels import known_models
from continuum_cli.routing import Route, resolve
from continuum_cli.upstream.client import UpstreamClient

log = logging.getLogger("continuum.routing")
_REDISCOVER_AFTER = 10.0
# when the estimated prompt nearly fills the window, still ask for this many tokens and let
# the backend judge the prompt: the estimate is not exact
_MIN_ROOM = 256
T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    upstream: UpstreamClient
    http: httpx.AsyncClient  # shared client for search providers
    search: Any = None  # SearchProvider | None
    store: Any = None  # continuum_cli.state.StateStore, opened by Service.start()
    files: Any = None  # continuum_cli.files.store.FileStore (the Files API)
    documents: Any = None  # continuum_cli.documents.reader.DocumentReader (PDF -> text)
    settler: Any = None  # limits.gate.Settler: finished requests' usage on its way to the store
    api_keys: tuple[ApiKey, ...] = ()
    discovered: dict[str, tuple[str, ...]] = field(default_factory=dict)
    token_cache: dict[tuple[str, int], int] = field(default_factory=dict)
    context_windows: dict[str, int] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)  # embedded backends
    _last_discovery: float = 0.0
    metrics: Any = None  # continuum_cli.metrics.Metrics, shared by every generation
    in_flight: int = 0  # requests started on this generation and not finished yet
    on_idle: Callable[[], None] | None = None  # set when retired: run once in_flight is 0
    # per-backend state and balancing (continuum_cli/fleet), and its active health checks:
    # long-lived, shared by every config a reload builds (`Fleet.reconfigure`)
    fleet: Fleet = None  # type: ignore[assignment]
    checker: HealthChecker = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.fleet is None:
            self.fleet = Fleet(self.settings)
        if self.checker is None:
            self.checker = HealthChecker(self.fleet, self.upstream)
        self.fleet.checker = self.checker

    async def send(self, route: Route, attempt: Callable[[Route, Ticket], Awaitable[T]]) -> T:
        """Run `attempt` on a ready backend of `route`, failing over and falling back as
        `routing:` says (continuum_cli/fleet/failover.py)."""
        return await failover.send(self.fleet, route, attempt, fallback=self._fallback_route)

    def _fallback_route(self, model: str) -> Route | None:
        try:
            return resolve(model, self.settings, self.discovered)
        except ModelNotFound:
            return None

    def pick(self, route: Route) -> Backend:
        """A ready backend of `route` for a one-off call (count_tokens' tokenizer)."""
        return self.fleet.choose(route.backends) or route.backend

    @functools.cached_property
    def gateway(self) -> Any:
        """The gateway's sign-in records (`gateway.store.GatewayStore`) when
        `gateway.enabled`, else None; built from this state's store and settings."""
        if not self.settings.gateway.enabled:
            return None
        from continuum_cli.gateway.store import GatewayStore

        return GatewayStore(self.store, self.settings.gateway)

    @property
    def pending(self) -> bool:
        """True while finished requests' usage is still on its way to the store."""
        settler = getattr(self.store, "settler", None)
        return settler is not None and not settler.idle

    async def discover(self, timeout: float = 3.0,
                       backends: tuple[Backend, ...] | None = None) -> None:
        """Ask every backend (or `backends`) for its models (GET /v1/models), concurrently."""
        self._last_discovery = time.monotonic()
        backends = self.settings.backends if backends is None else backends
        results = await asyncio.gather(*(self._discover_one(b, timeout) for b in backends))
        for backend, models in zip(backends, results, strict=False):
            if models is not None:
                self.discovered[backend.name] = tuple(models)
        self.models_changed()

    def models_changed(self) -> None:
        """Model names the metrics may use as label values (the others count as `other`)."""
        if self.metrics is not None:
            self.metrics.set_known_models(known_models(self.settings, self.discovered))

    def release(self) -> None:
        """One request of this generation finished."""
        self.in_flight -= 1
        if self.in_flight <= 0 and self.on_idle is not None:
            callback, self.on_idle = self.on_idle, None
            callback()

    async def _discover_one(self, backend: Any, timeout: float) -> list[str] | None:
        try:
            models = await self.upstream.list_models(backend, timeout=timeout)
        except ApiError as exc:
            if backend.name not in self.checker.starting:  # an embedded model loads
                log.warning("backend %s: model discovery failed: %s", backend.name,
                            exc.message)
            return None
        window = await self.upstream.context_window(backend, timeout=timeout)
        if window:
            self.context_windows[backend.name] = window
        return models

    def max_tokens_cap(self, backend: Backend, prompt_tokens: int) -> int | None:
        """The most `max_tokens` can be for this backend and prompt (checklist item 25): the
        configured `max_output_tokens`, and the room its context window leaves after the
        prompt. None when neither is known."""
        caps = [backend.max_output_tokens] if backend.max_output_tokens else []
        window = self.context_window(backend)
        if window:
            caps.append(max(window - prompt_tokens, _MIN_ROOM))
        return min(caps) if caps else None

    def context_window(self, backend: Backend) -> int | None:
        """The configured `context_window`, else what the backend reported."""
        return backend.context_window or self.context_windows.get(backend.name)

    def usage_scale(self, backend: Backend) -> float | None:
        """`scale_usage_to` ÷ the backend's window: the factor on every token count this
        backend's answers report (None: report them as they are)."""
        window = self.context_window(backend)
        if not backend.scale_usage_to or not window:
            return None
        return backend.scale_usage_to / window

    async def route(self, model: str) -> Route:
        """Resolve a model name; one fresh discovery before answering "not found"."""
        try:
            return resolve(model, self.settings, self.discovered)
        except ModelNotFound:
            if time.monotonic() - self._last_discovery < _REDISCOVER_AFTER:
                raise
            await self.discover()
            return resolve(model, self.settings, self.discovered)


def load_keys_file(path: str | None) -> tuple[ApiKey, ...]:
    """`api_keys.keys_file`: a YAML/JSON list of {key, name, enabled, expires_at}."""
    if not path:
        return ()
    file = Path(path).expanduser()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read api_keys.keys_file {file}: {exc}",
                          path="api_keys.keys_file") from None
    entries = data.get("keys", []) if isinstance(data, dict) else data
    try:
        return tuple(ApiKey.model_validate(e) for e in entries)
    except Exception as exc:  # pydantic ValidationError: report without echoing key values
        raise ConfigError(f"invalid entry in api_keys.keys_file {file}: "
                          f"{type(exc).__name__}", path="api_keys.keys_file") from None
