"""CSRF tokens for the verification page: signed double-submit cookies (OWASP CSRF
Prevention Cheat Sheet, "Signed Double-Submit Cookie").

The page sets a cookie and puts the same value in the form; a POST is accepted only when the
two are equal and the value carries a valid HMAC under the gateway's secret. The secret lives
in the state store, so a form served by one replica is accepted by another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "continuum_csrf"


def issue(secret: bytes, nonce: str | None = None) -> str:
    nonce = nonce or secrets.token_urlsafe(18)
    return f"{nonce}.{_sign(secret, nonce)}"


def _sign(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def valid(secret: bytes, cookie: str | None, field: str | None) -> bool:
    if not cookie or not field or not hmac.compare_digest(cookie.encode(), field.encode()):
        return False
    nonce, _, signature = field.partition(".")
    return bool(nonce) and hmac.compare_digest(signature.encode(), _sign(secret, nonce).encode())


def cookie_value(cookie_header: str) -> str | None:
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def set_cookie(token: str, secure: bool) -> str:
    # Strict: a cross-site form post never carries it; HttpOnly: scripts never read it
    flags = "; Secure" if secure else ""
    return f"{COOKIE}={token}; Path=/anthropic/device; HttpOnly; SameSite=Strict{flags}"
