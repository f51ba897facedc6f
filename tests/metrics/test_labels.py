"""Pure parts of the metrics: bounded labels, token counts, error kinds, the access rule."""

from __future__ import annotations

import pytest

from continuum_cli.config.loader import validate
from continuum_cli.metrics import Metrics
from continuum_cli.metrics.access import is_loopback, metrics_allowed
from continuum_cli.metrics.labels import (
    OTHER,
    known_models,
    model_label,
    route_label,
    token_counts,
)

SETTINGS = validate({
    "backends": [{"name": "a", "url": "http://x", "models": ["m1"]},
                 {"name": "b", "url": "http://y"}],
    "model_aliases": {"sonnet": "m1", "default": "m2"},
})


def test_known_models_are_configured_discovered_and_alias_names() -> None:
    known = known_models(SETTINGS, {"b": ("m3",), "gone": ("m9",)})
    assert known == {"m1", "m2", "m3", "sonnet", "default"}


@pytest.mark.parametrize(("name", "label"), [
    ("m1", "m1"), ("sonnet", "sonnet"), ("claude-sonnet-4-5", OTHER), ("x" * 500, OTHER),
    ("", ""), (None, ""),
])
def test_model_label(name, label) -> None:
    assert model_label(name, frozenset({"m1", "sonnet"})) == label


def test_route_label() -> None:
    assert route_label("/v1/models", {"/v1/models": 1}) == "/v1/models"
    assert route_label("/v1/models/../../etc", {"/v1/models": 1}) == OTHER


@pytest.mark.parametrize(("usage", "counts"), [
    ({"prompt_tokens": 10, "completion_tokens": 3}, (10, 3)),
    ({"input_tokens": 5, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 1,
      "output_tokens": 2}, (13, 2)),
    ({"input_tokens": "5", "output_tokens": -1}, (0, 0)),
    ({"prompt_tokens": True}, (0, 0)),
    (None, (0, 0)), ([1, 2], (0, 0)),
])
def test_token_counts(usage, counts) -> None:
    assert token_counts(usage) == counts


@pytest.mark.parametrize(("client", "loopback"), [
    ("127.0.0.1:5000", True), ("127.8.9.10:1", True), ("::1:443", True),
    ("::ffff:127.0.0.1:80", True), ("10.0.0.1:80", False), ("192.0.2.2:9", False),
    ("fe80::1%eth0:80", False), ("", False), ("garbage", False),
])
def test_is_loopback(client, loopback) -> None:
    assert is_loopback(client) is loopback


@pytest.mark.parametrize(("config", "client", "allowed"), [
    ({}, "10.0.0.1:80", True),
    ({"api_keys": {"mode": "blocking"}}, "10.0.0.1:80", False),
    ({"api_keys": {"mode": "blocking"}}, "127.0.0.1:80", True),
    ({"api_keys": {"mode": "blocking"}, "server": {"metrics_public": True}}, "10.0.0.1:80",
     True),
])
def test_metrics_allowed(config, client, allowed) -> None:
    assert metrics_allowed(validate(config), client) is allowed


def test_two_routers_in_one_process_do_not_share_series() -> None:
    one, two = Metrics(), Metrics()
    one.observe("/v1/models", 200, "", "", 0.01)
    assert b'route="/v1/models"' in one.render()[0]
    assert b'route="/v1/models"' not in two.render()[0]
