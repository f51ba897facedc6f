"""What `continuum claude --gateway` writes into Claude Code's config folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from continuum_cli import tls
from continuum_cli.config.loader import validate
from continuum_cli.gateway import claude_setup


@pytest.mark.parametrize("base,fingerprint,expected", [
    ("http://127.0.0.1:8000/anthropic", None, ("127.0.0.1", "http-loopback")),
    ("http://localhost:8000/anthropic", None, ("localhost", "http-loopback")),
    ("http://10.0.0.5:8000/anthropic", None, None),
    ("https://gw.example.com/anthropic", "ab" * 32, ("gw.example.com", "ab" * 32)),
    ("https://gw.example.com/anthropic", None, None),
])
def test_trust_value(base: str, fingerprint: str | None,
                     expected: tuple[str, str] | None) -> None:
    assert claude_setup.trust_value(base, fingerprint) == expected


def _settings(**extra: object) -> object:
    return validate({"api_keys": {"mode": "blocking", "keys": [{"key": "k", "name": "a"}]},
                     "gateway": {"enabled": True}, **extra})


def test_gateway_base(tmp_path: Path) -> None:
    assert claude_setup.gateway_base(_settings(), "http://127.0.0.1:8000") == (
        "http://127.0.0.1:8000/anthropic", None)
    cert, key, _ = tls.self_signed(tmp_path, ["localhost"])
    secure = _settings(server={"tls": {"cert": str(cert), "key": str(key)}})
    assert claude_setup.gateway_base(secure, "https://127.0.0.1:8443") == (
        "https://localhost:8443/anthropic", tls.fingerprint(str(cert)))
    public = _settings(gateway={"enabled": True, "public_url": "https://gw.example.com/anthropic"})
    assert claude_setup.gateway_base(public, "http://127.0.0.1:8000") == (
        "https://gw.example.com/anthropic", None)


def test_apply_changes_only_its_entries(tmp_path: Path) -> None:
    folder = tmp_path / ".claude"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({"model": "opus", "env": {"A": "1"}}))
    (folder / "settings.json").chmod(0o640)
    (folder / ".credentials.json").write_text(json.dumps(
        {"gatewayTrust": {"other": "x"}, "claudeAiOauth": {"accessToken": "t"}}))
    (folder / ".credentials.json").chmod(0o600)
    env = {"HOME": str(tmp_path)}
    done = claude_setup.apply(env, "http://127.0.0.1:9/anthropic", None)
    assert [change for _, change in done] == [
        "forceLoginMethod = gateway", "forceLoginGatewayUrl = http://127.0.0.1:9/anthropic",
        "gatewayTrust[127.0.0.1] = http-loopback"]
    settings = json.loads((folder / "settings.json").read_text())
    assert settings == {"model": "opus", "env": {"A": "1"}, "forceLoginMethod": "gateway",
                        "forceLoginGatewayUrl": "http://127.0.0.1:9/anthropic"}
    assert (folder / "settings.json").stat().st_mode & 0o777 == 0o640
    credentials = json.loads((folder / ".credentials.json").read_text())
    assert credentials == {"gatewayTrust": {"other": "x", "127.0.0.1": "http-loopback"},
                           "claudeAiOauth": {"accessToken": "t"}}
    assert claude_setup.apply(env, "http://127.0.0.1:9/anthropic", None) == []  # idempotent


def test_apply_creates_private_files(tmp_path: Path) -> None:
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}
    claude_setup.apply(env, "http://127.0.0.1:9/anthropic", None)
    assert (tmp_path / "cfg" / ".credentials.json").stat().st_mode & 0o777 == 0o600
    assert os.path.exists(tmp_path / "cfg" / "settings.json")


def test_own_certificate_is_named_as_a_ca(tmp_path: Path) -> None:
    folder = tmp_path / ".claude"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({"env": {"KEEP": "1"}}))
    done = claude_setup.apply({"HOME": str(tmp_path)}, "https://localhost:8443/anthropic",
                              "ab" * 32, "/etc/continuum/cert.pem")
    assert ("env.NODE_EXTRA_CA_CERTS = /etc/continuum/cert.pem" in [c for _, c in done])
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["env"] == {"KEEP": "1", "NODE_EXTRA_CA_CERTS": "/etc/continuum/cert.pem"}
    credentials = json.loads((folder / ".credentials.json").read_text())
    assert credentials["gatewayTrust"] == {"localhost": "ab" * 32}
