"""Router overhead benchmark (`make bench`): the same requests, in one run, sent

- `direct` to the benchmark backend (bench/backend.py),
- through `floor` (bench/floor.py: the simplest h11-in / httpx-out passthrough),
- through the router's OpenAI passthrough (`router /v1`, POST /v1/chat/completions),
- through the router's Anthropic path (`router /anthropic`, POST /anthropic/v1/messages,
  translated both ways),
- through the same path with per-key limits and budgets on (`limits sqlite`: the default
  SQLite state store; `limits redis`: a redis-server on loopback), two more `continuum
  serve` processes whose only difference is the key's limits, budgets and store.

Backends (three by default, `--backends N`), floor, router (the real `continuum serve`) and
this load client each run in their own process.
Targets are measured in interleaved rounds so that noise from other work on the machine falls
on all of them alike. Figures are reported as added time and as ratios against `direct`.

Usage: `python bench/overhead.py [--json | --markdown] [--quick] [--profile-router FILE]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadclient as lc  # noqa: E402
import report  # noqa: E402

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
PROMPT = [{"role": "user", "content": "Say hello in one short sentence."}]
ANTHROPIC_HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}


@dataclass
class Target:
    name: str
    port: int
    pid: int  # the process in the middle (the backend's own for `direct`)
    anthropic: bool = False
    conns: list[lc.Connection] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=lambda: dict(ANTHROPIC_HEADERS))

    def cpu(self) -> float:
        """CPU seconds the process in the middle has used (all threads, ns resolution)."""
        total = 0
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{task}/schedstat") as file:
                    total += int(file.read().split()[0])
        return total / 1e9

    def call(self, *, stream: bool, tokens: int, paced: bool = False) -> lc.Call:
        model = "bench-paced" if paced else "bench"
        body: dict[str, Any] = {"model": model, "max_tokens": tokens, "messages": PROMPT}
        if stream:
            body["stream"] = True
        if self.anthropic:
            return lc.Call(lc.http_request(HOST, self.port, "/anthropic/v1/messages", body,
                                           self.headers))
        return lc.Call(lc.http_request(HOST, self.port, "/v1/chat/completions", body))


@dataclass(frozen=True)
class Plan:
    rounds: int = 5
    c1_seconds: float = 1.2
    c16_seconds: float = 1.5
    first_event_seconds: float = 1.0
    first_event_tokens: int = 16
    # first content: a stream paced at 1 ms per chunk. The backend's timer wakes 1-2 ms
    # late at random, so the median needs many requests; 40 chunks each keep them short.
    paced_tokens: int = 40
    paced_requests: int = 25
    # (events, repeats): the longest shows any per-event cost that grows with the stream
    streams: tuple[tuple[int, int], ...] = ((1_000, 10), (10_000, 2), (100_000, 1))

    @classmethod
    def quick(cls) -> Plan:
        return cls(rounds=2, c1_seconds=0.4, c16_seconds=0.5, first_event_seconds=0.3,
                   paced_requests=8, streams=((1_000, 4), (10_000, 1), (30_000, 1)))


# -- processes ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _spawn_announcing(args: list[str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start a helper that prints `PORT <n>` once listening."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log.open("wb"))
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "PORT":
        proc.kill()
        raise RuntimeError(f"{args[1]} did not start; see {log}")
    return proc, int(line[1])


def _router_config(tmp: Path, backend_ports: list[int], port: int, interval: str,
                   name: str = "router", extra: str = "") -> Path:
    """Every backend serves the benchmark models; the router balances among them
    (`least_outstanding`) and checks each one every `interval`."""
    config = tmp / f"{name}.yaml"
    entries = "".join(
        f"  - name: bench-{i}\n    type: vllm\n    url: http://{HOST}:{bport}/v1\n"
        f"    models: [bench, bench-paced]\n"
        f"    health_check: {{interval: {interval}, timeout: 2s}}\n"
        for i, bport in enumerate(backend_ports))
    config.write_text(
        "server:\n"
        f"  bind_address: {HOST}:{port}\n"
        f"backends:\n{entries}"
        "model_aliases:\n  default: bench\n" + extra,
        encoding="utf-8",
    )
    return config


LIMITED_KEY = "bench-limited-key"
# every kind of limit and budget at once, set high enough never to refuse a bench request
LIMITS_CONFIG = f"""api_keys:
  mode: blocking
  keys:
    - key: {LIMITED_KEY}
      name: bench
      limits: {{requests_per_minute: 100000000, input_tokens_per_minute: 1000000000000,
               output_tokens_per_minute: 1000000000000, concurrent_requests: 64}}
      budgets:
        - {{period: daily, tokens: 1000000000000000}}
        - {{period: monthly, cost_usd: 1000000000}}
