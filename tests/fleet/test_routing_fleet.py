"""Several backends per model through the real router: strategies, weights, failover rules,
fallback models, /health. Scripted backends on real sockets; real anthropic/openai SDKs."""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.scripted_backend import Error, ScriptedBackend, Text
from tests.fleet.conftest import fleet_config

USER = [{"role": "user", "content": "hi"}]


def served(backends: list[ScriptedBackend]) -> list[int]:
    return [len(b.chat_requests()) for b in backends]


def chat(router: Any, model: str = "m", **kw: Any) -> httpx.Response:
    return httpx.post(router.url + "/v1/chat/completions", timeout=30,
                      json={"model": model, "messages": USER, **kw})


def health(router: Any) -> dict[str, Any]:
    return httpx.get(router.url + "/health", timeout=30).json()


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_priority_uses_the_first_ready_backend_only(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio, routing={"strategy": "priority"}))
    for _ in range(12):
        assert chat(router).status_code == 200
    assert served(trio) == [12, 0, 0]
    trio[0].health_status = 500  # first one down: the second one, and only it
    wait_for(lambda: health(router)["backends"][0]["status"] == "down")
    for _ in range(6):
        assert chat(router).status_code == 200
    assert served(trio) == [12, 6, 0]


def test_weight_two_to_one(router_factory, trio) -> None:
    config = fleet_config(trio[:2])
    config["backends"][0]["weight"] = 2
    router = router_factory(config)
    for _ in range(60):
        assert chat(router).status_code == 200
    a, b = served(trio[:2])
    assert a + b == 60 and 36 <= a <= 44, (a, b)  # about 2:1


def test_weight_two_to_one_under_concurrency(router_factory, trio) -> None:
    config = fleet_config(trio[:2])
    config["backends"][0]["weight"] = 2
    for backend in trio[:2]:
        backend.delay = 0.02
    router = router_factory(config)
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: chat(router).status_code, range(120)))
    assert codes == [200] * 120
    a, b = served(trio[:2])
    assert 1.5 <= a / b <= 2.6, (a, b)


def test_round_robin_takes_turns(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio, routing={"strategy": "round_robin"}))
    for _ in range(9):
        assert chat(router).status_code == 200
    assert served(trio) == [3, 3, 3]


def test_least_outstanding_sends_fewer_requests_to_a_slow_backend(router_factory, trio) -> None:
    trio[0].delay = 1.0  # round robin would still send it a third of the requests
    router = router_factory(fleet_config(trio))
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: chat(router).status_code, range(90)))
    assert codes == [200] * 90
    slow, fast1, fast2 = served(trio)
    assert slow < min(fast1, fast2) / 2, served(trio)


@pytest.mark.parametrize(("status", "fails_over"), [
    (502, True), (503, True), (504, True), (529, True),
    (400, False), (401, False), (404, False), (422, False), (500, False),
])
def test_failover_on_status(router_factory, trio, caplog, status: int, fails_over: bool) -> None:
    caplog.set_level(logging.INFO, logger="continuum")
    router = router_factory(fleet_config(trio[:2], routing={"strategy": "priority"}))
    trio[0].queue(Error(status, {"error": {"message": f"scripted {status}"}}))
    resp = chat(router)
    assert (resp.status_code == 200) is fails_over
    assert served(trio[:2]) == ([1, 1] if fails_over else [1, 0])
    assert ("failover: gpu-a -> gpu-b (HTTP %d)" % status in caplog.text) is fails_over


def test_429_fails_over_only_when_another_backend_is_ready(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio[:2], routing={"strategy": "priority"}))
    trio[0].queue(Error(429, {"error": {"message": "slow down"}}))
    assert chat(router).status_code == 200
    assert served(trio[:2]) == [1, 1]
    trio[1].health_status = 500
    wait_for(lambda: health(router)["backends"][1]["status"] == "down")
    trio[0].queue(Error(429, {"error": {"message": "slow down"}}))
    resp = chat(router)
    assert resp.status_code == 429 and "slow down" in resp.json()["error"]["message"]


def test_connection_refused_fails_over_with_the_log_line(router_factory, trio, caplog) -> None:
    caplog.set_level(logging.INFO, logger="continuum")
    router = router_factory(fleet_config(trio[:2], routing={"strategy": "priority"},
                                         interval="60s"))
    trio[0].kill()  # refused from now on; the health check will not notice for a minute
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="x", max_retries=0)
    message = client.messages.create(model="m", max_tokens=20, messages=USER)
    assert message.model == "m" and message.content[0].text
    assert "failover: gpu-a -> gpu-b (ConnectError)" in caplog.text


