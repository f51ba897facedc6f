"""A sample of the generated requests, valid and mutated, through the live router (real
sockets, the scripted backend behind it): never a 5xx, never a traceback, always the
route's envelope."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend
from tests.property.conftest import examples
from tests.property.strategies import json_values, mutate, requests
from tests.router import RouterThread, settings_for

ANTHROPIC_ROUTES = ("/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens",
                    "/v1/messages")


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[RouterThread, httpx.Client]]:
    with ScriptedBackend() as backend:
        router = RouterThread(settings_for(basic_config(backend))).start()
        try:
            with httpx.Client(base_url=router.url, timeout=60) as client:
                yield router, client
        finally:
            router.stop()


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.seen.append(record.getMessage())


@pytest.fixture(scope="module")
def tracebacks() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    logger = logging.getLogger("continuum")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _check_anthropic(resp: httpx.Response) -> None:
    assert resp.status_code < 500, resp.text[:2000]
    if resp.status_code != 200:
        body = resp.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error" \
            or resp.status_code == 404 and body["error"]["type"] == "not_found_error", body
        assert body["error"]["message"]
    elif resp.headers["content-type"].startswith("text/event-stream"):
        assert "event: error" not in resp.text and "event: message_stop" in resp.text
    else:
        answer = resp.json()
        assert answer.get("type") == "message" or answer.get("input_tokens", 0) >= 1, answer


@settings(max_examples=examples(40))
@given(requests, st.randoms(use_true_random=False), st.sampled_from(ANTHROPIC_ROUTES))
def test_generated_requests_through_the_router(live: tuple[RouterThread, httpx.Client],
                                               tracebacks: _Tracebacks, body: dict[str, Any],
                                               rng: random.Random, path: str) -> None:
    _, client = live
    for sent in (body, mutate(body, rng), mutate(body, rng)):
        note(json.dumps(sent)[:3000])
        _check_anthropic(client.post(path, content=json.dumps(sent)))
    assert tracebacks.seen == []


@settings(max_examples=examples(40))
@given(json_values, st.sampled_from(ANTHROPIC_ROUTES + ("/v1/chat/completions",)))
def test_any_json_body(live: tuple[RouterThread, httpx.Client], tracebacks: _Tracebacks,
                       body: Any, path: str) -> None:
    _, client = live
    resp = client.post(path, content=json.dumps(body))
    assert resp.status_code < 500, resp.text[:2000]
    if path == "/v1/chat/completions":
        assert resp.status_code == 200 or resp.json()["error"]["message"]
    else:
        _check_anthropic(resp)
    assert tracebacks.seen == []
