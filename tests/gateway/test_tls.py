"""TLS: the self-signed certificate (made once, kept, fingerprinted as Claude Code pins it),
HTTPS on the same server, discovery with https URLs, and `continuum serve --tls-self-signed`."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from continuum_cli import tls
from tests.fakes.scripted_backend import ScriptedBackend
from tests.gateway.helpers import gateway_config, sign_in
from tests.router import RouterThread

Factory = Callable[..., RouterThread]


def test_self_signed_is_made_once_and_fingerprinted(tmp_path: Path) -> None:
    cert, key, created = tls.self_signed(tmp_path, ["localhost", "127.0.0.1", "gw.test"])
    assert created and (key.stat().st_mode & 0o777) == 0o600
    again = tls.self_signed(tmp_path, ["localhost", "127.0.0.1"])
    assert again == (cert, key, False)  # kept while it covers the names
    openssl = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint",
                              "-sha256", "-ext", "subjectAltName"], capture_output=True,
                             text=True, check=True)
    shown = openssl.stdout.split("=", 1)[1].split()[0]
    assert tls.fingerprint(str(cert)) == shown.replace(":", "").lower()
    assert tls.colon_fingerprint(tls.fingerprint(str(cert))) == shown
    assert "DNS:gw.test" in openssl.stdout and "IP Address:127.0.0.1" in openssl.stdout
    assert tls.self_signed(tmp_path, ["other.test"])[2] is True  # a new name: made again


def test_https_listener_and_https_discovery(scripted: ScriptedBackend, router_factory: Factory,
                                            tmp_path: Path) -> None:
    cert, key, _ = tls.self_signed(tmp_path, ["localhost", "127.0.0.1"])
    config = gateway_config(scripted)
    config["server"] = {"tls": {"cert": str(cert), "key": str(key)}}
    router = router_factory(config)
    base = f"https://127.0.0.1:{router.port}/anthropic"
    context = ssl.create_default_context(cafile=str(cert))
    answer = httpx.get(f"{base}/.well-known/oauth-authorization-server", verify=context)
    assert answer.status_code == 200
    assert answer.json()["token_endpoint"] == f"{base}/oauth/token"
    with socket.create_connection(("127.0.0.1", router.port)) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
            presented = wrapped.getpeercert(binary_form=True)
    assert hashlib.sha256(presented).hexdigest() == tls.fingerprint(str(cert))
    # the verification page's cookie is Secure over https
    page = httpx.get(f"{base}/device", verify=context)
    assert "Secure" in page.headers["set-cookie"]


def test_bad_certificate_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("not a certificate")
    with pytest.raises(Exception, match="cannot load certificate"):
        tls.server_context(str(tmp_path / "c.pem"), str(tmp_path / "c.pem"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(args: list[str], env: dict[str, str], stderr: int = subprocess.STDOUT
           ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "continuum_cli", "serve", *args],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


def _wait_for(proc: subprocess.Popen[str], pattern: str, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError("".join(lines))


def test_serve_tls_self_signed_prints_the_fingerprint(scripted: ScriptedBackend,
                                                      tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**gateway_config(scripted),
                                      "server": {"bind_address": f"127.0.0.1:{port}"}}))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "COLUMNS": "300", "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = _serve(["--config", str(config), "--tls-self-signed"], env)
    try:
        lines = _wait_for(proc, "continuum listening on")
    finally:
        proc.terminate()
        proc.wait(20)
    text = "".join(lines)
    printed = re.search(r"fingerprint: ([0-9a-f]{64})", text)
    assert printed, text
    cert = tmp_path / "data" / "continuum" / "tls" / "cert.pem"
    assert printed.group(1) == tls.fingerprint(str(cert))
    assert f"https://127.0.0.1:{port}" in text
    # the same certificate next time: the pin in Claude Code stays valid
    proc = _serve(["--config", str(config), "--tls-self-signed"], env)
    try:
        again = "".join(_wait_for(proc, "continuum listening on"))
    finally:
        proc.terminate()
        proc.wait(20)
    assert printed.group(1) in again and "using self-signed certificate" in again
    # stdout alone carries it too
    proc = _serve(["--config", str(config), "--tls-self-signed"], env,
                  stderr=subprocess.DEVNULL)
    try:
        alone = "".join(_wait_for(proc, "fingerprint"))
    finally:
        proc.terminate()
        proc.wait(20)
    assert f"TLS certificate SHA-256 fingerprint: {printed.group(1)}" in alone


def test_plain_http_gateway_on_a_network_address_warns(scripted: ScriptedBackend,
                                                       tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**gateway_config(scripted),
                                      "server": {"bind_address": f"0.0.0.0:{_free_port()}"}}))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "COLUMNS": "300"}
    proc = _serve(["--config", str(config)], env)
    try:
        text = "".join(_wait_for(proc, "continuum listening on"))
    finally:
        proc.terminate()
        proc.wait(20)
    assert "gateway enabled on plain http" in text and "server.tls" in text


def test_signed_in_over_https(scripted: ScriptedBackend, router_factory: Factory,
                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key, _ = tls.self_signed(tmp_path, ["localhost", "127.0.0.1"])
    config = gateway_config(scripted)
    config["server"] = {"tls": {"cert": str(cert), "key": str(key)}}
    router = router_factory(config)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tokens = sign_in(f"https://127.0.0.1:{router.port}/anthropic")
    assert tokens["access_token"].startswith("cgw_at_")
