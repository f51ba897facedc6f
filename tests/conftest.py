"""Shared fixtures: environment isolation, the scripted backend, the real router on a port."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.scripted_backend import ScriptedBackend
from tests.router import RouterThread, settings_for

# real llama.cpp server fixtures (realbackend, e2e); a real redis-server (`redis_server`)
pytest_plugins = ["tests.fixtures_llama", "tests.redis_server"]

_ISOLATED_ENV = ("CONTINUUM_CONFIG", "CONTINUUM_BIND", "CONTINUUM_LOG_LEVEL",
                 "CONTINUUM_LOG_FORMAT", "CONTINUUM_STATE_PATH", "ANTHROPIC_BASE_URL",
                 "ANTHROPIC_API_KEY",
                 "ANTHROPIC_AUTH_TOKEN", "BRAVE_API_KEY", "SERPER_API_KEY", "EXA_API_KEY")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                  ) -> None:
    """No test reads the developer's config, keys or home directory."""
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # the default state store (continuum.db in the user data dir) is per test too
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`continuum serve` configures the `continuum` logger; undo it so later tests' caplog
    still sees records and nothing is printed to the real terminal."""
    logger = logging.getLogger("continuum")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:] = saved[0]
    logger.propagate = saved[1]
    logger.setLevel(saved[2])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def scripted() -> Iterator[ScriptedBackend]:
    with ScriptedBackend() as backend:
        yield backend


def basic_config(backend: ScriptedBackend, **extra: Any) -> dict[str, Any]:
    """A config with one generic backend (the scripted one) and the seed's aliases."""
    config: dict[str, Any] = {
        "backends": [{"name": "scripted", "type": "generic", "url": backend.url,
                      "models": list(backend.models)}],
        "model_aliases": {"haiku": backend.models[0], "sonnet": backend.models[0],
                          "opus": backend.models[0]},
    }
    config.update(extra)
    return config


@pytest.fixture
def router_factory() -> Iterator[Callable[..., RouterThread]]:
    started: list[RouterThread] = []

    def start(config: Any) -> RouterThread:
        router = RouterThread(settings_for(config)).start()
        started.append(router)
        return router

    yield start
    for router in started:
        router.stop()


@pytest.fixture
def router(scripted: ScriptedBackend, router_factory: Callable[..., RouterThread]
           ) -> RouterThread:
    """The router in front of the scripted backend, with haiku/sonnet/opus aliases."""
    return router_factory(basic_config(scripted))
