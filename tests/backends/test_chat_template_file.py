"""`chat_template_file` (embedded): its text goes to the llama.cpp child; a bad path is a
config error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuum_cli.backends.embedded import child_config
from continuum_cli.config.models import Backend
from continuum_cli.errors import ConfigError


def backend(**extra: str) -> Backend:
    return Backend(name="local", type="embedded", **extra)


def test_the_template_text_is_sent_to_the_child(tmp_path: Path) -> None:
    template = tmp_path / "t.jinja"
    template.write_text("{{ messages[0].content }}")
    cfg = child_config(backend(chat_template_file=str(template)), tmp_path / "m.gguf")
    assert cfg["chat_template"] == "{{ messages[0].content }}"


def test_without_it_the_gguf_template_is_used(tmp_path: Path) -> None:
    assert child_config(backend(), tmp_path / "m.gguf")["chat_template"] is None


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        child_config(backend(chat_template_file=str(tmp_path / "nope.jinja")), tmp_path / "m")
    assert caught.value.path == "backends.local.chat_template_file"
    assert "cannot be read" in caught.value.message
