"""CPU per request of the router's metrics: what `ContinuumApp.observe` does once per
request (generation bookkeeping, route label, bounded model label, counters, histograms,
token counters), measured on the real objects without sockets, and one `/metrics` render.

Usage: `python bench/metrics.py [--requests N]` (default 200 000).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from continuum_cli.config.loader import validate  # noqa: E402
from continuum_cli.service import Service  # noqa: E402
from continuum_cli.server.types import Request  # noqa: E402

CONFIG = {"backends": [{"name": n, "url": f"http://127.0.0.1:{9000 + i}/v1", "models": ["m"]}
                       for i, n in enumerate(("gpu-a", "gpu-b", "gpu-c"))],
          "model_aliases": {"sonnet": "m", "haiku": "m", "default": "m"}}


def per_request(requests: int, stream: bool) -> float:
    """Microseconds of CPU per request for observe() on a request that was handled."""
    service = Service(validate(CONFIG))
    app, state = service.app, service.state
    request = Request("POST", "/anthropic/v1/messages", "/anthropic/v1/messages", "", {}, b"")
    tags = {"backend": "gpu-a", "model": "m", "input_tokens": 1200, "output_tokens": 80}
    ttft = 0.012 if stream else None
    started = time.process_time()
    for _ in range(requests):
        state.in_flight += 1  # what handle() records at the start
        app._generations[id(request)] = (state, {})
        app.observe(request, 200, 0.25, ttft, tags)
    spent = time.process_time() - started
    asyncio.run(service.http.aclose())
    return spent / requests * 1e6


def render_ms() -> tuple[float, int]:
    service = Service(validate(CONFIG))
    for i in range(200):
        service.metrics.observe("/anthropic/v1/messages", 200 + i % 3, "gpu-a", "m", 0.1, 0.01)
    started = time.perf_counter()
    body, _ = service.metrics.render()
    return (time.perf_counter() - started) * 1000, len(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    plain = min(per_request(args.requests, stream=False) for _ in range(3))
    streamed = min(per_request(args.requests, stream=True) for _ in range(3))
    ms, size = render_ms()
    print("| metrics, CPU µs per request (best of 3) | non-stream | stream (+ time to first token) |")
    print("|---|---:|---:|")
    print(f"| `ContinuumApp.observe` | {plain:.1f} | {streamed:.1f} |")
    print(f"\n/metrics render: {ms:.2f} ms for {size} bytes")


if __name__ == "__main__":
    main()
