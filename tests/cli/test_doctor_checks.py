"""The pure verdicts behind `continuum doctor`: every status and every fix text, by table."""

from __future__ import annotations

import pytest

from continuum_cli.config.loader import validate
from continuum_cli.config.models import Backend, Settings
from continuum_cli.doctor import checks, client
from continuum_cli.doctor.model import HttpOutcome
from continuum_cli.doctor.runner import router_key
from continuum_cli.errors import ConfigError, ContinuumError, ProviderError

ROUTER = "http://127.0.0.1:8000"
BACKEND = Backend(name="gpu", type="vllm", url="http://127.0.0.1:9000", models=("my-model",))
MODELS_OK = HttpOutcome(200, {"object": "list", "data": [{"id": "my-model"}]})


def settings(**data: object) -> Settings:
    base = {"backends": [{"name": "gpu", "type": "vllm", "url": "http://127.0.0.1:9000",
                          "models": ["my-model"]}]}
    return validate({**base, **data})


@pytest.mark.parametrize(("text", "env", "missing"), [
    pytest.param("a: ${A}\nb: ${B:-x}\n", {}, ["A"], id="default_is_not_missing"),
    pytest.param("a: ${A}\n# b: ${B}\n", {}, ["A"], id="comment_line_ignored"),
    pytest.param("a: ${A}-${A} ${C}\n", {"C": "1"}, ["A"], id="named_once"),
    pytest.param("a: plain\n", {}, [], id="none"),
])
def test_missing_vars(text: str, env: dict[str, str], missing: list[str]) -> None:
    assert checks.missing_vars(text, env) == missing


def test_config_error_names_every_missing_variable() -> None:
    exc = ConfigError("environment variable A is not set (used by `x`)", file="c.yaml", line=2)
    result = checks.config_error(exc, ["A", "B"])
    assert result.status == "fail"
    assert result.evidence == "c.yaml: environment variables A, B not set"
    assert result.fix == "export A=...; export B=..."


@pytest.mark.parametrize(("models", "health", "status", "evidence", "fix"), [
    pytest.param(HttpOutcome(error="connection refused"), None, "fail", "connection refused",
                 "start the vllm server at http://127.0.0.1:9000, or fix `backends[0].url`",
                 id="down"),
    pytest.param(HttpOutcome(503, {}), None, "warn", "loading its model (HTTP 503), not down",
                 "wait until the model has loaded", id="loading_models"),
    pytest.param(MODELS_OK, HttpOutcome(503, {}), "warn", "loading its model", "wait until",
                 id="loading_health"),
    pytest.param(HttpOutcome(401, {}), None, "fail", "rejected the key",
                 "set backends[0].api_key", id="bad_backend_key"),
    pytest.param(HttpOutcome(404, "nope"), None, "fail",
                 "bad base URL: GET http://127.0.0.1:9000/v1/models answered HTTP 404",
                 "point `backends[0].url` at the server root", id="bad_base_url"),
    pytest.param(HttpOutcome(200, "<html>"), None, "fail", "without a model list",
                 "ending in /v1", id="not_openai"),
    pytest.param(HttpOutcome(200, {"data": [{"id": "other"}]}), None, "warn",
                 "does not serve my-model; it serves other", "load my-model in the backend",
                 id="model_not_served"),
    pytest.param(MODELS_OK, HttpOutcome(200, {}), "pass", "ready, serves my-model", None,
                 id="ready"),
])
def test_backend_verdicts(models: HttpOutcome, health: HttpOutcome | None, status: str,
                          evidence: str, fix: str | None) -> None:
    result, _ = checks.backend(0, BACKEND, "http://127.0.0.1:9000/v1", models, health)
    assert result.status == status
    assert evidence in result.evidence
    assert (fix in (result.fix or "")) if fix else result.fix is None


def test_backend_reports_what_it_serves() -> None:
    _, served = checks.backend(0, BACKEND, "http://h/v1", MODELS_OK, None)
    assert served == ["my-model"]


