"""The gateway's OAuth endpoints: discovery (RFC 8414), device authorization (RFC 8628
§3.1–3.2), token (device and refresh grants, §3.4–3.5 and RFC 6749 §6) and revocation
(RFC 7009). Unauthenticated; answered directly (the client follows no redirect here).

Requests are form-encoded; unknown parameters are ignored and nothing the client does not
send (client_id, scope) is required (RFC 6749 §3.2, RFC 8628 §3.1; Claude Code sends only
`surface=claude_code` to the device endpoint).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, quote

from continuum_cli.errors import OAuthError
from continuum_cli.gateway import bearer, guard, urls
from continuum_cli.gateway.store import Tokens
from continuum_cli.server.types import Request, Response, json_response
from continuum_cli.wire import json_text

log = logging.getLogger("continuum.gateway")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}  # RFC 6749 §5.1
_DEVICE_STARTS = (30, 600.0)  # device authorizations per client address per 10 minutes


def parse_form(body: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded -> first value of each name; lenient: a JSON
    object is read too (some clients send one), anything unreadable is an empty form."""
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        try:
            data = json_text.loads(text)  # bounded nesting; a deep text is an empty form
        except ValueError:
            data = None
        if isinstance(data, dict):
            return {str(k): v for k, v in data.items() if isinstance(v, str)}
    return dict(reversed(parse_qsl(text, keep_blank_values=True)))


def base_of(state: Any, request: Request) -> str:
    return urls.base_url(request.headers, request.scheme, state.settings.gateway.public_url)


async def discovery(state: Any, request: Request) -> Response:
    return json_response(200, urls.metadata(base_of(state, request)),
                         {"cache-control": "max-age=300"})


async def device_authorization(state: Any, request: Request) -> Response:
    form = parse_form(request.body)
    client = guard.client_ip(request.client, request.header("x-forwarded-for"),
                             state.settings.gateway.trusted_proxies)
    allowed, retry = await guard.allow(state.store, "device", client, *_DEVICE_STARTS)
    if not allowed:
        raise OAuthError("slow_down", "too many sign-ins started from this address; wait "
                         f"{retry}s", status=429, headers={"retry-after": str(retry)})
    meta = {"surface": form.get("surface") or None, "client": client,
            "user_agent": request.header("user-agent")[:200] or None}
    device_code, grant = await state.gateway.start_device(meta)
    base = base_of(state, request)
    body = {
        "device_code": device_code, "user_code": grant["user_code"],
        "verification_uri": f"{base}/device",
        "verification_uri_complete": f"{base}/device?user_code={quote(grant['user_code'])}",
        "expires_in": int(state.settings.gateway.device_code_ttl),
        "interval": int(grant["interval"]),
    }
    if state.settings.gateway.login_notice:
        body["login_notice"] = state.settings.gateway.login_notice
    log.info("gateway: sign-in started (user code %s, surface %s, from %s)",
             grant["user_code"], meta["surface"] or "-", client)
    return json_response(200, body, _NO_STORE)


def _token_body(tokens: Tokens, email: str | None = None) -> dict[str, Any]:
    body = {"access_token": tokens.access_token, "token_type": "Bearer",
            "expires_in": tokens.expires_in, "refresh_token": tokens.refresh_token}
    if email:  # the account that approved the code (protocol extension)
        body["email"] = email
    return body


_POLL_ERRORS = {
    "authorization_pending": "the code has not been approved yet; keep polling",
    "slow_down": "polling too fast; wait 5 more seconds between requests",
    "access_denied": "the sign-in was denied",
    "expired_token": "the code expired; start the sign-in again",
    "invalid_grant": "unknown or already used device code",
}


async def token(state: Any, request: Request) -> Response:
    form = parse_form(request.body)
    grant_type = form.get("grant_type", "")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type == DEVICE_GRANT:
        return await _device_grant(state, form)
    if grant_type == "refresh_token":
        return await _refresh_grant(state, form)
    raise OAuthError("unsupported_grant_type",
                     f"grant_type {grant_type[:80]!r} is not supported; use {DEVICE_GRANT} "
                     "or refresh_token")


async def _device_grant(state: Any, form: dict[str, str]) -> Response:
    device_code = form.get("device_code", "")
    if not device_code:
        raise OAuthError("invalid_request", "device_code is required")
    outcome, tokens = await state.gateway.poll(device_code)
    if tokens is None:
        raise OAuthError(outcome, _POLL_ERRORS[outcome], headers=_NO_STORE)
    key = bearer.key_by_name(tokens.key_name, state.api_keys)
    if key is None:
        await state.gateway.revoke_session(tokens.session)
        raise OAuthError("access_denied", "the key that approved this sign-in is no longer "
                         "enabled", headers=_NO_STORE)
    log.info("gateway: signed in as %s (session %s)", tokens.key_name, tokens.session)
    return json_response(200, _token_body(tokens, key.email), _NO_STORE)


async def _refresh_grant(state: Any, form: dict[str, str]) -> Response:
    refresh_token = form.get("refresh_token", "")
    if not refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required")
    tokens = await state.gateway.refresh(refresh_token)
    if tokens is not None and bearer.key_by_name(tokens.key_name, state.api_keys) is None:
        await state.gateway.revoke_session(tokens.session)
        tokens = None
    if tokens is None:
        # 401 invalid_grant sends the person back through /login (gateway protocol, "Token")
        raise OAuthError("invalid_grant", "the refresh token is expired, revoked or unknown; "
                         "sign in again", status=401, headers=_NO_STORE)
    return json_response(200, _token_body(tokens), _NO_STORE)


async def revoke(state: Any, request: Request) -> Response:
    form = parse_form(request.body)
    presented = form.get("token", "")
    if not presented:
        raise OAuthError("invalid_request", "token is required")
    # RFC 7009 §2.2: an unknown or already revoked token is answered 200 as well
    if await state.gateway.revoke(presented):
        log.info("gateway: sign-in revoked by its client")
    return Response(200, b"", "text/plain", dict(_NO_STORE))
