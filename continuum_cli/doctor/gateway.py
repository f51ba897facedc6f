"""`continuum doctor`'s gateway checks: discovery answers with usable endpoints, the
transport is one Claude Code accepts (https, or http on loopback), and the certificate the
router presents is the configured one (its fingerprint is what people compare with Claude
Code's trust prompt). Verdicts are pure; `presented_fingerprint` is the one probe."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from urllib.parse import urlsplit

from continuum_cli.config.models import Settings
from continuum_cli.doctor.model import (
    CheckResult,
    HttpOutcome,
    failed,
    passed,
    skipped,
    warned,
)
from continuum_cli.gateway.claude_setup import is_loopback

_ENDPOINTS = ("device_authorization_endpoint", "token_endpoint")


def discovery(router: str, outcome: HttpOutcome) -> CheckResult:
    name = "gateway discovery"
    if not outcome.reached:
        return failed(name, f"{router}/anthropic/.well-known/oauth-authorization-server: "
                      f"{outcome.error_message()}", "start the router: continuum serve")
    body = outcome.body if isinstance(outcome.body, dict) else {}
    if outcome.status != 200 or not all(body.get(k) for k in _ENDPOINTS):
        return failed(name, f"discovery answered {outcome.status} without "
                      f"{' and '.join(_ENDPOINTS)}",
                      "restart the router with gateway.enabled: true (continuum serve)")
    origin = urlsplit(router).netloc
    foreign = [k for k in _ENDPOINTS if urlsplit(body[k]).netloc != origin]
    if foreign:
        return warned(name, f"{', '.join(foreign)} not on {origin}: Claude Code then uses "
                      "{base}/oauth/... instead", "set gateway.public_url to the URL people "
                      "use, or let the proxy pass Host / X-Forwarded-Host")
    return passed(name, f"/login URL: {router}/anthropic (token endpoint {body['token_endpoint']})")


def transport(settings: Settings) -> CheckResult:
    name = "gateway TLS"
    host = settings.server.host
    if settings.server.tls is not None:
        return passed(name, f"https with {settings.server.tls.cert}")
    if is_loopback(host):
        return passed(name, f"http on loopback ({host}): Claude Code accepts it from this "
                      "machine only")
    return failed(name, f"plain http on {settings.server.bind_address}: Claude Code "
                  "refuses http except on loopback, and tokens would cross the network "
                  "in clear text", "set server.tls: {cert: ..., key: ...}, or run "
                  "continuum serve --tls-self-signed")


def fingerprint_check(settings: Settings, presented: str | None) -> CheckResult:
    name = "gateway fingerprint"
    if settings.server.tls is None:
        return skipped(name, "no certificate: plain http")
    return _certificate(name, settings.server.tls.cert, presented)


def _certificate(name: str, cert: str, presented: str | None) -> CheckResult:
    from continuum_cli.errors import ConfigError
    from continuum_cli.tls import fingerprint

    try:
        configured = fingerprint(cert)
    except (OSError, ConfigError) as exc:
        return failed(name, f"cannot read server.tls.cert {cert}: {exc}",
                      "point server.tls.cert at the PEM certificate the router serves")
    if presented is not None and presented != configured:
        return failed(name, f"the router presents {presented}, not {configured} from {cert}",
                      "restart the router so it serves the configured certificate")
    seen = "presented by the router" if presented else "router not reached"
    return passed(name, f"SHA-256 {configured} ({seen}); Claude Code shows it on first "
                  "connect and pins it")


async def presented_fingerprint(router: str, timeout: float) -> str | None:
    """SHA-256 of the leaf certificate the router presents over https, or None."""
    parts = urlsplit(router)
    if parts.scheme != "https" or parts.hostname is None:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we only read the certificate, to compare it
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(
            parts.hostname, parts.port or 443, ssl=context), timeout)
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        return None
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return hashlib.sha256(der).hexdigest() if der else None