@pytest.mark.parametrize(("aliases", "label", "status", "evidence"), [
    pytest.param({"haiku": "my-model"}, "haiku", "pass",
                 "claude-haiku-4-5-20251001 -> my-model on gpu (family alias `haiku`)",
                 id="family"),
    pytest.param({"default": "my-model"}, "opus", "pass",
                 "claude-opus-5-5 -> my-model on gpu (`default` alias)", id="default"),
    pytest.param({"claude-sonnet-4-5": "my-model"}, "sonnet", "pass", "(exact alias)",
                 id="exact"),
    pytest.param({}, "haiku", "fail", "Model claude-haiku-4-5-20251001 not found",
                 id="seed_not_found"),
    pytest.param({"haiku": "my-model"}, "other claude-*", "warn",
                 "Model claude-next-1 not found", id="unknown_name_without_default"),
])
def test_alias_verdicts(aliases: dict[str, str], label: str, status: str,
                        evidence: str) -> None:
    model, required = next((m, r) for lab, m, r in checks.CLAUDE_NAMES if lab == label)
    result = checks.alias(label, model, required, settings(model_aliases=aliases), {})
    assert result.status == status
    assert evidence in result.evidence
    if status != "pass":
        assert "add at least a `default:` entry" in (result.fix or "")
        assert "continuum alias set default my-model" in (result.fix or "")


def test_alias_to_a_model_no_backend_serves() -> None:
    result = checks.alias("haiku", "claude-haiku-4-5-20251001", True,
                          settings(model_aliases={"haiku": "ghost"}), {})
    assert result.status == "fail"
    assert "`ghost`, which no backend serves" in (result.fix or "")


def test_alias_target_the_backend_does_not_list() -> None:
    s = validate({"backends": [{"name": "one", "url": "http://h:1"}],
                  "model_aliases": {"default": "ghost"}})
    result = checks.alias("opus", "claude-opus-5-5", True, s, {"one": ["real"]})
    assert result.status == "warn"
    assert result.fix == "map it to one of: real"


MESSAGE = {"type": "message", "content": [{"type": "text", "text": "Hello there"}]}
UP = HttpOutcome(200, {"status": "ok"})


@pytest.mark.parametrize(("health", "reply", "status", "evidence", "fix"), [
    pytest.param(HttpOutcome(error="connection refused"), None, "fail",
                 "not reachable at http://127.0.0.1:8000: connection refused",
                 "start it with `continuum serve`", id="down"),
    pytest.param(UP, HttpOutcome(200, MESSAGE, elapsed_ms=12), "pass",
                 "-> 200 in 12 ms: 'Hello there'", None, id="ok"),
    pytest.param(UP, HttpOutcome(401, {"type": "error", "error": {"message": "invalid API key"}}),
                 "fail", "HTTP 401: invalid API key", "api_keys", id="unauthorized"),
    pytest.param(UP, HttpOutcome(404, {"error": {"message": "Model my-model not found"}}),
                 "fail", "Model my-model not found", "model_aliases", id="model_not_found"),
    pytest.param(UP, HttpOutcome(529, {"error": {"message": "backend gpu: refused"}}), "fail",
                 "HTTP 529", "the backend did not answer", id="backend_down"),
])
def test_router_verdicts(health: HttpOutcome, reply: HttpOutcome | None, status: str,
                         evidence: str, fix: str | None) -> None:
    result = checks.router(ROUTER, health, reply, "my-model")
    assert result.status == status
    assert evidence in result.evidence
    assert (fix in (result.fix or "")) if fix else result.fix is None


FASTAPI_422 = {"detail": [{"loc": ["body", "tools", 0, "input_schema"], "msg": "field required",
                           "type": "missing"}]}


@pytest.mark.parametrize(("reply", "status"), [
    pytest.param(HttpOutcome(422, FASTAPI_422), "fail", id="seed_422"),
    pytest.param(HttpOutcome(400, {"error": {"message": "tools.0.input_schema: Field "
                                                        "required"}}), "fail", id="400_schema"),
    pytest.param(HttpOutcome(200, {"input_tokens": 9}), "pass", id="accepted"),
    pytest.param(HttpOutcome(error="connection refused"), "skip", id="router_down"),
    pytest.param(HttpOutcome(401, {"error": {"message": "no key"}}), "warn", id="untested"),
])
def test_server_tool_verdicts(reply: HttpOutcome, status: str) -> None:
    result = checks.server_tool(ROUTER, reply)
    assert result.status == status
    if status == "fail":
        assert "input_schema" in result.evidence
        assert "update continuum" in (result.fix or "")


