"""Latency with a real engine: tool-call turns through the router, and a first `continuum claude`.

    .venv/bin/python bench/realengine.py            # table on stdout, progress on stderr
    .venv/bin/python bench/realengine.py --json
    .venv/bin/python bench/realengine.py --turns 3 --no-claude

1. Tool-call turns: `continuum serve` (a subprocess, log level warning) with an `embedded`
   backend: SmolLM2-135M in llama.cpp with `tests/fixtures/smollm2-tools.jinja` as its chat
   template, default threads (the physical cores). Each turn is `POST /anthropic/v1/messages`
   with one tool and `tool_choice: {"type": "any"}`, so llama.cpp's grammar forces a real
   `tool_use`; the city changes per turn (the shared prefix stays in llama.cpp's prompt
   cache, as in a conversation). Measured: non-streamed turn time; streamed time to the
   `tool_use` block's start and to `message_stop`; the turn that carries the tool_result
   back. One warm-up turn first.
2. First run: `tests/e2e/first_run_host.py` in a loopback-only network namespace (needs
   `unshare -n` and the pinned Claude Code in .cache/cc): fresh HOME, `continuum claude`
   starts the router (scripted backend) and Claude Code; seconds until the folder-trust
   question, until the prompt, and until a typed prompt's answer is on screen.

Figures are wall clock on whatever else the machine is doing; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from continuum_cli.backends.cpus import default_threads, physical_cores  # noqa: E402
from continuum_cli.backends.embedded import default_cache_dir, ensure_default_model  # noqa: E402

TEMPLATE = REPO / "tests" / "fixtures" / "smollm2-tools.jinja"
CLAUDE = REPO / ".cache" / "cc" / "node_modules" / ".bin" / "claude"
CITIES = ["Paris", "Lyon", "Oslo", "Lima", "Quito", "Riga", "Turin", "Bern", "Porto", "Cork"]
TOOL = {"name": "get_weather", "description": "Get the current weather for a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_router(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    model = ensure_default_model(default_cache_dir())
    port = free_port()
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"bind_address": f"127.0.0.1:{port}"},
        "logging": {"level": "warning"},
        "backends": [{"name": "embedded", "type": "embedded", "model_path": str(model),
                      "models": ["smollm2-135m"], "context_size": 4096,
                      "chat_template_file": str(TEMPLATE),
                      "request_defaults": {"temperature": 0.0, "seed": 1}}],
        "model_aliases": {"default": "smollm2-135m"}}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = (folder / "router.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "continuum_cli", "serve", "--config",
                             str(config)], stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the router did not become ready")


def body(city: str, stream: bool, history: list[Any] | None = None) -> dict[str, Any]:
    messages = history or [{"role": "user", "content": f"What is the weather in {city}?"}]
    return {"model": "claude-haiku-4-5-20251001", "max_tokens": 60, "stream": stream,
            "messages": messages, "tools": [TOOL],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True}}


def turn(http: httpx.Client, url: str, payload: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    resp = http.post(url + "/anthropic/v1/messages", json=payload)
    resp.raise_for_status()
    message = resp.json()
    assert message["stop_reason"] == "tool_use", message
    return time.perf_counter() - started, message


def streamed_turn(http: httpx.Client, url: str, payload: dict[str, Any]
                  ) -> tuple[float, float]:
    started = time.perf_counter()
    first_tool = None
    with http.stream("POST", url + "/anthropic/v1/messages", json=payload) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if first_tool is None and line.startswith("data:") and '"tool_use"' in line:
                first_tool = time.perf_counter() - started
    total = time.perf_counter() - started
    assert first_tool is not None, "no tool_use block in the stream"
    return first_tool, total


def tool_turns(turns: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        say("starting continuum serve with the embedded llama.cpp backend...")
        proc, url = start_router(Path(tmp))
        try:
            with httpx.Client(timeout=600) as http:
                turn(http, url, body("Vienna", False))  # warm-up
                plain = [turn(http, url, body(CITIES[i % 10], False)) for i in range(turns)]
                say(f"non-streamed turns: {[round(t, 2) for t, _ in plain]}")
                streams = [streamed_turn(http, url, body(CITIES[-1 - i % 10], True))
                           for i in range(turns)]
                say(f"streamed turns (tool_use start, end): {streams}")
                rounds = [round_trip(http, url, message) for _, message in plain[:turns]]
        finally:
            proc.terminate()
            proc.wait(30)
    return {"non_streamed_s": summary([t for t, _ in plain]),
            "streamed_first_tool_use_s": summary([f for f, _ in streams]),
            "streamed_total_s": summary([t for _, t in streams]),
            "tool_result_turn_s": summary(rounds),
            "output_tokens": summary([m["usage"]["output_tokens"] for _, m in plain])}


def round_trip(http: httpx.Client, url: str, first: dict[str, Any]) -> float:
    call = next(b for b in first["content"] if b["type"] == "tool_use")
    history = [{"role": "user", "content": "What is the weather there?"},
               {"role": "assistant", "content": first["content"]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                             "content": "rainy, 12 degrees"}]}]
    seconds, _ = turn(http, url, body("", False, history))
    return seconds


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "n": len(values)}


def first_run() -> dict[str, Any] | str:
    if not CLAUDE.exists() or shutil.which("unshare") is None:
        return "skipped: needs the pinned Claude Code (make claude-code) and unshare"
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"out": tmp, "claude_bin": str(CLAUDE)}))
        say("first run: continuum claude with a fresh HOME in a pseudo-terminal...")
        subprocess.run(["unshare", "-n", "--", sys.executable, "-m",
                        "tests.e2e.first_run_host", str(spec)], cwd=REPO, timeout=900,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
        result = json.loads((Path(tmp) / "result.json").read_text())
    if "error" in result:
        return f"failed: {result['error'][:300]}"
    return dict(result["seconds"])


def machine() -> dict[str, Any]:
    cores = physical_cores()
    return {"nproc": os.cpu_count(), "physical_cores": cores,
            "llama_threads": default_threads(cores),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-claude", action="store_true", help="skip the first-run part")
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": machine(), "tool_calls": tool_turns(args.turns)}
    report["first_run_s"] = "skipped (--no-claude)" if args.no_claude else first_run()
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {report['machine']}")
    for name, figures in report["tool_calls"].items():
        print(f"{name:28} {figures}")
    print(f"{'first run (s since start)':28} {report['first_run_s']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
