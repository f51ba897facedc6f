"""OpenAI passthrough (/v1/chat/completions, /v1/models, /health) with the openai SDK."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import Chunks, Error, ScriptedBackend, Text, chunk


def test_scripted_backend_speaks_openai(scripted: ScriptedBackend) -> None:
    """The fake is verified against the real client once, directly."""
    client = openai.OpenAI(base_url=scripted.url, api_key="x")
    reply = client.chat.completions.create(model="test-model", messages=[
        {"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from the scripted backend."
    stream = client.chat.completions.create(model="test-model", stream=True, messages=[
        {"role": "user", "content": "hi"}], stream_options={"include_usage": True})
    parts = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(parts) == "Hello from the scripted backend."


def test_non_stream_passthrough_with_alias(router, scripted: ScriptedBackend) -> None:
    client = openai.OpenAI(base_url=router.url + "/v1", api_key="x")
    scripted.queue(Text("Paris is the capital."))
    reply = client.chat.completions.create(
        model="claude-haiku-4-5-20251001", messages=[{"role": "user", "content": "capital?"}],
        temperature=0.2)
    assert reply.choices[0].message.content == "Paris is the capital."
    sent = scripted.last_body
    assert sent["model"] == "test-model"  # alias applied
    assert sent["temperature"] == 0.2 and sent["messages"][0]["content"] == "capital?"


def test_stream_passthrough_relays_every_chunk(router, scripted: ScriptedBackend) -> None:
    client = openai.OpenAI(base_url=router.url + "/v1", api_key="x")
    scripted.queue(Text("one two three four"))
    stream = client.chat.completions.create(
        model="test-model", stream=True, messages=[{"role": "user", "content": "count"}],
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


def test_models_lists_backend_models_and_aliases(router) -> None:
    client = openai.OpenAI(base_url=router.url + "/v1", api_key="x")
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "test-model"
    assert {"haiku", "sonnet", "opus"} <= set(ids)


def test_health_reports_each_backend(router) -> None:
    resp = httpx.get(router.url + "/health")
    assert resp.status_code == 200
    data = resp.json()
    assert data["status"] == "ok"
    assert data["backends"][0]["name"] == "scripted" and data["backends"][0]["status"] == "ready"
    assert httpx.get(router.url + "/healthz").status_code == 200


def test_backend_down_is_502_naming_the_backend(router_factory) -> None:
    dead = ScriptedBackend().start()
    url = dead.url
    dead.stop()
    config = {"backends": [{"name": "gone-backend", "type": "generic", "url": url,
                            "models": ["m1"]}]}
    router = router_factory(config)
    client = openai.OpenAI(base_url=router.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    body = info.value.response.json()
    assert "gone-backend" in body["error"]["message"]
    assert "Traceback" not in info.value.response.text


def test_upstream_error_in_openai_envelope(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Error(400, {"error": {"message": "bad temperature", "type": "invalid"}}))
    resp = httpx.post(router.url + "/v1/chat/completions", json={
        "model": "test-model", "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 400
    assert "bad temperature" in resp.json()["error"]["message"]


def test_unknown_model_is_404_in_openai_envelope(router_factory, scripted) -> None:
    router = router_factory({"backends": [{"name": "s", "type": "generic", "url": scripted.url,
                                           "models": ["test-model"]}]})
    resp = httpx.post(router.url + "/v1/chat/completions", json={
        "model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Model nope not found"


def test_mid_stream_cut_becomes_error_event(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Chunks([chunk({"content": "a"}), chunk({"content": "b"})] * 3, cut_after=2))
    with httpx.stream("POST", router.url + "/v1/chat/completions", json={
            "model": "test-model", "stream": True,
            "messages": [{"role": "user", "content": "x"}]}) as resp:
        body = resp.read().decode()
    assert resp.status_code == 200
    assert body.count('"content": "a"') == 1
    assert '"error"' in body.splitlines()[-2] or '"error"' in body


def test_basic_config_aliases(scripted) -> None:
    assert basic_config(scripted)["model_aliases"]["haiku"] == "test-model"


def test_health_hides_credentials_in_backend_urls(router_factory, scripted) -> None:
    url = scripted.url.replace("http://", "http://user:s3cret@")
    router = router_factory({"backends": [{"name": "b", "url": url, "models": ["test-model"]}]})
    body = httpx.get(router.url + "/health").text
    assert "s3cret" not in body and "***@127.0.0.1" in body
