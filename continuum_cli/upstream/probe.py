"""Find the standard local backends when no config file exists (Ollama, LM Studio, llama.cpp).

Whatever answers `GET /v1/models` within a short timeout is used as it is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from continuum_cli.config.models import Backend

STANDARD_BACKENDS: tuple[tuple[str, str, int], ...] = (
    ("ollama", "ollama", 11434),
    ("lmstudio", "lmstudio", 1234),
    ("llamacpp", "llamacpp", 8080),
)


@dataclass(frozen=True)
class ProbeResult:
    name: str
    url: str
    found: bool
    models: tuple[str, ...] = ()
    detail: str = ""


async def _probe(client: httpx.AsyncClient, name: str, kind: str, port: int,
                 host: str, timeout: float) -> tuple[ProbeResult, Backend | None]:
    url = f"http://{host}:{port}/v1"
    try:
        resp = await client.get(url + "/models", timeout=timeout)
        data = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return ProbeResult(name, url, False, detail=type(exc).__name__), None
    if not isinstance(data, dict):
        return ProbeResult(name, url, False, detail=f"HTTP {resp.status_code}"), None
    models = tuple(str(m["id"]) for m in data.get("data") or [] if isinstance(m, dict)
                   and m.get("id"))
    backend = Backend(name=name, type=kind, url=url, models=models)  # type: ignore[arg-type]
    return ProbeResult(name, url, True, models), backend


async def probe_local_backends(host: str = "127.0.0.1", timeout: float = 1.0,
                               candidates: tuple[tuple[str, str, int], ...] = STANDARD_BACKENDS
                               ) -> tuple[list[ProbeResult], list[Backend]]:
    async with httpx.AsyncClient(trust_env=False) as client:
        pairs = await asyncio.gather(*(_probe(client, n, k, p, host, timeout)
                                       for n, k, p in candidates))
    return [r for r, _ in pairs], [b for _, b in pairs if b is not None]
