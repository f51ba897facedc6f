"""The `type: embedded` backend: llama.cpp's own server, run by continuum itself.

The server is llama.cpp's native `llama-server` code shipped in the `xllamacpp` wheel (the
optional extra `continuum[local]`, so the core zipapp stays small). It serves one GGUF file:
`model_path` when configured, otherwise SmolLM2-135M-Instruct (see `model_cache.py`).

The model is loaded in a child process (`embedded_child.py`) because `xllamacpp.Server()`
holds the GIL while loading: in-process, the router's event loop would stall and `/health`
could not report "loading". The child listens on 127.0.0.1 only and exits when its stdin
closes, so it never outlives the router. Seen from the router it is an ordinary llama.cpp
backend at `base_url` (profile "embedded" in `profiles.py`).
"""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from continuum_cli.backends.cpus import default_threads, physical_cores
from continuum_cli.backends.model_cache import (
    SMOLLM2,
    ModelSource,
    Progress,
    default_cache_dir,
    default_model_path,
    ensure_default_model,
    is_verified,
    report,
    sha256_file,
    verify_file,
)
from continuum_cli.config.models import Backend
from continuum_cli.errors import ConfigError, ContinuumError

__all__ = [
    "DEFAULT_MODEL_NAME", "SMOLLM2", "EmbeddedReport", "EmbeddedServer", "ModelSource",
    "default_cache_dir", "doctor_check", "embedded_available", "ensure_default_model",
    "resolve_model_path", "sha256_file",
]

log = logging.getLogger("continuum.embedded")

DEFAULT_MODEL_NAME = "smollm2-135m"
DEFAULT_CONTEXT_SIZE = 8192
LOAD_TIMEOUT = 600.0
STOP_GRACE = 5.0
_CHILD = "continuum_cli.backends.embedded_child"


def embedded_available() -> bool:
    """True when `xllamacpp` (the `continuum[local]` extra) can be imported."""
    return importlib.util.find_spec("xllamacpp") is not None


def resolve_model_path(
    backend: Backend, cache_dir: Path, progress: Progress | None = None
) -> Path:
    """The GGUF the backend serves: its `model_path`, else the default model."""
    if not backend.model_path:
        return ensure_default_model(cache_dir, progress)
    path = Path(backend.model_path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"embedded backend {backend.name!r}: model_path {path} is not a file",
            path=f"backends.{backend.name}.model_path",
            hint="point model_path at a .gguf file, or remove it to use the default model",
        )
    return path


def chat_template(backend: Backend) -> str | None:
    """The text of `chat_template_file`, or None to use the template inside the GGUF."""
    if not backend.chat_template_file:
        return None
    path = Path(backend.chat_template_file).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"embedded backend {backend.name!r}: chat_template_file {path} cannot be read "
            f"({getattr(exc, 'strerror', None) or exc})",
            path=f"backends.{backend.name}.chat_template_file",
            hint="point chat_template_file at a Jinja chat template, or remove it",
        ) from exc


def served_names(backend: Backend) -> list[str]:
    """Model names the server answers to: the backend's `models`, else the default name."""
    return list(backend.models) or [DEFAULT_MODEL_NAME]


