"""Apply a new config to a running router, atomically (`apply_settings`), and re-read the
config file when asked (`Reloader`: SIGHUP, `continuum reload`, a changed file).

A config generation is an `AppState`. A reload builds the whole next generation first
(keys file, search provider, every registered hook's `prepare`), checks the backends it adds
or changes, and only then swaps it in with one assignment: a request keeps the generation it
started with until its last byte, new requests get the new one. Anything that fails before
the swap leaves the old config serving. The old generation is retired: once its last request
ends, pooled connections to backends the new config no longer has are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuum_cli.api.state import AppState
from continuum_cli.config.loader import load_config
from continuum_cli.config.models import Settings
from continuum_cli.errors import ConfigError
from continuum_cli.reload.diff import backend_changes, keep_running, restart_needed, summary
from continuum_cli.reload.watcher import FileWatcher

log = logging.getLogger("continuum.reload")
Hook = Callable[[AppState, AppState], Awaitable[None] | None]
_CHECK_TIMEOUT = 3.0  # seconds an added backend has to answer its readiness check


@dataclass
class ReloadHooks:
    """What other parts of the router rebuild on a reload. `prepare(old, new)` runs before
    the swap and may raise ConfigError to reject the config; `commit(old, new)` runs after
    it and must not fail."""

    prepares: list[Hook] = field(default_factory=list)
    commits: list[Hook] = field(default_factory=list)

    def add(self, prepare: Hook | None = None, commit: Hook | None = None) -> None:
        if prepare is not None:
            self.prepares.append(prepare)
        if commit is not None:
            self.commits.append(commit)


async def _run(hook: Hook, old: AppState, new: AppState) -> None:
    result = hook(old, new)
    if inspect.isawaitable(result):
        await result


def carry_backend_facts(old: AppState, new: AppState) -> None:
    """What the router learned about backends the new config keeps unchanged: discovered
    models, status, context windows, load times, token counts."""
    same = {b.name for b in new.settings.backends} & {b.name for b in old.settings.backends}
    same = {n for n in same if _backend(old, n) == _backend(new, n)}
    for attr in ("discovered", "context_windows", "load_seconds"):
        source, target = getattr(old, attr), getattr(new, attr)
        target.update({k: v for k, v in source.items() if k in same})
    new.token_cache.update({k: v for k, v in old.token_cache.items() if k[0] in same})
    new._last_discovery = old._last_discovery


def _backend(state: AppState, name: str) -> Any:
    return next((b for b in state.settings.backends if b.name == name), None)


def report_failure(service: Any, exc: ConfigError) -> None:
    hint = f" (hint: {exc.hint})" if exc.hint else ""
    log.error("config reload failed: %s%s; still serving the previous config", exc, hint)
    service.metrics.config_reload("failure")


async def apply_settings(service: Any, settings: Settings) -> str:
    """Switch `service` to `settings`; the summary logged, or ConfigError (old config kept)."""
    old_state: AppState = service.state
    old = old_state.settings
    restart = restart_needed(old, settings)
    settings = keep_running(old, settings)
    state = await _prepare(service, old_state, settings)
    # nothing below fails: the fleet takes the new backends (added and changed ones are not
    # routable until an active check says ready; removed ones finish what is in flight)
    await _admit_backends(state, backend_changes(old, settings))
    service.app.state = state  # the swap: new requests get the new generation from here
    service.configure(old, settings)
    _retire(service, old_state)
    await _commit(service, old_state, state)
    return _announce(service, settings, restart)


async def _prepare(service: Any, old_state: AppState, settings: Settings) -> AppState:
    """The next generation, fully built, or ConfigError (logged and counted)."""
    try:
        state: AppState = service.build_state(settings, previous=old_state)
        for hook in service.reload_hooks.prepares:
            await _run(hook, old_state, state)
    except ConfigError as exc:
        report_failure(service, exc)
        raise
    return state


async def _admit_backends(state: AppState, changes: Any) -> None:
    state.checker.upstream = state.upstream
    state.fleet.reconfigure(state.settings)
    if not changes.to_check:
        return
    await _check(state, changes.to_check)  # readiness before traffic, and their models
    for backend in changes.to_check:
        log.info("config reload: backend %s (%s) is %s", backend.name,
                 "added" if backend in changes.added else "changed",
                 state.fleet.status(backend.name))


async def _commit(service: Any, old_state: AppState, state: AppState) -> None:
    for hook in service.reload_hooks.commits:
        try:
            await _run(hook, old_state, state)
        except Exception:
            log.exception("config reload: a commit hook failed")


def _announce(service: Any, settings: Settings, restart: list[str]) -> str:
    text = summary(settings)
    log.info("config reloaded (%s)", text)
    for name in restart:
        log.warning("config reload: %s changed, which needs a restart; the running value "
                    "is kept until continuum restarts", name)
    service.metrics.config_reload("success")
    return text


async def _check(state: AppState, backends: tuple[Any, ...]) -> None:
    checks = [state.checker.check(b) for b in backends]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_CHECK_TIMEOUT):
            await asyncio.gather(state.discover(_CHECK_TIMEOUT, backends=backends), *checks)


def _retire(service: Any, old: AppState) -> None:
    """Connections to addresses the new config no longer uses close now when idle, else
    after their last request; per-config resources the new generation replaced (the PDF
    reader) close once the old generation's last request has ended."""
    new: AppState = service.state
    gone = old.upstream.origins() - new.upstream.origins()
    new.upstream.retire_unused(old.upstream)
    if gone:
        log.info("config reload: connections to %s close after their last request",
                 ", ".join(sorted(gone)))
    if old.documents is not None and old.documents is not new.documents:
        old.on_idle = lambda: _close_later(old.documents)
        if old.in_flight <= 0:
            old.on_idle = None
            _close_later(old.documents)