pricing:
  bench: {{input: 0.2, output: 0.8}}
"""


def _spawn_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", HOST, "--save", "",
                             "--appendonly", "no", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=(tmp / "redis.log").open("wb"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return proc, port
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _spawn_router(tmp: Path, backend_ports: list[int], log_level: str,
                  profile: str | None, interval: str, name: str = "router",
                  extra: str = "") -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    config = _router_config(tmp, backend_ports, port, interval, name, extra)
    runner = ["-m", "cProfile", "-o", profile] if profile else []
    args = [sys.executable, *runner, "-m", "continuum_cli", "serve", "--config", str(config),
            "--log-level", log_level]
    log = tmp / f"{name}.log"
    env = {**os.environ, "HOME": str(tmp), "NO_COLOR": "1"}
    for name in ("CONTINUUM_CONFIG", "CONTINUUM_BIND", "CONTINUUM_LOG_FORMAT"):
        env.pop(name, None)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env)
    _wait_healthy(proc, port, log)
    return proc, port


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the router exited with {proc.returncode}; see {log}:\n"
                               + log.read_text(errors="replace")[-2000:])
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"the router did not become healthy; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # graceful, so a cProfile run writes its stats
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def processes(args: argparse.Namespace) -> Iterator[list[Target]]:
    with tempfile.TemporaryDirectory(prefix="continuum-bench-") as name:
        tmp = Path(name)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            ports = []
            for i in range(args.backends):  # the first is `direct`'s and the floor's
                proc, bport = _spawn_announcing(
                    [sys.executable, str(HERE / "backend.py")], tmp / f"backend-{i}.log")
                procs.append(proc)
                ports.append(bport)
            backend, bport = procs[0], ports[0]
            floor, fport = _spawn_announcing(
                [sys.executable, str(HERE / "floor.py"), f"http://{HOST}:{bport}"],
                tmp / "floor.log")
            procs.append(floor)
            router, rport = _spawn_router(tmp, ports, args.router_log_level, args.profile_router,
                                          args.health_interval)
            procs.append(router)
            targets = [Target("direct", bport, backend.pid), Target("floor", fport, floor.pid),
                       Target("router /v1", rport, router.pid),
                       Target("router /anthropic", rport, router.pid, True)]
            if not args.no_limits:
                targets += _limits_targets(tmp, ports, args, procs)
            yield targets
        finally:
            for proc in reversed(procs):
                _stop(proc)


def _limits_targets(tmp: Path, ports: list[int], args: argparse.Namespace,
                    procs: list[subprocess.Popen[bytes]]) -> list[Target]:
    headers = {**ANTHROPIC_HEADERS, "x-api-key": LIMITED_KEY}
    stores = [("limits sqlite", f"state:\n  path: {tmp / 'state.db'}\n")]
    redis = _spawn_redis(tmp)
    if redis is not None:
        procs.append(redis[0])
        stores.append(("limits redis",
                       f"state:\n  redis_url: redis://{HOST}:{redis[1]}/0\n"))
    else:
        print("redis-server not found: the `limits redis` target is left out", file=sys.stderr)
    targets = []
    for name, state in stores:
        profile = f"{args.profile_router}.{name.replace(' ', '-')}" if args.profile_router \
            else None  # each limits router gets its own profile next to the main one
        proc, port = _spawn_router(tmp, ports, args.router_log_level, profile,
                                   args.health_interval, name.replace(" ", "-"),
                                   LIMITS_CONFIG + state)
        procs.append(proc)
        targets.append(Target(name, port, proc.pid, True, headers=headers))
    return targets


# -- phases ------------------------------------------------------------------------------------


async def _open(targets: list[Target], count: int) -> None:
    for target in targets:
        for conn in target.conns:
            conn.close()
        target.conns = [await lc.connect(HOST, target.port) for _ in range(count)]


async def warm_up(targets: list[Target]) -> None:
    await _open(targets, 16)
    for target in targets:
        for stream in (False, True):
            call = target.call(stream=stream, tokens=64)
            await asyncio.gather(*(lc.sequential(c, call, 0.0, 64, target.name, 1)
                                   for c in target.conns))
            await lc.sequential(target.conns[0], call, 0.3, 64, target.name, 200)


async def non_stream(targets: list[Target], plan: Plan, concurrency: int
                     ) -> dict[str, dict[str, Any]]:
    seconds = plan.c1_seconds if concurrency == 1 else plan.c16_seconds
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    rates: dict[str, list[float]] = {t.name: [] for t in targets}
    cpu: dict[str, float] = {t.name: 0.0 for t in targets}
    for _ in range(plan.rounds):
        for target in targets:
            call = target.call(stream=False, tokens=24)
            before = target.cpu()
            timings, rate = await lc.concurrent(target.conns[:concurrency], call,
                                                seconds / plan.rounds, 24, target.name)
            cpu[target.name] += target.cpu() - before
            samples[target.name] += [t.total for t in timings]
            rates[target.name].append(rate)
    return {name: {**_latency(values), "rps": sum(rates[name]) / len(rates[name]),
                   "cpu_ms_per_request": cpu[name] / len(values) * 1e3}
            for name, values in samples.items()}


async def first_event(targets: list[Target], plan: Plan) -> dict[str, dict[str, Any]]:
    """Time to the first SSE event of any kind (the backend streams at full speed)."""
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    for _ in range(plan.rounds):
        for target in targets:
            call = target.call(stream=True, tokens=plan.first_event_tokens)
            timings = await lc.sequential(target.conns[0], call,
                                          plan.first_event_seconds / plan.rounds,
                                          plan.first_event_tokens, target.name)
            samples[target.name] += [t.first_event for t in timings]
    return {name: _latency(values) for name, values in samples.items()}


async def first_content(targets: list[Target], plan: Plan) -> dict[str, dict[str, Any]]:
    """Time to the first text when the backend generates one chunk per millisecond: what a
    user waits for, including anything the router holds back."""
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    for _ in range(plan.paced_requests):
        for target in targets:
            call = target.call(stream=True, tokens=plan.paced_tokens, paced=True)
            timing = lc.check(await target.conns[0].exchange(call), plan.paced_tokens,
                              target.name)
            samples[target.name].append(timing.first_token)
    return {name: _latency(values) for name, values in samples.items()}


async def long_streams(targets: list[Target], plan: Plan) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
    for events, repeats in plan.streams:
        spans: dict[str, list[float]] = {t.name: [] for t in targets}
        cpu: dict[str, float] = {t.name: 0.0 for t in targets}
        for _ in range(repeats):
            for target in targets:
                call = target.call(stream=True, tokens=events)
                before = target.cpu()
                timing = lc.check(await target.conns[0].exchange(call), events, target.name)
                cpu[target.name] += target.cpu() - before
                # first event to last content: the relay rate, without request set-up
                spans[target.name].append((timing.last_token - timing.first_event) / events)
        for name, values in spans.items():
            per_event = sorted(values)[len(values) // 2]
            out[name][str(events)] = {"us_per_event": per_event * 1e6,
                                      "events_per_s": 1 / per_event,
                                      "cpu_us_per_event": cpu[name] / repeats / events * 1e6}
    return out


def _latency(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_ms": lc.percentile(values, 50) * 1e3,
            "p99_ms": lc.percentile(values, 99) * 1e3}


async def measure(targets: list[Target], plan: Plan, progress: Any) -> dict[str, Any]:
    progress("warming up")
    await warm_up(targets)
    results: dict[str, Any] = {}
    progress("non-stream, c=1")
    results["non_stream_c1"] = await non_stream(targets, plan, 1)
    progress("non-stream, c=16")
    results["non_stream_c16"] = await non_stream(targets, plan, 16)
    progress("time to the first streamed event")
    results["first_event"] = await first_event(targets, plan)
    progress("time to the first streamed text (paced backend)")
    results["first_content"] = await first_content(targets, plan)
    progress("long streams: " + ", ".join(str(n) for n, _ in plan.streams) + " events")
    results["streams"] = await long_streams(targets, plan)
    for target in targets:
        for conn in target.conns:
            conn.close()
    return results


# -- main --------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model,
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="continuum router overhead benchmark")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables on stdout")
    parser.add_argument("--quick", action="store_true", help="a short run (noisier figures)")
    parser.add_argument("--router-log-level", default="info",
                        help="the router's --log-level (default info, as `continuum serve`)")
    parser.add_argument("--backends", type=int, default=3,
                        help="backend processes behind the router, all serving the benchmark "
                        "models (default 3: routing and health checks included)")
    parser.add_argument("--health-interval", default="1s",
                        help="health_check.interval of every backend (default 1s)")
    parser.add_argument("--no-limits", action="store_true",
                        help="leave out the `limits sqlite` and `limits redis` targets")
    parser.add_argument("--profile-router", metavar="FILE",
                        help="run the router under cProfile and write its stats to FILE")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()
    info = machine()
    started = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {msg}", file=sys.stderr, flush=True)

    with processes(args) as targets:
        results = asyncio.run(measure(targets, plan, progress))
    results["machine"] = info
    results["seconds"] = round(time.monotonic() - started, 1)
    results["budgets"] = report.budgets(results)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    elif args.markdown:
        print(report.render_markdown(results))
    else:
        print(report.render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
