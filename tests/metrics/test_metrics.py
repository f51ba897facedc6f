"""/metrics on the real router: scraped over a socket after known traffic (anthropic and
openai SDKs against the scripted backend) and parsed with prometheus_client's own parser."""

from __future__ import annotations

import random
import string
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import basic_config
from tests.fakes.scripted_backend import Error, ScriptedBackend, Text, usage
from tests.fakes.search_providers import FakeSearchServer

USER = [{"role": "user", "content": "hi"}]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **headers: str) -> Samples:
    resp = httpx.get(url + "/metrics", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(ls) for (n, ls), _ in samples.items() if n == name]


def test_counts_match_known_traffic(router, scripted: ScriptedBackend) -> None:
    ant = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    oai = openai.OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0)
    for _ in range(3):
        scripted.queue(Text("one two", usage=usage(prompt=20, completion=5)))
        ant.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=USER)
    for _ in range(2):
        scripted.queue(Text("streamed words here", usage=usage(prompt=11, completion=3)))
        with ant.messages.stream(model="test-model", max_tokens=20, messages=USER) as s:
            s.get_final_message()
    for _ in range(4):
        scripted.queue(Text("hello", usage=usage(prompt=8, completion=2)))
        oai.chat.completions.create(model="test-model", messages=USER)
    scripted.queue(Text("a b c", usage=usage(prompt=6, completion=4)))
    list(oai.chat.completions.create(model="test-model", messages=USER, stream=True,
                                     stream_options={"include_usage": True}))
    scripted.queue(Error(503, {"error": {"message": "busy"}}))
    with pytest.raises(anthropic.APIStatusError):
        ant.messages.create(model="test-model", max_tokens=20, messages=USER)
    with pytest.raises(anthropic.NotFoundError):
        ant.messages.create(model="no-such-model", max_tokens=20, messages=USER)

    m = scrape(router.url)
    total = "continuum_requests_total"
    assert value(m, total, route="/anthropic/v1/messages", status="200", backend="scripted",
                 model="test-model") == 5
    assert value(m, total, route="/v1/chat/completions", status="200", backend="scripted",
                 model="test-model") == 5
    assert value(m, total, route="/anthropic/v1/messages", status="529", backend="scripted",
                 model="test-model") == 1
    assert value(m, total, route="/anthropic/v1/messages", status="404", model="other") == 1
    # histograms: one observation per request; time to first token for the 3 streams only
    assert value(m, "continuum_request_duration_seconds_count",
                 route="/anthropic/v1/messages", backend="scripted") == 6
    assert value(m, "continuum_request_duration_seconds_count",
                 route="/v1/chat/completions", backend="scripted") == 5
    assert value(m, "continuum_time_to_first_token_seconds_count", backend="scripted") == 3
    assert value(m, "continuum_time_to_first_token_seconds_count",
                 route="/anthropic/v1/messages") == 2
    # tokens: what the backend reported, by direction
    assert value(m, "continuum_tokens_total", direction="input", model="test-model") == \
        3 * 20 + 2 * 11 + 4 * 8 + 6
    assert value(m, "continuum_tokens_total", direction="output", model="test-model") == \
        3 * 5 + 2 * 3 + 4 * 2 + 4
    assert value(m, "continuum_upstream_errors_total", backend="scripted",
                 kind="overloaded") == 1
    assert value(m, "continuum_backend_up", backend="scripted") == 1
    assert ("continuum_backend_in_flight", frozenset({("backend", "scripted")})) in m
    # families that exist before anything happened to them are still described
    text = httpx.get(router.url + "/metrics").text
    for name in ("continuum_failovers_total",
                 "continuum_config_reloads_total", "continuum_web_search_requests_total"):
        assert f"# TYPE {name} counter" in text


@pytest.mark.parametrize("aliases", [{}, {"default": "test-model"}], ids=["404", "default"])
def test_random_model_names_add_at_most_one_other_series(router_factory,
                                                         scripted: ScriptedBackend,
                                                         aliases: dict[str, str]) -> None:
    """Without a `default` alias random names are 404s; with one they are served by the
    default's target. Either way no name a client invents becomes a label value."""
    config = basic_config(scripted)
    config["model_aliases"] = aliases
    router = router_factory(config)
    rng = random.Random(7)
    names = ["".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(1000)]
    with httpx.Client(base_url=router.url, timeout=30) as client:
        client.post("/v1/chat/completions", json={"model": "warm-up", "messages": USER})
        before = scrape(router.url)
        for name in names:
            resp = client.post("/v1/chat/completions", json={"model": name, "messages": USER})
            assert resp.status_code == (200 if aliases else 404)
    after = scrape(router.url)
    new = [s for s in series(after, "continuum_requests_total")
           if s not in series(before, "continuum_requests_total")]
    assert len([s for s in new if s["model"] == "other"]) <= 1
    labels = {v for s in series(after, "continuum_requests_total") for v in s.values()}
    labels |= {v for s in series(after, "continuum_tokens_total") for v in s.values()}
    assert not labels & set(names)
    served = "test-model" if aliases else "other"
    assert value(after, "continuum_requests_total", route="/v1/chat/completions",
                 model=served) == 1001