@pytest.mark.parametrize(("bind", "mode", "status"), [
    pytest.param("127.0.0.1:8000", "permissive", "pass", id="loopback"),
    pytest.param("0.0.0.0:8000", "permissive", "warn", id="open_and_permissive"),
    pytest.param("0.0.0.0:8000", "blocking", "pass", id="open_but_blocking"),
    pytest.param("[::1]:8000", "permissive", "pass", id="ipv6_loopback"),
])
def test_safety(bind: str, mode: str, status: str) -> None:
    keys = {"mode": mode, "keys": [{"key": "k"}] if mode == "blocking" else []}
    result = checks.safety(settings(server={"bind_address": bind}, api_keys=keys))
    assert result.status == status
    if status == "warn":
        assert "bind to 127.0.0.1:8000" in (result.fix or "")


@pytest.mark.parametrize(("value", "status", "evidence"), [
    pytest.param(None, "warn", "not set", id="unset"),
    pytest.param(ROUTER + "/anthropic/v1/messages", "fail", "ends in /v1/messages",
                 id="trailing_v1_messages"),
    pytest.param(ROUTER + "/v1", "fail", "ends in /v1;", id="trailing_v1"),
    pytest.param(ROUTER, "fail", "does not end in /anthropic", id="no_anthropic"),
    pytest.param("http://127.0.0.1:9999/anthropic", "fail", "another address", id="elsewhere"),
    pytest.param("http://localhost:8000/anthropic/", "pass", "this router", id="localhost"),
    pytest.param(ROUTER + "/anthropic", "pass", "this router", id="exact"),
])
def test_base_url(value: str | None, status: str, evidence: str) -> None:
    result = client.base_url(value, ROUTER)
    assert result.status == status
    assert evidence in result.evidence
    if status != "pass":
        assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8000/anthropic" in (result.fix or "")


BLOCKING = {"mode": "blocking", "keys": [
    {"key": "good-key", "name": "alice"},
    {"key": "old-key", "name": "bob", "expires_at": "2001-01-01T00:00:00Z"}]}


@pytest.mark.parametrize(("env", "keys", "status", "text"), [
    pytest.param({}, None, "warn", "Claude Code will ask you to log in", id="unset"),
    pytest.param({"ANTHROPIC_API_KEY": "x"}, None, "pass", "any value works", id="permissive"),
    pytest.param({"ANTHROPIC_API_KEY": "good-key"}, BLOCKING, "pass", "key `alice`",
                 id="accepted"),
    pytest.param({"ANTHROPIC_AUTH_TOKEN": "good-key"}, BLOCKING, "pass",
                 "ANTHROPIC_AUTH_TOKEN accepted", id="auth_token"),
    pytest.param({"ANTHROPIC_API_KEY": "wrong"}, BLOCKING, "fail", "answers 401",
                 id="wrong_key"),
    pytest.param({"ANTHROPIC_API_KEY": "old-key"}, BLOCKING, "fail", "answers 401",
                 id="expired_key"),
])
def test_api_key(env: dict[str, str], keys: dict[str, object] | None, status: str,
                 text: str) -> None:
    s = settings(api_keys=keys) if keys else settings()
    result = client.api_key(env, s, s.api_keys.keys)
    assert result.status == status
    assert text in result.evidence
    assert "good-key" not in result.evidence + (result.fix or "")
    if status == "fail":
        assert result.fix == ("set ANTHROPIC_API_KEY to an enabled, unexpired key from "
                              "api_keys (keys: alice, bob)")


def test_billing_header_advice() -> None:
    assert client.billing_header({"CLAUDE_CODE_ATTRIBUTION_HEADER": "0"}).status == "pass"
    result = client.billing_header({})
    assert result.status == "warn"
    assert "export CLAUDE_CODE_ATTRIBUTION_HEADER=0" in (result.fix or "")