def _close_later(resource: Any) -> None:
    task = asyncio.ensure_future(resource.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[Any]] = set()


class Reloader:
    """Re-reads the config file of a running router, one reload at a time."""

    def __init__(self, service: Any, path: Path | None,
                 overrides: Callable[[Settings], Settings] | None = None) -> None:
        self.service = service
        self.path = path
        self.overrides = overrides
        self.watcher = FileWatcher(self._paths, self.reload) if path is not None else None
        self.listeners: list[Callable[[bool, str], None]] = []  # (ok, message) per reload
        self._lock: asyncio.Lock | None = None
        self._pending: set[asyncio.Task[bool]] = set()

    def _paths(self) -> list[Path]:
        assert self.path is not None
        paths = [self.path]
        keys_file = self.service.settings.api_keys.keys_file
        if keys_file:
            paths.append(Path(keys_file).expanduser())
        return paths

    def start(self) -> None:
        if self.watcher is not None:
            self.watcher.start()

    async def stop(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        for task in list(self._pending):
            task.cancel()

    def request(self) -> None:
        """A reload from a signal handler: run it as a task."""
        task = asyncio.ensure_future(self.reload())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def reload(self) -> bool:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self.watcher is not None:
                self.watcher.rebase()  # before reading: a later edit is noticed again
            ok, message = await self._reload()
        for listener in self.listeners:
            listener(ok, message)
        return ok

    async def _reload(self) -> tuple[bool, str]:
        if self.path is None:
            message = ("config reload failed: the router was started without a config file "
                       "(start it with one: continuum serve --config PATH)")
            log.warning("%s", message)
            return False, message
        try:
            settings = load_config(str(self.path)).settings
            if self.overrides is not None:
                settings = self.overrides(settings)
        except ConfigError as exc:
            report_failure(self.service, exc)
            return False, f"config reload failed: {exc}"
        try:
            text = await self.service.apply(settings)
        except ConfigError as exc:
            return False, f"config reload failed: {exc}"
        except Exception as exc:  # a bug must not take the running config down with it
            log.exception("config reload failed: internal error; still serving the previous "
                          "config")
            self.service.metrics.config_reload("failure")
            return False, f"config reload failed: internal error ({type(exc).__name__})"
        return True, f"config reloaded ({text})"
