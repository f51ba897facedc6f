"""`GET/POST {base}/device`: the browser-facing verification page (RFC 8628 §3.3).

A person checks the user code and proves who they are with their continuum API key; the
device grant is then approved for that key, and the next token poll gets tokens carrying the
key's name (and so its limits and budgets). Every POST counts against a per-address attempt
limit (§5.1); a CSRF token guards the form; a wrong code says only that it is wrong (§5.2).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from continuum_cli import auth
from continuum_cli.gateway import codes, csrf, guard, page, urls
from continuum_cli.gateway.oauth import parse_form
from continuum_cli.server.types import Request, Response

log = logging.getLogger("continuum.gateway")
ATTEMPTS = (10, 300.0)  # POSTs per client address per 5 minutes
_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
_MESSAGES = {
    "bad_code": "That is not a valid code. Codes look like WDJB-MJHT.",
    "unknown": "That code is not valid or has expired. Check the code in your terminal, or "
               "start the sign-in again.",
    "expired": "That code has expired. Start the sign-in again in your terminal.",
    "already_decided": "That code was already used.",
    "bad_key": "That API key is not accepted. Use an enabled key from your team's api_keys.",
    "csrf": "The form expired. It has been reloaded: submit it again.",
}


async def _secret(state: Any) -> bytes:
    return await guard.shared_secret(state.store, "csrf")


async def _html(state: Any, request: Request, status: int, body_of: Any) -> Response:
    headers = dict(_HEADERS)
    token = csrf.issue(await _secret(state))
    headers["set-cookie"] = csrf.set_cookie(token, secure=request.scheme == "https")
    return Response(status, body_of(token), "text/html; charset=utf-8", headers)


def _action(state: Any, request: Request) -> str:
    """Where the form posts: this page's own path, as the browser sees it."""
    from urllib.parse import urlsplit

    base = urls.base_url(request.headers, request.scheme, state.settings.gateway.public_url)
    return urlsplit(base).path + "/device"


async def show(state: Any, request: Request) -> Response:
    prefill = parse_qs(request.query).get("user_code", [""])[0][:20]
    notice, action = state.settings.gateway.login_notice, _action(state, request)
    return await _html(state, request, 200,
                       lambda t: page.form(t, prefill, notice=notice, action=action))


async def submit(state: Any, request: Request) -> Response:
    client = guard.client_ip(request.client, request.header("x-forwarded-for"),
                             state.settings.gateway.trusted_proxies)
    allowed, retry = await guard.allow(state.store, "device_page", client, *ATTEMPTS)
    if not allowed:
        log.warning("gateway: verification attempts from %s blocked for %ds", client, retry)
        headers = {**_HEADERS, "retry-after": str(retry)}
        return Response(429, page.blocked(retry), "text/html; charset=utf-8", headers)
    form = parse_form(request.body)
    typed = form.get("user_code", "")[:40]
    cookie = csrf.cookie_value(request.header("cookie"))
    if not csrf.valid(await _secret(state), cookie, form.get("csrf")):
        return await _again(state, request, typed, "csrf", 403)
    user_code = codes.normalize_user_code(typed)
    if user_code is None:
        return await _again(state, request, typed, "bad_code")
    if form.get("action") == "deny":
        return await _decide(state, request, user_code, None, typed)
    key = auth.find_key(form.get("api_key", "").strip(), state.api_keys) \
        if form.get("api_key", "").strip() else None
    if key is None:
        return await _again(state, request, typed, "bad_key", 401)
    return await _decide(state, request, user_code, key.name, typed)


async def _decide(state: Any, request: Request, user_code: str, key_name: str | None,
                  typed: str) -> Response:
    outcome = await state.gateway.decide(user_code, key_name is not None, key_name, "page")
    if outcome not in ("approved", "denied"):
        return await _again(state, request, typed, outcome)
    log.info("gateway: code %s %s on the verification page%s", user_code, outcome,
             f" for key {key_name}" if key_name else "")
    body = page.result(outcome == "approved", key_name)
    return Response(200, body, "text/html; charset=utf-8", dict(_HEADERS))


async def _again(state: Any, request: Request, typed: str, reason: str,
                 status: int = 400) -> Response:
    message = _MESSAGES[reason]
    notice, action = state.settings.gateway.login_notice, _action(state, request)
    return await _html(state, request, status,
                       lambda t: page.form(t, typed, error=message, notice=notice,
                                           action=action))