@pytest.mark.parametrize(("args", "status"), [
    pytest.param((None, None, None), "warn", id="missing"),
    pytest.param(("/bin/claude", None, "exit 1"), "warn", id="broken"),
    pytest.param(("/bin/claude", "2.1.332 (Claude Code)", None), "pass", id="found"),
])
def test_claude_cli(args: tuple[str | None, str | None, str | None], status: str) -> None:
    assert client.claude_cli(*args).status == status


def test_web_search_rate_limit_is_explained_as_the_seed_does() -> None:
    exc = ProviderError("brave rate limit hit (HTTP 429)", error_code="too_many_requests")
    result = client.web_search_error("brave", exc)
    assert result.status == "warn"
    assert "rate limit" in result.evidence and "free tier may be capped at a low QPS" in \
        result.evidence
    assert result.fix == "upgrade the plan or switch providers (web_search.provider)"


def test_web_search_bad_key() -> None:
    exc = ProviderError("brave rejected the API key (HTTP 422)",
                        hint="set BRAVE_API_KEY to a valid brave API key (web_search.api_key)")
    result = client.web_search_error("brave", exc)
    assert result.status == "fail"
    assert result.fix == ("verify the provider's API key is valid: set BRAVE_API_KEY to a "
                          "valid brave API key (web_search.api_key)")


@pytest.mark.parametrize(("keys", "env", "expected_key"), [
    pytest.param(None, {}, client.PLACEHOLDER_KEY, id="permissive_placeholder"),
    pytest.param(None, {"ANTHROPIC_API_KEY": "mine"}, None, id="permissive_keeps_mine"),
    pytest.param(BLOCKING, {}, "good-key", id="blocking_uses_configured"),
    pytest.param(BLOCKING, {"ANTHROPIC_API_KEY": "wrong"}, "good-key", id="blocking_replaces"),
    pytest.param(BLOCKING, {"ANTHROPIC_AUTH_TOKEN": "good-key"}, None, id="blocking_keeps"),
])
def test_client_env(keys: dict[str, object] | None, env: dict[str, str],
                    expected_key: str | None) -> None:
    s = settings(api_keys=keys) if keys else settings()
    wanted = client.client_env(s, ROUTER, env, s.api_keys.keys)
    assert wanted["ANTHROPIC_BASE_URL"] == ROUTER + "/anthropic"
    assert wanted["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0"
    assert wanted.get("ANTHROPIC_API_KEY") == expected_key


def test_client_env_blocking_without_a_usable_key() -> None:
    s = settings(api_keys={"mode": "blocking", "keys": [{"key": "k", "enabled": False}]})
    with pytest.raises(ContinuumError, match="no enabled, unexpired key"):
        client.client_env(s, ROUTER, {}, s.api_keys.keys)


@pytest.mark.parametrize(("bind", "explicit", "url"), [
    pytest.param("0.0.0.0:8000", None, "http://127.0.0.1:8000", id="wildcard"),
    pytest.param("[::]:9000", None, "http://[::1]:9000", id="ipv6_wildcard"),
    pytest.param("10.0.0.5:8000", None, "http://10.0.0.5:8000", id="lan"),
    pytest.param("0.0.0.0:8000", "http://h:1/anthropic/", "http://h:1", id="explicit_base"),
])
def test_router_url(bind: str, explicit: str | None, url: str) -> None:
    assert client.router_url(settings(server={"bind_address": bind}), explicit) == url


def test_router_key_prefers_a_key_the_router_accepts() -> None:
    s = settings(api_keys=BLOCKING)
    keys = s.api_keys.keys
    assert router_key(s, {"ANTHROPIC_API_KEY": "wrong"}, keys) == "good-key"
    assert router_key(s, {"ANTHROPIC_API_KEY": "good-key"}, keys) == "good-key"
    assert router_key(settings(), {"ANTHROPIC_API_KEY": "x"}, ()) == "x"
    assert router_key(settings(), {}, ()) == "continuum-doctor"
