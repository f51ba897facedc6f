"""Run one Claude Code scenario inside a loopback-only network namespace.

Usage (the test harness does this): `unshare -n -- python netns_driver.py SPEC.json`

Everything of one scenario runs in the namespace this process is in: it brings `lo` up,
starts the services listed in the spec (router, backends, search-provider fake, TLS page) as
subprocesses, waits until each answers, runs `claude`, then stops the services. Nothing can
leave the machine: the namespace has no interface but loopback. Ports are fixed per scenario
because the namespace is private (no other process can hold them).

Spec (JSON):
    {"out": DIR,
     "services": [{"name", "argv", "env"?, "port", "ready_path"?, "ready_timeout"?}],
     "claude": {"argv", "env", "cwd", "timeout"}}
Writes into DIR: `<service>.log` (stdout+stderr of each service), `claude.stdout`,
`claude.stderr`, and `driver.json` (`{"claude_rc", "services": {name: {"rc"}}, "error"?}`).
Only the standard library is used, so any Python can run it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def bring_up_loopback() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def start_service(spec: dict[str, Any], out: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(spec.get("env", {}))
    log = (out / f"{spec['name']}.log").open("wb")
    return subprocess.Popen(spec["argv"], stdout=log, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.PIPE, cwd=spec.get("cwd"))


def _answers(port: int, path: str | None) -> bool:
    if path is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(spec: dict[str, Any], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + float(spec.get("ready_timeout", 120))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service {spec['name']} exited with {proc.returncode} at start")
        if _answers(int(spec["port"]), spec.get("ready_path")):
            return
        time.sleep(0.1)
    raise RuntimeError(f"service {spec['name']} not ready on port {spec['port']}")


def run_claude(spec: dict[str, Any], out: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(spec["env"])
    Path(spec["cwd"]).mkdir(parents=True, exist_ok=True)
    with (out / "claude.stdout").open("wb") as so, (out / "claude.stderr").open("wb") as se:
        try:
            return subprocess.run(spec["argv"], stdout=so, stderr=se, env=env, cwd=spec["cwd"],
                                  stdin=subprocess.DEVNULL, timeout=spec["timeout"]).returncode
        except subprocess.TimeoutExpired:
            return -1


def stop(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, dict[str, Any]]:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    status = {}
    for name, proc in procs.items():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        status[name] = {"rc": proc.returncode}
    return status


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"claude_rc": None}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        bring_up_loopback()
        for service in spec["services"]:
            procs[service["name"]] = start_service(service, out)
            wait_ready(service, procs[service["name"]])
        result["claude_rc"] = run_claude(spec["claude"], out)
    except Exception as exc:  # noqa: BLE001 - reported to the test through driver.json
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        result["services"] = stop(procs)
        (out / "driver.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