def test_the_client_gets_the_last_attempts_error(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio, routing={"strategy": "priority"}))
    trio[0].queue(Error(503, {"error": {"message": "first busy"}}))
    trio[1].queue(Error(502, {"error": {"message": "second broken"}}))
    trio[2].queue(Error(504, {"error": {"message": "third slow"}}))
    resp = chat(router)
    assert resp.status_code == 504 and "third slow" in resp.json()["error"]["message"]
    assert served(trio) == [1, 1, 1]


def test_max_attempts_bounds_the_backends_tried(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio, routing={"strategy": "priority",
                                                        "max_attempts": 2}))
    for backend in trio:
        backend.queue(Error(503, {"error": {"message": "busy"}}))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="m", max_tokens=20, messages=USER)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # the route's envelope
    assert served(trio) == [1, 1, 0]


def test_streamed_request_fails_over_before_the_first_byte(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio[:2], routing={"strategy": "priority"}))
    trio[0].queue(Error(503, {"error": {"message": "busy"}}))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="x", max_retries=0)
    with client.messages.stream(model="m", max_tokens=20, messages=USER) as stream:
        text = stream.get_final_text()
    assert text == "Hello from the scripted backend."
    oai = openai.OpenAI(base_url=router.url + "/v1", api_key="x", max_retries=0)
    trio[0].queue(Error(502, {"error": {"message": "broken"}}))
    chunks = list(oai.chat.completions.create(model="m", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert served(trio[:2]) == [2, 2]


def test_count_tokens_uses_a_ready_backend(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio[:2], routing={"strategy": "priority"}))
    trio[0].health_status = 500
    wait_for(lambda: health(router)["backends"][0]["status"] == "down")
    resp = httpx.post(router.anthropic_url + "/v1/messages/count_tokens", timeout=30,
                      json={"model": "m", "messages": [{"role": "user", "content": "a b c"}]})
    assert resp.status_code == 200
    assert [r.path for r in trio[1].requests if r.path == "/tokenize"] == ["/tokenize"]
    assert not [r for r in trio[0].requests if r.path == "/tokenize"]


def test_fallback_only_when_no_backend_of_the_model_is_ready(router_factory, caplog) -> None:
    caplog.set_level(logging.INFO, logger="continuum")
    with ScriptedBackend(models=("qwen3-coder",)) as big, \
            ScriptedBackend(models=("qwen2.5-coder:7b",)) as small:
        config = fleet_config([big, small], names=("gpu-a", "gpu-b"), routing={
            "fallbacks": {"qwen3-coder": ["qwen2.5-coder:7b"]}},
            model_aliases={"sonnet": "qwen3-coder"})
        router = router_factory(config)
        client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="x", max_retries=0)
        client.messages.create(model="claude-sonnet-4-5", max_tokens=20, messages=USER)
        assert (len(big.chat_requests()), len(small.chat_requests())) == (1, 0)
        assert "fallback:" not in caplog.text
        big.health_status = 500
        wait_for(lambda: health(router)["backends"][0]["status"] == "down")
        message = client.messages.create(model="claude-sonnet-4-5", max_tokens=20,
                                         messages=USER)
        assert message.model == "claude-sonnet-4-5"  # what the client asked for
        assert small.last_body["model"] == "qwen2.5-coder:7b"
        assert (len(big.chat_requests()), len(small.chat_requests())) == (1, 1)
        assert "fallback: qwen3-coder -> qwen2.5-coder:7b (no ready backend)" in caplog.text
        assert health(router)["status"] == "degraded"


def test_health_lists_every_backend(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio, routing={"strategy": "priority"}))
    data = health(router)
    assert data["status"] == "ok"
    assert [b["name"] for b in data["backends"]] == ["gpu-a", "gpu-b", "gpu-c"]
    for entry in data["backends"]:
        assert entry["status"] == "ready" and entry["in_flight"] == 0
        assert entry["last_error"] is None and entry["since"].endswith("Z")
    trio[0].delay = 1.5
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(chat, router)
        wait_for(lambda: health(router)["backends"][0]["in_flight"] == 1)
        assert pending.result().status_code == 200
    trio[1].health_status = 500
    wait_for(lambda: health(router)["backends"][1]["status"] == "down")
    entry = health(router)["backends"][1]
    assert "HTTP 500" in entry["last_error"] and entry["last_error_at"].endswith("Z")
    assert health(router)["status"] == "ok"  # every model still has a ready backend
    after = health(router)["backends"][0]
    assert after["requests"] == 1 and after["in_flight"] == 0
    assert after["latency_p50_ms"] >= 1000


