"""The `state:` config section and the store's life cycle inside the running router."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuum_cli.config.loader import load_config_text
from continuum_cli.errors import ConfigError
from continuum_cli.state.sqlite_store import SQLiteStore
from tests.conftest import basic_config
from tests.redis_server import RedisServer


def test_state_defaults() -> None:
    state = load_config_text("{}").settings.state
    assert (state.path, state.redis_url, state.on_error, state.timeout) == (
        None, None, "open", 0.05)


def test_state_section_parses_durations() -> None:
    text = "state:\n  path: /tmp/x.db\n  redis_url: redis://127.0.0.1:6379/0\n" \
           "  on_error: closed\n  timeout: 200ms\n"
    state = load_config_text(text).settings.state
    assert state.timeout == pytest.approx(0.2)
    assert state.on_error == "closed" and state.redis_url.endswith("/0")


@pytest.mark.parametrize("text, where", [
    ("state:\n  on_error: maybe\n", "state.on_error"),
    ("state:\n  redis_url: http://x\n", "state.redis_url"),
    ("state:\n  timeout: 0\n", "state.timeout"),
    ("state:\n  timeout: soon\n", "state.timeout"),
    ("state:\n  redis: redis://x\n", "state.redis"),
])
def test_state_section_errors_name_the_key_and_line(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(text)
    assert info.value.path == where and info.value.line == 2


def test_router_opens_and_closes_the_sqlite_store(scripted, router_factory,
                                                  tmp_path: Path) -> None:
    path = tmp_path / "state" / "router.db"
    router = router_factory(basic_config(scripted, state={"path": str(path)}))
    store = router.service.state.store
    assert isinstance(store, SQLiteStore) and path.exists()
    router.call(store.kv_put("probe", "k", {"v": 1}))
    router.stop()
    assert store._db is None  # closed by Service.stop()


def test_default_store_lives_in_the_user_data_dir(scripted, router_factory) -> None:
    import os

    router = router_factory(basic_config(scripted))
    store = router.service.state.store
    assert str(store.path).startswith(os.environ["XDG_DATA_HOME"])
    assert store.path.exists()


def test_router_on_redis(scripted, router_factory, redis_server: RedisServer) -> None:
    router = router_factory(basic_config(scripted, state={"redis_url": redis_server.url}))
    store = router.service.state.store
    router.call(store.kv_put("probe", "k", {"v": 1}))
    assert router.call(store.kv_get("probe", "k")) == {"v": 1}


def test_router_starts_while_redis_is_down(scripted, router_factory) -> None:
    from tests.redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    router = router_factory(basic_config(scripted, state={"redis_url": url}))
    import httpx

    assert httpx.get(router.url + "/health").status_code == 200
