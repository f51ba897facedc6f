"""Shared pieces of the gateway tests: a config, and the device flow driven over HTTP the way
a browser and Claude Code drive it (form posts with the page's CSRF cookie and field)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.fakes.scripted_backend import ScriptedBackend

ALICE_KEY = "sk-alice-0123456789abcdef"
BOB_KEY = "sk-bob-0123456789abcdef"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
UA = {"user-agent": "claude-code/2.1.332"}


def gateway_config(backend: ScriptedBackend, **gateway: Any) -> dict[str, Any]:
    model = backend.models[0]
    return {
        "backends": [{"name": "scripted", "type": "generic", "url": backend.url,
                      "models": list(backend.models)}],
        "model_aliases": {"haiku": model, "sonnet": model, "opus": model, "default": model},
        "api_keys": {"mode": "blocking", "keys": [
            {"key": ALICE_KEY, "name": "alice"}, {"key": BOB_KEY, "name": "bob"}]},
        "gateway": {"enabled": True, **gateway},
    }


def start_device(base: str) -> dict[str, Any]:
    answer = httpx.post(f"{base}/oauth/device_authorization", data={"surface": "claude_code"},
                        headers=UA)
    assert answer.status_code == 200, answer.text
    return answer.json()


def csrf_field(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def submit_page(base: str, user_code: str, api_key: str = ALICE_KEY,
                action: str = "approve", client: httpx.Client | None = None) -> httpx.Response:
    """GET the page (cookie + CSRF field), then POST the form, as a browser would."""
    own = client is None
    client = client or httpx.Client()
    try:
        page = client.get(f"{base}/device", params={"user_code": user_code})
        assert page.status_code == 200, page.text
        form = {"csrf": csrf_field(page.text), "user_code": user_code, "api_key": api_key,
                "action": action}
        return client.post(f"{base}/device", data=form)
    finally:
        if own:
            client.close()


def poll(base: str, device_code: str) -> httpx.Response:
    return httpx.post(f"{base}/oauth/token",
                      data={"grant_type": DEVICE_GRANT, "device_code": device_code},
                      headers=UA)


def sign_in(base: str, api_key: str = ALICE_KEY) -> dict[str, Any]:
    """The whole device flow; returns the token answer."""
    started = start_device(base)
    approved = submit_page(base, started["user_code"], api_key)
    assert approved.status_code == 200 and "Device connected" in approved.text, approved.text
    answer = poll(base, started["device_code"])
    assert answer.status_code == 200, answer.text
    return answer.json()


def refresh(base: str, refresh_token: str) -> httpx.Response:
    return httpx.post(f"{base}/oauth/token",
                      data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                      headers=UA)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