def test_loading_backend_is_loading_not_down(router_factory, trio) -> None:
    router = router_factory(fleet_config(trio[:2]))
    trio[0].health_status = 503
    wait_for(lambda: health(router)["backends"][0]["status"] == "loading")
    assert health(router)["status"] == "ok"
    for _ in range(4):
        assert chat(router).status_code == 200
    assert served(trio[:2]) == [0, 4]


def test_reconfigure_while_a_stream_runs(router_factory, trio) -> None:
    """What a reload does (the reload itself swaps the settings and calls
    `Fleet.reconfigure`): the removed backend finishes its stream and its connections close
    after it; the added one is checked and then takes traffic; the kept one keeps its
    counters."""
    from continuum_cli.config.loader import validate

    router = router_factory(fleet_config(trio[:2], routing={"strategy": "round_robin"}))
    trio[1].chunk_delay = 0.05  # a stream of ~1 s on gpu-b
    trio[1].default = Text(" ".join(["w"] * 20))
    assert chat(router).status_code == 200  # gpu-a, then gpu-b streams
    with httpx.stream("POST", router.url + "/v1/chat/completions", timeout=30, json={
            "model": "m", "stream": True, "messages": USER}) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("data: ")
        new = validate(fleet_config([trio[0], trio[2]], names=("gpu-a", "gpu-c"),
                                    routing={"strategy": "round_robin"}))

        async def reload() -> None:
            router.service.state.settings = new
            router.service.state.fleet.reconfigure(new)

        router.call(reload())
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"  # the stream finished on the backend it started on
    wait_for(lambda: not trio[1]._connections)  # and its connection closed after it
    wait_for(lambda: health(router)["backends"][1]["status"] == "ready")
    before = served(trio)
    for _ in range(6):
        assert chat(router).status_code == 200
    after = served(trio)
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 0, 3]
    names = [b["name"] for b in health(router)["backends"]]
    assert names == ["gpu-a", "gpu-c"]
    assert health(router)["backends"][0]["requests"] == 4  # gpu-a kept its counters


def test_passive_ejection_then_one_probe_decides(router_factory, trio, caplog) -> None:
    """Three 502s in a row eject gpu-a although its /health still says ok; after the 5 s
    cooldown one request probes it, and its success brings it back."""
    caplog.set_level(logging.INFO, logger="continuum")
    router = router_factory(fleet_config(trio[:2], routing={"strategy": "priority"}))
    trio[0].queue(*[Error(502, {"error": {"message": "bad gateway"}})] * 3)
    for _ in range(3):
        assert chat(router).status_code == 200  # each one failed over to gpu-b
    entry = health(router)["backends"][0]
    assert entry["status"] == "down" and 0 < entry["ejected_for"] <= 5
    assert entry["consecutive_failures"] == 3 and "bad gateway" in entry["last_error"]
    assert health(router)["status"] == "ok"  # gpu-b serves the model
    for _ in range(3):
        assert chat(router).status_code == 200
    assert served(trio[:2]) == [3, 6]  # ejected: not even tried
    wait_for(lambda: health(router)["backends"][0]["ejected_for"] is None, timeout=30)
    assert chat(router).status_code == 200  # the probe, on gpu-a
    assert served(trio[:2]) == [4, 6]
    entry = health(router)["backends"][0]
    assert entry["status"] == "ready" and entry["consecutive_failures"] == 0
    assert chat(router).status_code == 200 and served(trio[:2]) == [5, 6]
    assert "backend gpu-a is down: ejected for 5s after 3 failures in a row" in caplog.text
    assert "backend gpu-a is ready again (the probe request succeeded)" in caplog.text


def test_first_byte_timeout_fails_over(router_factory, trio, caplog) -> None:
    caplog.set_level(logging.INFO, logger="continuum")
    config = fleet_config(trio[:2], routing={"strategy": "priority"})
    config["backends"][0]["timeout"] = "1s"
    router = router_factory(config)
    trio[0].delay = 3.0  # accepts, then says nothing for longer than the timeout
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="x", max_retries=0)
    with client.messages.stream(model="m", max_tokens=20, messages=USER) as stream:
        assert stream.get_final_text() == "Hello from the scripted backend."
    assert "failover: gpu-a -> gpu-b (ReadTimeout)" in caplog.text
