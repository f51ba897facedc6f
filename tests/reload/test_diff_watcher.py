"""Pure parts of hot reload: what needs a restart, backend changes, the file fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from continuum_cli.config.loader import validate
from continuum_cli.reload.diff import backend_changes, keep_running, restart_needed, summary
from continuum_cli.reload.watcher import Fingerprint

BASE = {"backends": [{"name": "a", "url": "http://a"}, {"name": "b", "url": "http://b"}],
        "model_aliases": {"sonnet": "m"}}


def settings(**over):
    return validate({**BASE, **over})


@pytest.mark.parametrize(("over", "named"), [
    ({}, []),
    ({"server": {"bind_address": "0.0.0.0:9000"}}, ["server.bind_address"]),
    ({"server": {"ping_interval": "2s", "max_body_bytes": "1MiB"}}, []),
    ({"logging": {"format": "json"}}, ["logging.format"]),
    ({"logging": {"level": "debug"}}, []),
    ({"model_aliases": {"sonnet": "other"}}, []),
    ({"backends": [{"name": "e", "type": "embedded"}]}, ["backends[e] (embedded)"]),
])
def test_restart_needed(over, named) -> None:
    assert restart_needed(settings(), settings(**over)) == named


def test_keep_running_keeps_the_old_value_of_restart_only_settings() -> None:
    new = settings(server={"bind_address": "0.0.0.0:9000", "ping_interval": "2s"})
    kept = keep_running(settings(), new)
    assert kept.server.bind_address == "127.0.0.1:8000"
    assert kept.server.ping_interval == 2.0


def test_backend_changes() -> None:
    new = settings(backends=[{"name": "a", "url": "http://a2"}, {"name": "c", "url": "http://c"}])
    changes = backend_changes(settings(), new)
    assert [b.name for b in changes.added] == ["c"]
    assert [b.name for b in changes.removed] == ["b"]
    assert [b.name for b in changes.changed] == ["a"]
    assert [b.name for b in changes.to_check] == ["c", "a"]


def test_summary() -> None:
    assert summary(settings()) == "2 backends, 1 aliases"


def test_fingerprint_sees_content_changes_only(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    fp = Fingerprint()
    assert fp.changed([path]) is False  # the first look is the baseline
    os.utime(path, ns=(1, 1))
    assert fp.changed([path]) is False  # touched, same bytes
    path.write_text("a: 2\n")
    os.utime(path, ns=(2, 2))
    assert fp.changed([path]) is True
    assert fp.changed([path]) is False
    tmp = tmp_path / "new.yaml"
    tmp.write_text("a: 3\n")
    tmp.replace(path)  # saved by rename: a new inode
    assert fp.changed([path]) is True
    path.unlink()
    assert fp.changed([path]) is True  # gone is a change (the reload then says why)
    path.write_text("a: 3\n")
    assert fp.changed([path]) is True
