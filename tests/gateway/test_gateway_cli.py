"""`continuum gateway approve` and `continuum gateway tokens list|revoke`, run as real
commands against the state store a running router uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.scripted_backend import ScriptedBackend
from tests.gateway.helpers import ALICE_KEY, bearer, gateway_config, poll, sign_in, start_device
from tests.router import RouterThread

Factory = Callable[..., RouterThread]
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]}


def _setup(scripted: ScriptedBackend, router_factory: Factory, tmp_path: Path
           ) -> tuple[RouterThread, Path]:
    config = gateway_config(scripted)
    config["state"] = {"path": str(tmp_path / "state.db")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return router_factory(config), path


def continuum(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "continuum_cli", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_approve_from_the_terminal(scripted: ScriptedBackend, router_factory: Factory,
                                   tmp_path: Path) -> None:
    router, config = _setup(scripted, router_factory, tmp_path)
    started = start_device(router.anthropic_url)
    typed = started["user_code"].lower().replace("-", " ")  # as a person might type it
    done = continuum("gateway", "approve", typed, "--key-name", "bob", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert f"approved {started['user_code']} as bob" in done.stdout
    tokens = poll(router.anthropic_url, started["device_code"])
    assert tokens.status_code == 200
    again = continuum("gateway", "approve", started["user_code"], "--key-name", "bob",
                      "--config", str(config))
    assert again.returncode == 1 and "no pending sign-in" in again.stderr


def test_approve_refuses_unknown_keys_and_codes(scripted: ScriptedBackend,
                                                router_factory: Factory,
                                                tmp_path: Path) -> None:
    router, config = _setup(scripted, router_factory, tmp_path)
    started = start_device(router.anthropic_url)
    nokey = continuum("gateway", "approve", started["user_code"], "--key-name", "mallory",
                      "--config", str(config))
    assert nokey.returncode == 2 and "mallory" in nokey.stderr and "alice" in nokey.stderr
    nocode = continuum("gateway", "approve", "BCDF-GHJK", "--key-name", "alice",
                       "--config", str(config))
    assert nocode.returncode == 1 and "no pending sign-in" in nocode.stderr
    assert poll(router.anthropic_url, started["device_code"]).json()["error"] == \
        "authorization_pending"
    denied = continuum("gateway", "approve", started["user_code"], "--key-name", "alice",
                       "--deny", "--config", str(config))
    assert denied.returncode == 0
    assert poll(router.anthropic_url, started["device_code"]).json()["error"] == "access_denied"


def test_tokens_list_and_revoke(scripted: ScriptedBackend, router_factory: Factory,
                                tmp_path: Path) -> None:
    router, config = _setup(scripted, router_factory, tmp_path)
    alice = sign_in(router.anthropic_url)
    listed = continuum("gateway", "tokens", "list", "--json", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    assert [r["key_name"] for r in rows] == ["alice"]
    assert rows[0]["approved_via"] == "page" and rows[0]["client"] == "127.0.0.1"
    assert alice["access_token"] not in listed.stdout and ALICE_KEY not in listed.stdout
    table = continuum("gateway", "tokens", "list", "--config", str(config))
    assert "alice" in table.stdout and rows[0]["id"] in table.stdout
    url = f"{router.anthropic_url}/v1/messages"
    assert httpx.post(url, json=BODY, headers=bearer(alice["access_token"])).status_code == 200
    revoked = continuum("gateway", "tokens", "revoke", rows[0]["id"], "--config", str(config))
    assert revoked.returncode == 0 and "revoked 1" in revoked.stdout
    after = httpx.post(url, json=BODY, headers=bearer(alice["access_token"]))
    assert after.status_code == 401 and after.headers["x-should-retry"] == "false"
    assert json.loads(continuum("gateway", "tokens", "list", "--json", "--config",
                                str(config)).stdout) == []
    bob = sign_in(router.anthropic_url, api_key="sk-bob-0123456789abcdef")
    by_key = continuum("gateway", "tokens", "revoke", "--key-name", "bob", "--config",
                       str(config))
    assert "revoked 1" in by_key.stdout
    assert httpx.post(url, json=BODY, headers=bearer(bob["access_token"])).status_code == 401
    unknown = continuum("gateway", "tokens", "revoke", "gws_nope", "--config", str(config))
    assert unknown.returncode == 1


def test_check_summarises_the_gateway(scripted: ScriptedBackend, tmp_path: Path) -> None:
    config = gateway_config(scripted, managed_settings={"env": {"A": "1"}},
                            models=[{"id": "claude-sonnet-4-5"}, {"id": "claude-nowhere-1"}])
    config["model_aliases"] = {"claude-sonnet-4-5": scripted.models[0]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = continuum("check", "--json", "--config", str(path))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["gateway"]["enabled"] is True and data["tls"] is None
    assert data["gateway"]["managed_settings"].startswith("sha256:")
    assert data["gateway"]["models"] == ["claude-sonnet-4-5", "claude-nowhere-1"]
    assert any("claude-nowhere-1" in w for w in data["warnings"])
    shown = continuum("check", "--config", str(path))
    assert "gateway: enabled (http; managed settings sha256:" in shown.stdout


def test_gateway_needs_blocking_keys(tmp_path: Path, scripted: ScriptedBackend) -> None:
    config = gateway_config(scripted)
    config["api_keys"]["mode"] = "permissive"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = continuum("check", "--config", str(path))
    assert done.returncode == 2 and "api_keys.mode: blocking" in done.stderr
