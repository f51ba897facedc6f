"""Active health checks: every backend's readiness probe, every `health_check.interval`.

The async shell around `Fleet.record_check`. A backend added by a reload is checked at once
and takes no traffic before its first check says ready. `check_all()` runs a fresh round now
(for /health) without ever having two probes of one backend on the way at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from continuum_cli.config.models import Backend, Settings
from continuum_cli.errors import ApiError
from continuum_cli.fleet.fleet import Fleet
from continuum_cli.fleet.state import DOWN, LOADING

log = logging.getLogger("continuum.fleet")


class HealthChecker:
    def __init__(self, fleet: Fleet, upstream: Any) -> None:
        self.fleet, self.upstream = fleet, upstream
        self._loops: dict[str, tuple[Backend, asyncio.Task[None]]] = {}
        self._probes: dict[str, asyncio.Future[None]] = {}
        self.starting: set[str] = set()  # embedded backends whose server is starting

    async def start(self, settings: Settings) -> None:
        """Check every backend once (concurrently), then keep checking in the background."""
        await asyncio.gather(*(self.check(b) for b in settings.backends))
        self.reconfigure(settings, check_first=False)

    def reconfigure(self, settings: Settings, *, check_first: bool = True) -> None:
        """Follow a new config: the upstream client's addresses, loops for new or changed
        backends (checked at once), none for removed ones."""
        if check_first:
            self.upstream.reconfigure(settings.backends)
        wanted = {b.name: b for b in settings.backends}
        for name, (backend, task) in list(self._loops.items()):
            if wanted.get(name) != backend:
                task.cancel()
                del self._loops[name]
        for name, backend in wanted.items():
            if name not in self._loops:
                task = asyncio.ensure_future(self._loop(backend, check_first))
                self._loops[name] = (backend, task)

    async def stop(self) -> None:
        tasks = [task for _, task in self._loops.values()]
        self._loops.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def check_all(self, settings: Settings) -> None:
        """A fresh round now, sharing any probe already on its way."""
        await asyncio.gather(*(self.check(b) for b in settings.backends))

    async def check(self, backend: Backend) -> None:
        """Probe one backend (joins a probe of it already running)."""
        running = self._probes.get(backend.name)
        if running is None:
            running = asyncio.ensure_future(self._probe(backend))
            self._probes[backend.name] = running
            running.add_done_callback(lambda _: self._probes.pop(backend.name, None))
        await asyncio.shield(running)

    async def _probe(self, backend: Backend) -> None:
        if backend.name in self.starting:
            self.fleet.record_check(backend.name, LOADING, "the embedded model is loading")
            return
        try:
            result, detail = await self.upstream.health(backend)
        except ApiError as exc:  # no address yet (an embedded backend not started)
            result, detail = (LOADING if exc.upstream_failure == "loading" else DOWN), exc.message
        except Exception as exc:  # a probe must never kill its loop
            result, detail = DOWN, f"{type(exc).__name__}: {exc}"
        self.fleet.record_check(backend.name, result, detail)

    async def _loop(self, backend: Backend, check_first: bool) -> None:
        interval = backend.health_check.interval
        if check_first:
            await self.check(backend)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check(backend)
            except asyncio.CancelledError:
                raise
            except Exception:  # logged, and the next round tries again
                log.exception("health check of %s failed", backend.name)
