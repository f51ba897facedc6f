"""Per-key limits and budgets through the real router, with the anthropic and openai SDKs
reading the raw response headers."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend, Text, usage

ALICE, BOB = "sk-alice-0123456789", "sk-bob-0123456789"


def keyed(scripted: ScriptedBackend, tmp_path: Path, alice: dict[str, Any],
          **extra: Any) -> dict[str, Any]:
    keys = [{"key": ALICE, "name": "alice", **alice}, {"key": BOB, "name": "bob"}]
    config = basic_config(scripted, api_keys={"mode": "blocking", "keys": keys},
                          state={"path": str(tmp_path / "state.db"), "timeout": "5s"})
    config.update(extra)
    return config


def client(router, key: str = ALICE) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.anthropic_url, api_key=key, max_retries=0)


def ask(c: anthropic.Anthropic, stream: bool = False, max_tokens: int = 64) -> Any:
    kwargs = dict(model="sonnet", max_tokens=max_tokens,
                  messages=[{"role": "user", "content": "hi"}])
    if stream:
        with c.messages.with_streaming_response.create(stream=True, **kwargs) as raw:
            for _ in raw.iter_lines():
                pass
            return raw
    return c.messages.with_raw_response.create(**kwargs)


def test_requests_per_minute_headers_then_429(scripted, router_factory, tmp_path) -> None:
    router = router_factory(keyed(scripted, tmp_path, {"limits": {"requests_per_minute": 3}}))
    c = client(router)
    remaining = []
    for _ in range(3):
        raw = ask(c)
        remaining.append(raw.headers["anthropic-ratelimit-requests-remaining"])
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "3"
        reset = datetime.fromisoformat(raw.headers["anthropic-ratelimit-requests-reset"])
        assert 0 < reset.timestamp() - time.time() <= 61
        assert "anthropic-ratelimit-input-tokens-limit" not in raw.headers
    assert remaining == ["2", "1", "0"]
    with pytest.raises(anthropic.RateLimitError) as info:
        ask(c)
    response = info.value.response
    assert response.status_code == 429
    assert info.value.body["error"]["type"] == "rate_limit_error"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "x-should-retry" not in response.headers  # the SDK and Claude Code retry it
    assert len(scripted.chat_requests()) == 3  # the refused request never went upstream
    # another key is not affected and gets no rate-limit headers at all
    other = ask(client(router, BOB))
    assert not [h for h in other.headers if h.startswith("anthropic-ratelimit")]


def test_token_limits_count_input_at_admission_and_output_at_the_end(
        scripted, router_factory, tmp_path) -> None:
    limits = {"input_tokens_per_minute": 100000, "output_tokens_per_minute": 50}
    router = router_factory(keyed(scripted, tmp_path, {"limits": limits}))
    c = client(router)
    scripted.queue(Text("word " * 10, usage=usage(prompt=20, completion=30)))
    first = ask(c)
    assert first.headers["anthropic-ratelimit-output-tokens-remaining"] == "50"
    input_left = int(first.headers["anthropic-ratelimit-input-tokens-remaining"])
    assert 100000 - 200 < input_left < 100000
    _wait_settled(router)
    scripted.queue(Text("more", usage=usage(prompt=20, completion=30)))
    second = ask(c, stream=True)
    assert second.headers["anthropic-ratelimit-output-tokens-remaining"] == "20"
    # 60 output tokens used of 50: the next request waits for the window
    _wait_settled(router)
    with pytest.raises(anthropic.RateLimitError) as info:
        ask(c)
    assert "output tokens per minute" in info.value.body["error"]["message"]


def _eventually(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def _wait_settled(router) -> None:
    assert _eventually(lambda: not router.service.state.pending)


def test_concurrent_requests_limit(scripted, router_factory, tmp_path) -> None:
    import threading

    from tests.fakes.scripted_backend import Chunks, chunk

    router = router_factory(keyed(scripted, tmp_path, {"limits": {"concurrent_requests": 1}}))
    slow = Chunks([chunk({"role": "assistant", "content": ""}), chunk({"content": "a"}),
                   chunk({}, "stop"), chunk(None, usage=usage())], delay=0.5)
    scripted.queue(slow)
    c = client(router)
    started = threading.Event()
    result: dict[str, Any] = {}

    def long_request() -> None:
        with c.messages.with_streaming_response.create(
                model="sonnet", max_tokens=10, stream=True,
                messages=[{"role": "user", "content": "hi"}]) as raw:
            started.set()
            result["lines"] = list(raw.iter_lines())

    worker = threading.Thread(target=long_request)
    worker.start()
    assert started.wait(10)
    with pytest.raises(anthropic.RateLimitError) as info:
        ask(c)
    assert "concurrent" in info.value.body["error"]["message"]
    assert int(info.value.response.headers["retry-after"]) >= 1
    worker.join(20)
    _wait_settled(router)
    assert ask(c).status_code == 200  # the slot was released when the stream ended


def test_openai_route_gets_openai_header_names(scripted, router_factory, tmp_path) -> None:
    limits = {"requests_per_minute": 2, "input_tokens_per_minute": 5000}
    router = router_factory(keyed(scripted, tmp_path, {"limits": limits}))
    oa = openai.OpenAI(base_url=router.url + "/v1", api_key=ALICE, max_retries=0)
    raw = oa.chat.completions.with_raw_response.create(
        model="sonnet", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert raw.headers["x-ratelimit-reset-requests"] in ("1m0s", "59s", "1m1s")
    assert raw.headers["x-ratelimit-limit-tokens"] == "5000"
    assert 4900 < int(raw.headers["x-ratelimit-remaining-tokens"]) < 5000
    assert not [h for h in raw.headers if h.startswith("anthropic-ratelimit")]
    oa.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as info:
        oa.chat.completions.create(model="sonnet",
                                   messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["retry-after"]
    assert info.value.body["type"] == "rate_limit_error"


def test_budget_warnings_then_billing_error_and_restart(scripted, router_factory,
                                                        tmp_path) -> None:
    config = keyed(scripted, tmp_path, {"budgets": [{"period": "daily", "tokens": 1000}]})
    router = router_factory(config)
    c = client(router)
    statuses = []
    for _ in range(3):
        scripted.queue(Text("ok", usage=usage(prompt=5, completion=270)))
        raw = ask(c)
        _wait_settled(router)
        h = raw.headers
        statuses.append((h["anthropic-ratelimit-unified-status"],
                         h.get("anthropic-ratelimit-unified-overage-surpassed-threshold")))
        assert raw.headers["anthropic-ratelimit-unified-representative-claim"] == "overage"
        assert float(raw.headers["anthropic-ratelimit-unified-overage-utilization"]) < 1
    # used before each answer's output: ~few, then ~275, then ~550 -> allowed
    assert statuses[0] == ("allowed", None)
    scripted.queue(Text("ok", usage=usage(prompt=5, completion=200)))
    warn = ask(c)  # 3 x 270 output + inputs > 750: past 75 %
    _wait_settled(router)
    assert warn.headers["anthropic-ratelimit-unified-status"] == "allowed_warning"
    assert warn.headers["anthropic-ratelimit-unified-overage-surpassed-threshold"] == "0.75"
    assert warn.headers["anthropic-ratelimit-unified-overage-status"] == "allowed_warning"
    with pytest.raises(anthropic.APIStatusError) as info:
        ask(c)
    _assert_billing(info.value)
    router.stop()
    again = router_factory(config)  # the same SQLite file: the budget stays spent
    with pytest.raises(anthropic.APIStatusError) as info:
        ask(client(again))
    _assert_billing(info.value)


def _assert_billing(error: anthropic.APIStatusError) -> None:
    response = error.response
    assert response.status_code == 429
    assert error.body["error"]["type"] == "billing_error"
    assert "resets" in error.body["error"]["message"]
    h = response.headers
    assert h["x-should-retry"] == "false"
    assert h["anthropic-ratelimit-unified-status"] == "rejected"
    assert h["anthropic-ratelimit-unified-overage-period"] == "daily"
    assert h["anthropic-ratelimit-unified-overage-disabled-reason"] == "org_spend_cap_reached"
    assert h["anthropic-ratelimit-unified-overage-utilization"] == "1"
    assert h["anthropic-ratelimit-unified-overage-surpassed-threshold"] == "1"
    reset = int(h["anthropic-ratelimit-unified-reset"])
    assert h["anthropic-ratelimit-unified-overage-reset"] == str(reset)
    assert abs(int(h["retry-after"]) - (reset - time.time())) < 5
    assert "anthropic-ratelimit-unified-representative-claim" not in h
    assert "anthropic-ratelimit-unified-overage-status" not in h


def test_store_down_on_error_closed_refuses(scripted, router_factory, tmp_path) -> None:
    from tests.redis_server import free_port

    config = keyed(scripted, tmp_path, {"limits": {"requests_per_minute": 5}})
    config["state"] = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "on_error": "closed",
                       "timeout": "200ms"}
    router = router_factory(config)
    with pytest.raises(anthropic.RateLimitError) as info:
        ask(client(router))
    h = info.value.response.headers
    assert h["x-should-retry"] == "false"
    assert h["anthropic-ratelimit-unified-overage-disabled-reason"] == "fetch_error"
    assert "anthropic-ratelimit-unified-status" not in h
    assert ask(client(router, BOB)).status_code == 200  # an unlimited key needs no store


def test_store_down_on_error_open_serves_and_logs_once(scripted, router_factory, tmp_path,
                                                       caplog) -> None:
    from tests.redis_server import free_port

    config = keyed(scripted, tmp_path, {"limits": {"requests_per_minute": 1}})
    config["state"] = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "timeout": "200ms"}
    router = router_factory(config)
    with caplog.at_level("ERROR", logger="continuum.limits"):
        for _ in range(3):
            raw = ask(client(router))
            assert raw.status_code == 200
            assert "anthropic-ratelimit-requests-limit" not in raw.headers
    errors = [r for r in caplog.records if "state store unavailable while checking limits"
              in r.getMessage()]
    assert len(errors) == 1


def test_defaults_apply_to_keys_without_their_own(scripted, router_factory, tmp_path) -> None:
    config = keyed(scripted, tmp_path, {"limits": {"requests_per_minute": 7}})
    config["api_keys"]["defaults"] = {"limits": {"requests_per_minute": 4}}
    router = router_factory(config)
    assert ask(client(router)).headers["anthropic-ratelimit-requests-limit"] == "7"
    assert ask(client(router, BOB)).headers["anthropic-ratelimit-requests-limit"] == "4"


def test_permissive_defaults_limit_the_router_as_a_whole(scripted, router_factory,
                                                         tmp_path) -> None:
    config = basic_config(scripted, api_keys={"defaults": {"limits": {"requests_per_minute": 2}}},
                          state={"path": str(tmp_path / "s.db"), "timeout": "5s"})
    router = router_factory(config)
    ask(client(router, "anything"))
    ask(client(router, "something-else"))
    with pytest.raises(anthropic.RateLimitError):
        ask(client(router, "a-third"))


def test_upstream_ratelimit_headers_are_not_passed_through(scripted, router_factory,
                                                           tmp_path) -> None:
    router = router_factory(keyed(scripted, tmp_path, {"limits": {"requests_per_minute": 9}}))
    r = httpx.post(router.url + "/v1/chat/completions", headers={"x-api-key": ALICE},
                   json={"model": "sonnet", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200
    assert not [h for h in r.headers if h.startswith("anthropic-ratelimit")]


def test_every_answer_to_a_limited_key_carries_the_headers(scripted, router_factory,
                                                          tmp_path) -> None:
    router = router_factory(keyed(scripted, tmp_path, {"limits": {"requests_per_minute": 5}}))
    c = client(router)
    ask(c)
    counted = c.messages.count_tokens(model="sonnet",
                                      messages=[{"role": "user", "content": "hi"}])
    assert counted.input_tokens > 0
    raw = c.messages.with_raw_response.count_tokens(
        model="sonnet", messages=[{"role": "user", "content": "hi"}])
    # a read: the one message so far is all that counts
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "4"
    with pytest.raises(anthropic.NotFoundError) as info:
        c.messages.create(model="no-such-model", max_tokens=5,
                          messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["anthropic-ratelimit-requests-limit"] == "5"
    assert info.value.response.headers["anthropic-ratelimit-requests-remaining"] == "4"
    models = httpx.get(router.url + "/v1/models", headers={"authorization": f"Bearer {ALICE}"})
    assert models.headers["x-ratelimit-remaining-requests"] == "4"
    # an unlimited key: none of them
    plain = httpx.post(router.anthropic_url + "/v1/messages/count_tokens",
                       headers={"x-api-key": BOB},
                       json={"model": "sonnet", "messages": [{"role": "user", "content": "x"}]})
    assert not [h for h in plain.headers if "ratelimit" in h]


def test_cost_budget_warns_past_95_percent_then_refuses(scripted, router_factory,
                                                         tmp_path) -> None:
    """A `cost_usd` budget priced from `pricing` (USD per million tokens of the model as
    served): the answer after 96 % of it carries the 0.95 warning, the next one is refused."""
    model = scripted.models[0]
    config = keyed(scripted, tmp_path, {"budgets": [{"period": "monthly", "cost_usd": 1.0}]},
                   pricing={model: {"input": 0, "output": 10_000}})  # $0.01 per output token
    router = router_factory(config)
    c = client(router)
    for completion in (40, 56):  # $0.40, then $0.96 in all
        scripted.queue(Text("ok", usage=usage(prompt=5, completion=completion)))
        ask(c)
        _wait_settled(router)
    scripted.queue(Text("ok", usage=usage(prompt=5, completion=10)))
    warned = ask(c)
    _wait_settled(router)
    h = warned.headers
    assert h["anthropic-ratelimit-unified-status"] == "allowed_warning"
    assert h["anthropic-ratelimit-unified-overage-surpassed-threshold"] == "0.95"
    assert float(h["anthropic-ratelimit-unified-overage-utilization"]) == pytest.approx(0.96)
    with pytest.raises(anthropic.APIStatusError) as info:
        ask(c)
    assert info.value.response.status_code == 429
    assert info.value.body["error"]["type"] == "billing_error"
    assert "monthly budget of $1.00" in info.value.body["error"]["message"]
    assert info.value.response.headers["anthropic-ratelimit-unified-overage-period"] == "monthly"


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_a_client_that_leaves_before_the_answer_frees_its_slot(
        scripted, router_factory, tmp_path, request, store) -> None:
    """The concurrency slot of a request whose client hung up while the backend was still
    thinking is released at once, not after the 15-minute lease."""
    import socket

    config = keyed(scripted, tmp_path, {"limits": {"concurrent_requests": 1}})
    if store == "redis":
        config["state"] = {"redis_url": request.getfixturevalue("redis_server").url,
                           "timeout": "5s"}
    router = router_factory(config)
    scripted.delay = 1.0  # the first answer takes a second
    body = (b'{"model":"sonnet","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}')
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as sock:
        sock.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\n"
                     b"content-type: application/json\r\nx-api-key: " + ALICE.encode()
                     + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
                     + body)
        assert _eventually(lambda: len(scripted.chat_requests()) == 1)
    # the client is gone; the backend is still busy with its request
    scripted.delay = 0.0
    started = time.monotonic()
    assert _eventually(lambda: _status(client(router)) == 200, timeout=5.0)
    assert time.monotonic() - started < 3.0


def _status(c: anthropic.Anthropic) -> int:
    try:
        return ask(c).status_code
    except anthropic.RateLimitError:
        return 429
