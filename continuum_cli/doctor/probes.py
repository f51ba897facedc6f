"""The I/O of doctor: HTTP probes (httpx), `claude --version`, embedded model file checks.

Like `upstream/`, this is a thin shell: it records what it saw as `HttpOutcome` values and
leaves every judgement to the pure functions in `checks.py` and `client.py`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Mapping
from typing import Any

import httpx

from continuum_cli.doctor.model import HttpOutcome

ANTHROPIC_VERSION = "2023-06-01"
CLAUDE_VERSION_TIMEOUT = 10.0


def _describe(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        # httpx says "All connection attempts failed" for a refused connection
        if "refused" in text.lower() or "all connection attempts failed" in text.lower():
            return "connection refused (nothing is listening there)"
        return text or "cannot connect"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (ValueError, json.JSONDecodeError):
        return resp.text[:300]


async def request(http: httpx.AsyncClient, method: str, url: str, *, timeout: float,
                  headers: Mapping[str, str] | None = None,
                  body: Mapping[str, Any] | None = None) -> HttpOutcome:
    started = time.perf_counter()
    try:
        resp = await http.request(method, url, headers=dict(headers or {}), timeout=timeout,
                                  json=dict(body) if body is not None else None)
    except httpx.HTTPError as exc:
        return HttpOutcome(error=_describe(exc, timeout))
    elapsed = (time.perf_counter() - started) * 1000
    return HttpOutcome(resp.status_code, _body(resp), elapsed_ms=elapsed)


def anthropic_headers(key: str) -> dict[str, str]:
    return {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION,
            "x-api-key": key}


async def claude_version(env: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(path of `claude` on PATH, its `--version` line, error) — any of them None."""
    path = shutil.which("claude", path=env.get("PATH"))
    if path is None:
        return None, None, None
    try:
        proc = await asyncio.create_subprocess_exec(
            path, "--version", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(env))
    except OSError as exc:
        return path, None, exc.strerror or str(exc)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CLAUDE_VERSION_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return path, None, f"no answer within {CLAUDE_VERSION_TIMEOUT:g} s"
    return _version_line(path, proc.returncode, out, err)


def _version_line(path: str, code: int | None, out: bytes, err: bytes
                  ) -> tuple[str, str | None, str | None]:
    lines = out.decode("utf-8", "replace").strip().splitlines()
    if code != 0 or not lines:
        detail = err.decode("utf-8", "replace").strip().splitlines()
        return path, None, f"exit {code}" + (f": {detail[-1][:120]}" if detail else "")
    return path, lines[0].strip(), None


async def router_health(url: str, timeout: float = 1.0, verify: Any = True) -> HttpOutcome:
    """GET {url}/health on a client of its own (for `continuum claude`'s start-up wait)."""
    async with httpx.AsyncClient(trust_env=False, verify=verify) as http:
        return await request(http, "GET", url + "/health", timeout=timeout)
