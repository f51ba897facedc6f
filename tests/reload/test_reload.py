"""Hot reload on the real router: streams in flight keep their config, new requests get the
new one; invalid edits leave the old config serving and say why; file changes are noticed."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml
from typer.testing import CliRunner

from continuum_cli.cli import app as cli_app
from continuum_cli.config.loader import load_config
from tests.fakes.scripted_backend import Chunks, ScriptedBackend, Text, text_chunks
from tests.router import RouterThread

USER = [{"role": "user", "content": "hi"}]
WORDS = " ".join(f"w{i}" for i in range(20))


@pytest.fixture
def two_backends() -> Iterator[tuple[ScriptedBackend, ScriptedBackend]]:
    with ScriptedBackend(models=("model-a",)) as a, ScriptedBackend(models=("model-b",)) as b:
        yield a, b


def config_for(a: ScriptedBackend, b: ScriptedBackend, target: str, **extra: Any) -> dict:
    config = {
        "backends": [{"name": "a", "type": "generic", "url": a.url, "models": ["model-a"]},
                     {"name": "b", "type": "generic", "url": b.url, "models": ["model-b"]}],
        "model_aliases": {"sonnet": target, "haiku": "model-a"},
    }
    config.update(extra)
    return config


def write(path: Path, config: dict | str) -> None:
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # as editors save: the watcher must see the new inode


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[dict], tuple[RouterThread, Path]]]:
    routers: list[RouterThread] = []

    def go(config: dict) -> tuple[RouterThread, Path]:
        path = tmp_path / "config.yaml"
        write(path, config)
        router = RouterThread(load_config(str(path)).settings, config_path=path).start()
        routers.append(router)
        return router, path

    yield go
    for router in routers:
        router.stop()


def reload(router: RouterThread) -> bool:
    return bool(router.call(router.service.reloader.reload()))


def ask(router: RouterThread, model: str = "claude-sonnet-4-5") -> anthropic.types.Message:
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    return client.messages.create(model=model, max_tokens=50, messages=USER)


def test_alias_change_while_50_streams_run(start, two_backends, caplog) -> None:
    a, b = two_backends
    a.default = Chunks(text_chunks(Text(WORDS), "model-a"), delay=0.05)  # ~1 s per stream
    b.default = Text("from b")
    router, path = start(config_for(a, b, "model-a"))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0,
                                 timeout=60)
    results: list[Any] = [None] * 50

    def stream(i: int) -> None:
        try:
            with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100,
                                        messages=USER) as s:
                results[i] = s.get_final_message()
        except Exception as exc:  # surfaced by the assertions below
            results[i] = exc

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(a.chat_requests()) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(a.chat_requests()) == 50, "the 50 streams did not all start"
    write(path, config_for(a, b, "model-b"))
    with caplog.at_level(logging.INFO, logger="continuum"):
        assert reload(router)
        assert ask(router).content[0].text == "from b"  # new requests: the new alias
    for t in threads:
        t.join(60)
    for message in results:
        assert isinstance(message, anthropic.types.Message), message
        assert message.content[0].text == WORDS and message.stop_reason == "end_turn"
    assert len(a.chat_requests()) == 50 and len(b.chat_requests()) == 1
    assert "config reloaded (2 backends, 2 aliases)" in caplog.text


def check_error(path: Path) -> str:
    """What `continuum check` says about the file (after `error: `)."""
    result = CliRunner().invoke(cli_app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    line = next(x for x in result.output.splitlines() if x.startswith("error: "))
    return line.removeprefix("error: ")


@pytest.mark.parametrize(("edit", "expect"), [
    ("backends: [\n  - name: a\n   bad: indent\n", r"invalid YAML"),
    ("server:\n  bind_adress: 127.0.0.1:9\n", r":2: unknown key `server.bind_adress`; did you "
                                             r"mean `bind_address`\?"),
    ("model_aliases:\n  sonnet: ${CONTINUUM_TEST_UNSET_VAR}\n",
     r":2: environment variable CONTINUUM_TEST_UNSET_VAR is not set"),
], ids=["bad-yaml", "unknown-key", "unset-var"])
def test_invalid_edit_keeps_the_old_config(start, two_backends, caplog, edit, expect) -> None:
    a, b = two_backends
    router, path = start(config_for(a, b, "model-a"))
    write(path, edit)
    with caplog.at_level(logging.INFO, logger="continuum"):
        assert not reload(router)
    assert re.search(expect, caplog.text), caplog.text
    said = check_error(path)
    assert f"config reload failed: {said}" in caplog.text
    assert "config reloaded" not in caplog.text
    a.queue(Text("still a"))
    assert ask(router).content[0].text == "still a"
    metrics = httpx.get(router.url + "/metrics").text
    assert 'continuum_config_reloads_total{result="failure"} 1.0' in metrics


def test_keys_file_and_api_keys_reload(start, two_backends, tmp_path) -> None:
    a, b = two_backends
    keys = tmp_path / "keys.yaml"
    keys.write_text("- {key: old-key, name: old}\n")
    config = config_for(a, b, "model-a",
                        api_keys={"mode": "blocking", "keys_file": str(keys)})
    router, path = start(config)
    post = lambda key: httpx.post(router.url + "/v1/chat/completions",  # noqa: E731
                                  headers={"authorization": f"Bearer {key}"},
                                  json={"model": "model-a", "messages": USER}, timeout=30)
    assert post("old-key").status_code == 200
    keys.write_text("- {key: new-key, name: new}\n")
    assert reload(router)
    assert post("new-key").status_code == 200
    assert post("old-key").status_code == 401
    # a broken keys file is a failed reload: the keys that work stay
    keys.write_text("- {nokey: 1}\n")
    assert not reload(router)
    assert post("new-key").status_code == 200


def test_file_change_is_noticed(start, two_backends, caplog) -> None:
    a, b = two_backends
    a.default, b.default = Text("from a"), Text("from b")
    router, path = start(config_for(a, b, "model-a"))
    assert ask(router).content[0].text == "from a"
    with caplog.at_level(logging.INFO, logger="continuum"):
        write(path, config_for(a, b, "model-b"))
        deadline = time.monotonic() + 15
        while "config reloaded" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "config reloaded (2 backends, 2 aliases)" in caplog.text
    assert ask(router).content[0].text == "from b"
    # the same bytes written again (a new inode, an mtime change) are not a change
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="continuum"):
        write(path, config_for(a, b, "model-b"))
        time.sleep(2.5)  # more than two polls: proving that nothing happens needs time
    assert "config reload" not in caplog.text


def test_restart_only_settings_are_named(start, two_backends, caplog) -> None:
    a, b = two_backends
    router, path = start(config_for(a, b, "model-a"))
    port = router.port
    write(path, config_for(a, b, "model-a", server={"bind_address": "127.0.0.1:1",
                                                    "ping_interval": "3s"}))
    with caplog.at_level(logging.INFO, logger="continuum"):
        assert reload(router)
    assert "server.bind_address changed, which needs a restart" in caplog.text
    assert router.service.settings.server.bind_address != "127.0.0.1:1"
    assert router.service.settings.server.ping_interval == 3.0  # applied live
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200


def test_added_and_removed_backends(start, two_backends, caplog) -> None:
    a, b = two_backends
    one = {"backends": [{"name": "a", "type": "generic", "url": a.url,
                         "models": ["model-a"]}], "model_aliases": {"sonnet": "model-a"}}
    router, path = start(one)
    a.queue(Text("a"))
    ask(router)
    old_origins = router.service.state.upstream.origins()
    write(path, {"backends": [{"name": "b", "type": "generic", "url": b.url,
                               "models": ["model-b"]}], "model_aliases": {"sonnet": "model-b"}})
    with caplog.at_level(logging.INFO, logger="continuum"):
        assert reload(router)
    assert "backend b (added) is ready" in caplog.text  # checked before it got traffic
    assert b.requests and b.requests[0].method == "GET"  # a check came first
    assert old_origins - router.service.state.upstream.origins()
    assert "connections to 127.0.0.1:%d close after their last request" % a.port in caplog.text
    b.queue(Text("b"))
    assert ask(router).content[0].text == "b"
    m = httpx.get(router.url + "/metrics").text
    assert 'continuum_backend_up{backend="b"} 1.0' in m
    assert 'continuum_backend_up{backend="a"}' not in m


def test_limits_and_web_search_follow_a_reload(start, two_backends) -> None:
    from tests.fakes.search_providers import FakeSearchServer

    a, b = two_backends
    keys = {"mode": "blocking", "keys": [{"key": "k1", "name": "alice",
                                          "limits": {"requests_per_minute": 100}}]}
    with FakeSearchServer("brave") as search:
        router, path = start(config_for(a, b, "model-a", api_keys=keys))
        client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k1",
                                     max_retries=0)
        request: dict[str, Any] = {
            "model": "claude-sonnet-4-5", "max_tokens": 50,
            "messages": [{"role": "user", "content": "Perform a web search for the query: "
                                                     "asyncio"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
        a.queue(Text("summary"))
        before = client.messages.create(**request)
        assert before.content[1].content.error_code == "unavailable"  # search disabled
        web = {"enabled": True, "provider": "brave", "api_key": search.key,
               "base_url": search.base_url}
        keys["keys"][0]["limits"] = {"requests_per_minute": 2}
        write(path, config_for(a, b, "model-a", api_keys=keys, web_search=web))
        assert reload(router)
        a.queue(Text("summary"))
        after = client.messages.create(**request)
        assert isinstance(after.content[1].content, list)  # results from the provider
        assert search.queries == ["asyncio"]
        with pytest.raises(anthropic.RateLimitError):  # 2 a minute now, 2 already used
            client.messages.create(**request)


def test_removed_backend_connection_closes_after_its_last_stream(start, two_backends) -> None:
    """A stream on a backend the reload removes finishes normally; its upstream connection
    then closes instead of going back to the pool, and nothing stays pooled for it."""
    a, b = two_backends
    a.default = Chunks(text_chunks(Text(WORDS), "model-a"), delay=0.05)
    b.default = Text("from b")
    router, path = start(config_for(a, b, "model-a"))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0,
                                 timeout=60)
    result: list[Any] = []

    def run() -> None:
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100,
                                    messages=USER) as s:
            result.append(s.get_final_message())

    stream = threading.Thread(target=run)
    stream.start()
    deadline = time.monotonic() + 30
    while not a.chat_requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    transport = router.service.state.upstream._transport
    only_b = {"backends": [{"name": "b", "type": "generic", "url": b.url,
                            "models": ["model-b"]}], "model_aliases": {"sonnet": "model-b"}}
    write(path, only_b)
    assert reload(router)
    stream.join(60)
    assert result and result[0].content[0].text == WORDS  # finished on the old config

    def pooled_to_a() -> list[Any]:
        conns = [c for c in list(transport._active) + [c for cs in transport._idle.values()
                                                       for c in cs]]
        return [c for c in conns if c.origin[2] == a.port and not c.closed]

    deadline = time.monotonic() + 10
    while pooled_to_a() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pooled_to_a() == []
    assert ask(router).content[0].text == "from b"
