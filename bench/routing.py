"""CPU per request of routing among several backends, without sockets: resolving the model
(`routing.resolve`), picking a backend (`Fleet.choose`), the ticket that tracks it, and the
failover shell around the attempt (`fleet.failover.send`), for 1 and for 3 backends serving
the model, with every strategy. Steady enough on a shared machine to compare versions.

Usage: `python bench/routing.py [--requests N]`
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from continuum_cli.config.models import Settings  # noqa: E402
from continuum_cli.fleet import Fleet, failover  # noqa: E402
from continuum_cli.routing import resolve  # noqa: E402


def settings(backends: int, strategy: str) -> Settings:
    return Settings.model_validate({
        "routing": {"strategy": strategy},
        "model_aliases": {"default": "bench"},
        "backends": [{"name": f"gpu-{i}", "type": "vllm", "url": f"http://10.0.0.{i}:8000",
                      "models": ["bench"]} for i in range(backends)]})


async def per_request_us(backends: int, strategy: str, requests: int) -> float:
    config = settings(backends, strategy)
    fleet = Fleet(config)
    for backend in config.backends:
        fleet.record_check(backend.name, "ready", "HTTP 200")

    async def attempt(route: object, ticket: object) -> None:
        return None

    async def one() -> None:
        route = resolve("claude-sonnet-4-5", config, {})
        await failover.send(fleet, route, attempt, fallback=None)

    for _ in range(1000):
        await one()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(requests):
            await one()
        best = min(best, (time.process_time() - start) / requests * 1e6)
    return best


async def main(requests: int) -> None:
    base = await per_request_us(1, "least_outstanding", requests)
    print(f"{'backends':>8}  {'strategy':<18}{'CPU us/request':>15}{'vs 1 backend':>14}")
    print(f"{1:>8}  {'(any)':<18}{base:>15.1f}{'':>14}")
    for strategy in ("least_outstanding", "round_robin", "priority"):
        us = await per_request_us(3, strategy, requests)
        print(f"{3:>8}  {strategy:<18}{us:>15.1f}{us - base:>+14.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    asyncio.run(main(parser.parse_args().requests))
