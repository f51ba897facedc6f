"""`continuum doctor`'s gateway checks, against a running router (plain http on loopback,
and https with the self-signed certificate), and the pure verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from continuum_cli import tls
from continuum_cli.config.loader import validate
from continuum_cli.doctor import gateway as doctor_gateway
from continuum_cli.doctor.model import HttpOutcome
from tests.fakes.scripted_backend import ScriptedBackend
from tests.gateway.helpers import ALICE_KEY, gateway_config
from tests.router import RouterThread

Factory = Callable[..., RouterThread]


def _doctor(config: dict[str, Any], router: RouterThread, path: Path) -> dict[str, Any]:
    path.write_text(yaml.safe_dump({**config, "server": {
        **config.get("server", {}), "bind_address": f"127.0.0.1:{router.port}"}}))
    env = {**os.environ, "ANTHROPIC_API_KEY": ALICE_KEY,
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-m", "continuum_cli", "doctor", "--json",
                           "--offline", "--config", str(path)], capture_output=True, text=True,
                          env=env, timeout=90)
    report: dict[str, Any] = json.loads(done.stdout)
    return {c["name"]: c for c in report["checks"]}


def test_doctor_on_a_loopback_gateway(scripted: ScriptedBackend, router_factory: Factory,
                                      tmp_path: Path) -> None:
    config = gateway_config(scripted)
    router = router_factory(config)
    checks = _doctor(config, router, tmp_path / "config.yaml")
    assert checks["gateway discovery"]["status"] == "pass"
    assert f"{router.url}/anthropic" in checks["gateway discovery"]["evidence"]
    assert checks["gateway TLS"]["status"] == "pass"
    assert "loopback" in checks["gateway TLS"]["evidence"]
    assert checks["gateway fingerprint"]["status"] == "skip"


def test_doctor_shows_the_fingerprint_over_https(scripted: ScriptedBackend,
                                                 router_factory: Factory,
                                                 tmp_path: Path) -> None:
    cert, key, _ = tls.self_signed(tmp_path, ["localhost", "127.0.0.1"])
    config = gateway_config(scripted)
    config["server"] = {"tls": {"cert": str(cert), "key": str(key)}}
    router = router_factory(config)
    checks = _doctor(config, router, tmp_path / "config.yaml")
    assert checks["gateway discovery"]["status"] == "pass", checks["gateway discovery"]
    assert "https://127.0.0.1" in checks["gateway discovery"]["evidence"]
    assert checks["gateway TLS"]["status"] == "pass"
    evidence = checks["gateway fingerprint"]["evidence"]
    assert checks["gateway fingerprint"]["status"] == "pass"
    assert tls.fingerprint(str(cert)) in evidence
    assert "presented by the router" in evidence
    assert checks["router"]["status"] == "pass"  # doctor trusts the router's own certificate


def test_doctor_gateway_silent_when_disabled(router: RouterThread, tmp_path: Path,
                                             scripted: ScriptedBackend) -> None:
    config = {"backends": [{"name": "s", "url": scripted.url, "models": list(scripted.models)}]}
    checks = _doctor(config, router, tmp_path / "config.yaml")
    assert not [name for name in checks if name.startswith("gateway")]


def _settings(**server: Any) -> Any:
    return validate({"server": server, "api_keys": {"mode": "blocking", "keys": [
        {"key": "k", "name": "a"}]}, "gateway": {"enabled": True}})


def test_transport_verdicts(tmp_path: Path) -> None:
    assert doctor_gateway.transport(_settings(bind_address="0.0.0.0:8000")).status == "fail"
    assert doctor_gateway.transport(_settings(bind_address="[::1]:8000")).status == "pass"
    cert, key, _ = tls.self_signed(tmp_path, ["localhost"])
    secure = _settings(bind_address="0.0.0.0:8443", tls={"cert": str(cert), "key": str(key)})
    assert doctor_gateway.transport(secure).status == "pass"
    check = doctor_gateway.fingerprint_check
    assert check(secure, tls.fingerprint(str(cert))).status == "pass"
    wrong = check(secure, "0" * 64)
    assert wrong.status == "fail" and "restart" in (wrong.fix or "")


def test_discovery_verdicts() -> None:
    ok = {"device_authorization_endpoint": "http://a:1/anthropic/oauth/device_authorization",
          "token_endpoint": "http://a:1/anthropic/oauth/token"}
    assert doctor_gateway.discovery("http://a:1", HttpOutcome(200, ok)).status == "pass"
    assert doctor_gateway.discovery("http://b:2", HttpOutcome(200, ok)).status == "warn"
    assert doctor_gateway.discovery("http://a:1", HttpOutcome(404, {})).status == "fail"
    assert doctor_gateway.discovery("http://a:1", HttpOutcome(error="refused")).status == "fail"
