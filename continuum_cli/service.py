"""Assemble and run the router: state, clients, embedded backends, search provider, server.

Used by `continuum serve` and by the tests (which start it on an ephemeral port).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from continuum_cli.api.app import ContinuumApp
from continuum_cli.api.state import AppState, load_keys_file
from continuum_cli.config.models import Settings
from continuum_cli.documents.reader import DocumentReader
from continuum_cli.files.blob import default_files_dir
from continuum_cli.files.store import FileStore
from continuum_cli.limits.gate import settler_of
from continuum_cli.metrics import Metrics
from continuum_cli.reload.apply import ReloadHooks, Reloader, apply_settings, carry_backend_facts
from continuum_cli.server.http import Limits
from continuum_cli.server.run import Server, install_signal_handlers
from continuum_cli.state import open_store
from continuum_cli.usage.meter import drain
from continuum_cli.upstream.client import UpstreamClient

log = logging.getLogger("continuum.server")


def _limits(settings: Settings) -> Limits:
    s = settings.server
    return Limits(max_header_bytes=s.max_header_bytes, max_body_bytes=s.max_body_bytes,
                  header_timeout=s.header_timeout, keepalive_timeout=s.keepalive_timeout)


def _tls(settings: Settings) -> Any:
    if settings.server.tls is None:
        return None
    from continuum_cli.tls import server_context

    return server_context(settings.server.tls.cert, settings.server.tls.key)


def _file_store(settings: Settings, store: Any) -> FileStore:
    folder = settings.files.dir
    directory = Path(folder).expanduser() if folder else default_files_dir()
    return FileStore(store, directory, settings.files.max_bytes)


_SWEEP_EVERY = 3600.0  # seconds between removals of expired and orphaned file blobs


async def _sweep_files(current: Callable[[], FileStore]) -> None:
    while True:
        files = current()  # the running config's (a reload may move files.dir)
        try:
            await files.sweep()
        except Exception as exc:  # the store may be down for a while: try again later
            log.warning("files: cleaning %s failed: %s", files.directory, exc)
        await asyncio.sleep(_SWEEP_EVERY)


def _documents(settings: Settings, previous: AppState | None) -> DocumentReader:
    """The PDF reader (worker processes, extraction cache) is kept while `documents:` is
    unchanged; a changed one gets a new reader and the old one closes after its last
    request (reload/apply.py)."""
    if previous is not None and previous.settings.documents == settings.documents:
        return previous.documents  # type: ignore[no-any-return]
    return DocumentReader(settings.documents)


def _make_search(settings: Settings, http: httpx.AsyncClient) -> Any:
    if not settings.web_search.enabled:
        return None
    from continuum_cli.websearch.providers import make_provider

    return make_provider(settings.web_search, http)


class Service:
    """The running router. `start()` binds and serves; `stop()` shuts down gracefully;
    `apply()` switches to a new config while requests in flight finish on the old one."""

    def __init__(self, settings: Settings, *, cache_dir: Path | None = None,
                 progress: Callable[[str], None] | None = None,
                 config_path: Path | None = None,
                 overrides: Callable[[Settings], Settings] | None = None) -> None:
        self.cache_dir = cache_dir
        self.progress = progress
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0), trust_env=False)
        self.store = open_store(settings.state)  # kept across reloads (state.* needs a restart)
        self.metrics = Metrics()
        self.reload_hooks = ReloadHooks()
        self.app = ContinuumApp(self.build_state(settings))
        # the fleet (per-backend state, long-lived) reports failovers and upstream errors
        self.state.fleet.hooks = self.metrics
        self.metrics.set_backend_source(lambda: self.state.fleet.backend_rows())
        self.server = Server(self.app, settings.server.host,
                             settings.server.port, _limits(settings),
                             settings.server.shutdown_grace, _tls(settings))
        self.reloader = Reloader(self, config_path, overrides)
        self.embedded: list[Any] = []
        self._background: list[asyncio.Task[None]] = []

    @property
    def state(self) -> AppState:
        """The current config generation (requests in flight may hold an older one)."""
        return self.app.state

    @property
    def settings(self) -> Settings:
        return self.app.state.settings

    def build_state(self, settings: Settings, previous: AppState | None = None) -> AppState:
        """Everything derived from the config, for one generation; long-lived resources
        (clients, connection pool, store, fleet, metrics) are shared. Raises ConfigError
        (keys_file)."""
        upstream = (previous.upstream.derive(settings.backends) if previous is not None
                    else UpstreamClient(settings.backends))
        state = AppState(
            settings=settings, upstream=upstream, http=self.http,
            search=_make_search(settings, self.http),
            api_keys=settings.api_keys.keys + load_keys_file(settings.api_keys.keys_file),
            store=self.store, metrics=self.metrics,
            fleet=previous.fleet if previous is not None else None,  # type: ignore[arg-type]
            checker=previous.checker if previous is not None else None,  # type: ignore[arg-type]
            documents=_documents(settings, previous),
        )
        state.files = _file_store(settings, self.store)
        if previous is not None:  # usage on its way to the store outlives a reload
            state.settler = settler_of(previous)
        if previous is not None:
            carry_backend_facts(previous, state)
        state.models_changed()
        return state

    def configure(self, old: Settings, settings: Settings) -> None:
        """The server settings a reload can change live (new connections get them)."""
        self.server.limits = _limits(settings)
        self.server.shutdown_grace = settings.server.shutdown_grace
        if settings.logging.level != old.logging.level:
            logging.getLogger("continuum").setLevel(settings.logging.level.upper())

    @property
    def url(self) -> str:
        host = self.server.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.server.tls is not None else "http"
        return f"{scheme}://{host}:{self.server.port}"

    async def start(self, sock: socket.socket | None = None) -> None:
        await self.state.store.open()
        log.info("state store: %s", self.state.store.description)
        self._background.append(asyncio.ensure_future(_sweep_files(lambda: self.state.files)))
        self._start_embedded()
        # every backend is checked once before the first request (and then every
        # `health_check.interval`), concurrently with model discovery
        await asyncio.gather(self.state.discover(), self.state.checker.start(self.settings))
        await self.server.start(sock)
        self.reloader.start()

    async def apply(self, settings: Settings) -> str:
        """Switch to `settings` (see continuum_cli/reload/apply.py); returns the summary
        logged. Raises ConfigError when the new config cannot be used: the old one stays."""
        return await apply_settings(self, settings)

    def request_reload(self) -> None:
        """Re-read the config file (SIGHUP, `continuum reload`)."""
        self.reloader.request()

    def _start_embedded(self) -> None:
        for backend in self.settings.backends:
            if backend.type == "embedded":
                self.state.checker.starting.add(backend.name)
                self._background.append(asyncio.ensure_future(self._run_embedded(backend)))

    async def _run_embedded(self, backend: Any) -> None:
        from continuum_cli.backends.embedded import EmbeddedServer, default_cache_dir

        server = EmbeddedServer(backend, cache_dir=self.cache_dir or default_cache_dir(),
                                progress=self.progress)
        self.embedded.append(server)
        checker = self.state.checker
        checker.starting.add(backend.name)
        try:
            base_url = await server.start()
        except Exception as exc:
            checker.starting.discard(backend.name)
            self.state.fleet.record_check(backend.name, "down", f"failed to start: {exc}")
            log.error("embedded backend %s failed to start: %s", backend.name, exc)
            return
        self.state.upstream.set_base_url(backend.name, base_url)
        checker.starting.discard(backend.name)
        await checker.check(backend)
        if server.load_seconds is not None:
            self.state.load_seconds[backend.name] = round(server.load_seconds, 2)
        await self.state.discover()

    async def stop(self) -> None:
        await self.reloader.stop()
        await self.server.shutdown()
        await self.state.checker.stop()
        for task in self._background:
            task.cancel()
        for server in self.embedded:
            with contextlib.suppress(Exception):
                await server.stop()
        await self.state.documents.aclose()
        await self.state.upstream.aclose()
        await self.http.aclose()
        await drain(self.state)
        await self.state.store.close()


async def run_service(service: Service, on_ready: Callable[[Service], None] | None = None
                      ) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
    await service.start()
    install_signal_handlers(service.server.request_stop, reload=service.request_reload)
    if on_ready is not None:
        on_ready(service)
    await service.server.wait_stopped()
    log.info("shutting down")
    await service.stop()