def test_unknown_names_on_a_listing_backend_are_404s_counted_as_other(router) -> None:
    with httpx.Client(base_url=router.url, timeout=30) as client:
        for i in range(50):
            resp = client.post("/v1/chat/completions",
                               json={"model": f"made-up-{i}", "messages": USER})
            assert resp.status_code == 404
        resp = client.get("/nowhere-" + "x" * 10)
        assert resp.status_code == 404
    m = scrape(router.url)
    assert value(m, "continuum_requests_total", route="/v1/chat/completions", status="404",
                 model="other") == 50
    assert value(m, "continuum_requests_total", route="other", status="404") == 1
    assert not [s for s in series(m, "continuum_requests_total") if "made-up" in s["model"]]


def test_no_key_appears(router_factory, scripted: ScriptedBackend) -> None:
    secret = "sk-very-secret-123"
    config = basic_config(scripted, api_keys={"mode": "blocking",
                                              "keys": [{"key": secret, "name": "alice"}]})
    router = router_factory(config)
    ant = anthropic.Anthropic(base_url=router.anthropic_url, api_key=secret, max_retries=0)
    ant.messages.create(model="test-model", max_tokens=5, messages=USER)
    bad = anthropic.Anthropic(base_url=router.anthropic_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="test-model", max_tokens=5, messages=USER)
    text = httpx.get(router.url + "/metrics").text
    assert secret not in text and "sk-wrong" not in text and "alice" not in text
    m = scrape(router.url)
    assert value(m, "continuum_requests_total", status="401") == 1


def test_metrics_loopback_only_in_blocking_mode(router_factory, scripted) -> None:
    """From 127.0.0.1 without a key: served. (Another address: tests/metrics/test_netns.py.)"""
    config = basic_config(scripted, api_keys={"mode": "blocking", "keys": [{"key": "k1"}]})
    router = router_factory(config)
    assert httpx.get(router.url + "/metrics").status_code == 200
    assert httpx.post(router.url + "/v1/chat/completions",
                      json={"model": "test-model", "messages": USER}).status_code == 401


def test_openmetrics_when_asked(router) -> None:
    resp = httpx.get(router.url + "/metrics",
                     headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/openmetrics-text")
    assert resp.text.rstrip().endswith("# EOF")


def test_web_search_counted(router_factory, scripted: ScriptedBackend) -> None:
    with FakeSearchServer("brave") as search:
        config = basic_config(scripted, web_search={
            "enabled": True, "provider": "brave", "api_key": search.key,
            "base_url": search.base_url, "timeout": "2s"})
        router = router_factory(config)
        ant = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
        request: dict[str, Any] = {
            "model": "claude-opus-5-5", "max_tokens": 100,
            "messages": [{"role": "user", "content": "Perform a web search for the query: "
                                                     "asyncio"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
        scripted.queue(Text("summary"))
        ant.messages.create(**request)
        search.mode = "rate_limited"
        ant.messages.create(**request)
    m = scrape(router.url)
    assert value(m, "continuum_web_search_requests_total", provider="brave", result="ok") == 1
    # a 429 is retried once when the reset is near: one or two calls, all too_many_requests
    assert value(m, "continuum_web_search_requests_total", provider="brave",
                 result="too_many_requests") == 1


def test_time_to_first_token_is_the_first_model_output(router, scripted: ScriptedBackend
                                                       ) -> None:
    """The backend answers its headers and role chunk at once, then thinks 0.4 s: the time
    to first token counts those 0.4 s on both routes (not the first byte of the answer)."""
    from tests.fakes.scripted_backend import Chunks, chunk

    def slow() -> Chunks:
        return Chunks([chunk({"role": "assistant", "content": ""}), chunk({"content": "hi"}),
                       chunk({}, "stop"), chunk(None, usage=usage())], delay=0.4)

    ant = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    oai = openai.OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0)
    scripted.queue(slow(), slow())
    with ant.messages.stream(model="test-model", max_tokens=20, messages=USER) as s:
        s.get_final_message()
    list(oai.chat.completions.create(model="test-model", messages=USER, stream=True))
    m = scrape(router.url)
    for route in ("/anthropic/v1/messages", "/v1/chat/completions"):
        name = "continuum_time_to_first_token_seconds_bucket"
        assert value(m, name, route=route, le="+Inf") == 1
        assert value(m, name, route=route, le="0.25") == 0, route  # the 0.4 s were counted


def test_requests_refused_before_routing_are_counted(router_factory,
                                                     scripted: ScriptedBackend) -> None:
    import socket

    router = router_factory(basic_config(scripted, server={"max_body_bytes": "1KiB"}))
    resp = httpx.post(router.url + "/v1/chat/completions", content=b"x" * 4096,
                      headers={"content-type": "application/json"})
    assert resp.status_code == 413
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    m = scrape(router.url)
    assert value(m, "continuum_requests_total", route="/v1/chat/completions",
                 status="413") == 1
    assert value(m, "continuum_requests_total", route="other", status="400") == 1
