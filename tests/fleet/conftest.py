"""Several scripted backends behind one router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.scripted_backend import ScriptedBackend


@pytest.fixture
def trio() -> Iterator[list[ScriptedBackend]]:
    backends = [ScriptedBackend(models=("m",)).start() for _ in range(3)]
    yield backends
    for backend in backends:
        backend.stop()


def fleet_config(backends: list[ScriptedBackend], *, names: tuple[str, ...] = (),
                 interval: str = "200ms", **extra: Any) -> dict[str, Any]:
    """vLLM-type backends (their readiness probe is /health, which a test can flip)."""
    names = names or tuple(f"gpu-{chr(97 + i)}" for i in range(len(backends)))
    config: dict[str, Any] = {"backends": [
        {"name": name, "type": "vllm", "url": b.url, "models": list(b.models),
         "health_check": {"interval": interval, "timeout": "2s"}}
        for name, b in zip(names, backends, strict=True)]}
    config.update(extra)
    return config
