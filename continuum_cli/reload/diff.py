"""What a reload changes (pure): settings that need a restart, backends added/removed/changed.

Everything is applied live except what is bound to resources made once at start-up:
- `server.bind_address`, `server.tls`: the listening socket and its TLS context;
- `logging.format`: the log handler chosen by `continuum serve` (the level is applied live);
- `state`: the state store's connection (SQLite file / Redis URL);
- an `embedded` backend entry: its llama.cpp child process is started with the router.
The new value of each is ignored until a restart, and the log names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from continuum_cli.config.models import Backend, Settings

# dotted attribute paths of Settings; a path whose section does not exist is skipped.
# Packages whose section holds such a setting append its path here.
RESTART_REQUIRED: list[str] = ["server.bind_address", "server.tls", "logging.format", "state"]


@dataclass(frozen=True)
class BackendChanges:
    added: tuple[Backend, ...]
    removed: tuple[Backend, ...]
    changed: tuple[Backend, ...]  # same name, new definition (the new one)

    @property
    def to_check(self) -> tuple[Backend, ...]:
        """Backends that must answer a readiness check before they get traffic."""
        return self.added + self.changed


def backend_changes(old: Settings, new: Settings) -> BackendChanges:
    before = {b.name: b for b in old.backends}
    after = {b.name: b for b in new.backends}
    return BackendChanges(
        added=tuple(b for n, b in after.items() if n not in before),
        removed=tuple(b for n, b in before.items() if n not in after),
        changed=tuple(b for n, b in after.items() if n in before and before[n] != b),
    )


def _get(settings: Any, path: str) -> Any:
    value = settings
    for part in path.split("."):
        if not hasattr(value, part):
            return _MISSING
        value = getattr(value, part)
    return value


_MISSING = object()


def restart_needed(old: Settings, new: Settings) -> list[str]:
    """The settings whose new value a running router cannot take (named in the log)."""
    names = [p for p in RESTART_REQUIRED
             if _get(old, p) is not _MISSING and _get(old, p) != _get(new, p)]
    names += [f"backends[{n}] (embedded)" for n in _embedded_changes(old, new)]
    return names


def _embedded_changes(old: Settings, new: Settings) -> list[str]:
    before = {b.name: b for b in old.backends if b.type == "embedded"}
    after = {b.name: b for b in new.backends if b.type == "embedded"}
    return sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))


def keep_running(old: Settings, new: Settings) -> Settings:
    """`new` with the old value of every setting that needs a restart: what the router will
    actually run after this reload."""
    for path in RESTART_REQUIRED:
        if _get(old, path) is not _MISSING and _get(old, path) != _get(new, path):
            new = _replace(new, path.split("."), _get(old, path))
    if _embedded_changes(old, new):
        kept = [b for b in old.backends if b.type == "embedded"]
        backends = [b for b in new.backends if b.type != "embedded"] + kept
        new = new.model_copy(update={"backends": tuple(backends)})
    return new


def _replace(model: Any, parts: list[str], value: Any) -> Any:
    if len(parts) == 1:
        return model.model_copy(update={parts[0]: value})
    inner = _replace(getattr(model, parts[0]), parts[1:], value)
    return model.model_copy(update={parts[0]: inner})


def summary(settings: Settings) -> str:
    return (f"{len(settings.backends)} backends, {len(settings.model_aliases)} aliases")
