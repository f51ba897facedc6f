"""Pure units: model routing and aliases, API-key checks, the error tree and envelopes."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

from continuum_cli import errors
from continuum_cli.auth import authenticate, presented_key
from continuum_cli.config.loader import validate
from continuum_cli.errors import AuthenticationFailed, ModelNotFound, envelope
from continuum_cli.routing import match_alias, resolve

SETTINGS = validate({
    "backends": [
        {"name": "a", "type": "vllm", "url": "http://a:8000", "models": ["big", "small"]},
        {"name": "b", "type": "ollama", "url": "http://b:11434", "models": ["other"]},
    ],
    "model_aliases": {"haiku": "small", "sonnet": "big", "opus": "big", "default": "other",
                      "claude-sonnet-4-5": "small", "gpt-4o": "other"},
})


@pytest.mark.parametrize("model,backend,target,rule", [
    ("big", "a", "big", "backend"),
    ("other", "b", "other", "backend"),
    ("claude-haiku-4-5-20251001", "a", "small", "family:haiku"),
    ("claude-3-5-haiku-latest", "a", "small", "family:haiku"),
    ("CLAUDE-HAIKU-4-5", "a", "small", "family:haiku"),
    ("claude-opus-4-1", "a", "big", "family:opus"),
    ("claude-opus-5-5", "a", "big", "family:opus"),
    ("claude-sonnet-4-5", "a", "small", "exact"),  # exact beats family
    ("claude-sonnet-4-6", "a", "big", "family:sonnet"),
    ("gpt-4o", "b", "other", "exact"),
    ("something-else", "b", "other", "default"),
], ids=lambda v: str(v))
def test_resolve(model: str, backend: str, target: str, rule: str) -> None:
    route = resolve(model, SETTINGS)
    assert (route.backend.name, route.upstream_model, route.rule) == (backend, target, rule)
    assert route.requested == model


def test_unknown_model_without_default_is_model_not_found() -> None:
    s = validate({"backends": [{"name": "a", "url": "http://a", "models": ["m"]}],
                  "model_aliases": {"haiku": "m"}})
    with pytest.raises(ModelNotFound) as info:
        resolve("claude-sonnet-4-5", s)
    assert info.value.message == "Model claude-sonnet-4-5 not found"
    assert info.value.status == 404 and info.value.error_type == "not_found_error"


def test_discovered_models_are_routable() -> None:
    s = validate({"backends": [{"name": "a", "url": "http://a"}, {"name": "b", "url": "http://b"}]})
    route = resolve("qwen", s, {"b": ("qwen",)})
    assert route.backend.name == "b" and route.rule == "backend"


def test_single_backend_without_models_takes_any_name() -> None:
    s = validate({"backends": [{"name": "only", "url": "http://a"}]})
    assert resolve("whatever", s).backend.name == "only"


def test_alias_to_unserved_model_says_so() -> None:
    s = validate({"backends": [{"name": "a", "url": "http://a", "models": ["m"]},
                               {"name": "b", "url": "http://b", "models": ["n"]}],
                  "model_aliases": {"default": "ghost"}})
    with pytest.raises(ModelNotFound) as info:
        resolve("claude-haiku-4-5", s)
    assert "ghost" in (info.value.hint or "")


def test_match_alias_precedence() -> None:
    aliases = {"haiku": "h", "default": "d", "claude-haiku-4-5": "exact"}
    assert match_alias("claude-haiku-4-5", aliases).rule == "exact"
    assert match_alias("claude-haiku-9", aliases).rule == "family:haiku"
    assert match_alias("x", aliases).rule == "default"
    assert match_alias("x", {}) is None


KEYS = validate({"api_keys": {"mode": "blocking", "keys": [
    {"key": "good-key", "name": "alice"},
    {"key": "off-key", "name": "bob", "enabled": False},
    {"key": "old-key", "name": "carol", "expires_at": "2020-01-01T00:00:00Z"},
]}}).api_keys


@pytest.mark.parametrize("headers,expected", [
    ({"x-api-key": "good-key"}, "alice"),
    ({"authorization": "Bearer good-key"}, "alice"),
    ({"authorization": "bearer good-key"}, "alice"),
])
def test_blocking_accepts_valid_keys(headers, expected) -> None:
    assert authenticate(headers, KEYS).name == expected


@pytest.mark.parametrize("headers", [
    {}, {"x-api-key": "wrong"}, {"x-api-key": "off-key"}, {"x-api-key": "old-key"},
    {"authorization": "Basic good-key"},
], ids=["none", "wrong", "disabled", "expired", "basic"])
def test_blocking_rejects(headers) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        authenticate(headers, KEYS)
    for secret in ("good-key", "off-key", "old-key", "wrong"):
        assert secret not in info.value.message


def test_permissive_passes_everything() -> None:
    s = validate({}).api_keys
    assert authenticate({}, s).name == "anonymous"
    assert authenticate({"x-api-key": "anything"}, s).name == "anonymous"


def test_future_expiry_is_valid() -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    s = validate({"api_keys": {"mode": "blocking", "keys": [{"key": "k", "expires_at": future}]}})
    assert authenticate({"x-api-key": "k"}, s.api_keys).name == "unnamed"


def test_presented_key_prefers_x_api_key() -> None:
    assert presented_key({"x-api-key": "a", "authorization": "Bearer b"}) == "a"


ANTHROPIC_TYPES = {"invalid_request_error", "authentication_error", "permission_error",
                   "not_found_error", "request_too_large", "rate_limit_error", "api_error",
                   "overloaded_error", "timeout_error", "billing_error"}


def _api_error_classes() -> list[type[errors.ApiError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, errors.ApiError)]


@pytest.mark.parametrize("cls", _api_error_classes(), ids=lambda c: c.__name__)
def test_every_api_error_has_valid_envelopes(cls: type[errors.ApiError]) -> None:
    exc = cls("m") if cls not in (errors.ModelNotFound, errors.PromptTooLong) else (
        cls("m") if cls is errors.ModelNotFound else cls(10, 5))
    status, body = envelope(exc)
    assert body["type"] == "error" and body["error"]["type"] in ANTHROPIC_TYPES
    assert isinstance(body["error"]["message"], str) and status == cls.status
    status, body = envelope(exc, "openai")
    assert set(body) == {"error"} and body["error"]["code"] == status


def test_foreign_exceptions_become_opaque_500() -> None:
    status, body = envelope(KeyError("secret-internal-detail"))
    assert status == 500 and "secret-internal-detail" not in str(body)


def test_prompt_too_long_wording() -> None:
    exc = errors.PromptTooLong(2031, 512)
    assert exc.message.startswith("prompt is too long: 2031 tokens > 512 maximum")