def free_port() -> int:
    """A port that is free on 127.0.0.1 right now.

    Chosen before the child starts (not port 0) because llama.cpp listens before it loads the
    model and answers `/health` 503 meanwhile; knowing the port early lets the router forward
    early requests, which then get llama.cpp's 503 (mapped to a retryable 529)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_config(
    backend: Backend, model_path: Path, *, port: int = 0, verbosity: int = 1
) -> dict[str, object]:
    """Settings sent to the child process (on stdin, so the api_key never shows in `ps`)."""
    return {
        "model_path": str(model_path),
        "aliases": served_names(backend),
        "n_ctx": backend.context_size or DEFAULT_CONTEXT_SIZE,
        "threads": backend.threads or default_threads(physical_cores()),
        "api_key": backend.api_key or "",
        "chat_template": chat_template(backend),
        "host": "127.0.0.1",
        "port": port,
        "verbosity": verbosity,
    }


def _child_env() -> dict[str, str]:
    # The child must import what we import, also from a zipapp's unpacked site-packages.
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.exists(p)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class EmbeddedServer:
    """One llama.cpp server for one `type: embedded` backend. `start()` once, `stop()` once."""

    def __init__(
        self, backend: Backend, *, cache_dir: Path, progress: Progress | None = None
    ) -> None:
        self.backend = backend
        self.cache_dir = cache_dir
        self._progress = progress
        self._state = "loading"
        self._base_url: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.model_path: Path | None = None
        self.load_seconds: float | None = None
        self.error: str | None = None

    @property
    def state(self) -> str:
        """"loading" until the server answers, then "ready"; "failed" if it could not start
        or died."""
        return self._state

    @property
    def base_url(self) -> str | None:
        """OpenAI base URL `http://127.0.0.1:PORT/v1`; known as soon as the child is spawned
        (llama.cpp answers 503 there until `state` is "ready"), None before and after."""
        return self._base_url

    async def start(self) -> str:
        """Fetch the model if needed, spawn the server, wait until it serves; return base_url."""
        if not embedded_available():
            self._fail("xllamacpp is not installed")
            raise ConfigError(
                f"backend {self.backend.name!r} is `type: embedded` but xllamacpp is missing",
                hint="install the local extra: pip install 'continuum[local]'",
            )
        started = time.monotonic()
        try:
            self.model_path = await asyncio.to_thread(
                resolve_model_path, self.backend, self.cache_dir, self._progress)
            url = await self._spawn_and_wait(self.model_path)
        except BaseException as exc:
            self._fail(str(exc))
            self._base_url = None
            await self._kill()
            raise
        self.load_seconds = time.monotonic() - started
        self._base_url = url.rstrip("/") + "/v1"
        self._state = "ready"
        self._tasks.append(asyncio.create_task(self._watch()))
        report(self._progress, f"embedded backend {self.backend.name!r} ready in "
                f"{self.load_seconds:.1f}s at {self._base_url}")
        return self._base_url

    async def _spawn_and_wait(self, model_path: Path) -> str:
        port = free_port()
        cfg = child_config(self.backend, model_path, port=port, verbosity=self._verbosity())
        size_mb = model_path.stat().st_size / 1e6
        report(self._progress, f"loading {model_path.name} ({size_mb:.0f} MB, n_ctx "
                f"{cfg['n_ctx']}, {cfg['threads']} thread(s)) as {', '.join(cfg['aliases'])}")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", _CHILD, env=_child_env(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._base_url = f"http://127.0.0.1:{port}/v1"
        self._tasks.append(asyncio.create_task(self._drain_stderr()))
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write((json.dumps(cfg) + "\n").encode())
        await self._proc.stdin.drain()
        line = await asyncio.wait_for(self._proc.stdout.readline(), LOAD_TIMEOUT)
        return self._parse_ready(line)

    def _parse_ready(self, line: bytes) -> str:
        try:
            event = json.loads(line)
        except ValueError:
            event = {"event": "failed", "error": "the server process exited during load"}
        if event.get("event") != "ready":
            detail = " | ".join(list(self._stderr)[-5:])
            raise ContinuumError(
                f"embedded backend {self.backend.name!r} failed to load "
                f"{self.model_path}: {event.get('error')}" + (f" ({detail})" if detail else ""),
                hint="check that model_path is a GGUF file llama.cpp supports, and that "
                "context_size fits in memory",
            )
        log.debug("llama.cpp child loaded in %.2fs", event.get("seconds", 0.0))
        return str(event["url"])

    def _verbosity(self) -> int:
        return 3 if log.isEnabledFor(logging.DEBUG) else 1

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr.append(text)
            log.debug("llama.cpp: %s", text)

    async def _watch(self) -> None:
        assert self._proc is not None
        code = await self._proc.wait()
        if not self._stopping:
            self._fail(f"llama.cpp server exited unexpectedly (code {code})")
            log.error("embedded backend %r stopped (exit code %s): %s", self.backend.name,
                      code, " | ".join(list(self._stderr)[-5:]) or "no output")

    def _fail(self, message: str) -> None:
        self._state = "failed"
        self.error = message

    async def stop(self) -> None:
        """Close the child's stdin (it then exits), escalate to SIGTERM/SIGKILL if it hangs."""
        self._stopping = True
        await self._kill()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._base_url = None

    async def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        for signal_it in (None, proc.terminate, proc.kill):
            if signal_it is not None:
                signal_it()
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
                return
            except TimeoutError:
                continue


@dataclass
class EmbeddedReport:
    """What `continuum doctor` says about an embedded backend."""

    model_path: Path | None
    present: bool
    sha256_ok: bool | None  # None: a user file with no pinned hash
    load_seconds: float | None
    error: str | None = None


async def doctor_check(backend: Backend, cache_dir: Path, *, load: bool = True) -> EmbeddedReport:
    """Check the model file (present, sha256 of the default model) and, optionally, time a
    real load. Never downloads anything."""
    if backend.model_path:
        path, sha_ok = Path(backend.model_path).expanduser(), None
    else:
        path = default_model_path(cache_dir)
        sha_ok = path.is_file() and (is_verified(path, SMOLLM2.sha256)
                                     or await asyncio.to_thread(verify_file, path, SMOLLM2.sha256))
    report = EmbeddedReport(path, path.is_file(), sha_ok, None)
    if not report.present:
        report.error = "model file missing (it is fetched on the first `continuum serve`)"
    elif sha_ok is False:
        report.error = f"{path.name} does not match its pinned sha256; delete it to refetch"
    elif not embedded_available():
        report.error = "xllamacpp is not installed: pip install 'continuum[local]'"
    elif load and sha_ok is not False:
        await _time_load(backend, cache_dir, report)
    return report


async def _time_load(backend: Backend, cache_dir: Path, report: EmbeddedReport) -> None:
    server = EmbeddedServer(backend, cache_dir=cache_dir)
    try:
        await server.start()
        report.load_seconds = server.load_seconds
    except ContinuumError as exc:
        report.error = exc.message
    finally:
        await server.stop()
