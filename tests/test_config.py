"""config.yaml: the seed example, ${VAR} expansion, strict keys with line numbers, discovery."""

from __future__ import annotations

import pytest

from continuum_cli.backends.profiles import normalize_base_url
from continuum_cli.config.loader import find_config, load_config, load_config_text
from continuum_cli.config.models import parse_duration, parse_size, split_bind_address
from continuum_cli.errors import ConfigError

SEED = """\
server:
  bind_address: 0.0.0.0:8000
backends:
  - name: my-self-hosted
    type: vllm # or ollama | llamacpp | lmstudio | mlxcel | generic
    url: http://localhost:11434
    api_key: "${BACKEND_API_KEY}"
    models:
      - my-model
web_search:
  enabled: true
  provider: brave # serper | brave | exa
  api_key: "${BRAVE_API_KEY}"
# Rewrite Claude Code's internal haiku / sonnet / opus calls so they
# reach your self-hosted model.
model_aliases:
  haiku: my-model
  sonnet: my-model
  opus: my-model
  default: my-model
"""
ENV = {"BACKEND_API_KEY": "backend-secret", "BRAVE_API_KEY": "brave-secret"}


def test_seed_example_loads_as_written() -> None:
    s = load_config_text(SEED, env=ENV).settings
    assert s.server.host == "0.0.0.0" and s.server.port == 8000
    backend = s.backends[0]
    assert (backend.name, backend.type, backend.api_key) == ("my-self-hosted", "vllm",
                                                             "backend-secret")
    assert backend.models == ("my-model",)
    assert normalize_base_url(backend.url, backend.type) == "http://localhost:11434/v1"
    assert s.web_search.enabled and s.web_search.provider == "brave"
    assert s.web_search.api_key == "brave-secret"
    assert s.model_aliases == {"haiku": "my-model", "sonnet": "my-model", "opus": "my-model",
                               "default": "my-model"}


def test_unset_variable_names_variable_key_path_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(SEED, env={"BRAVE_API_KEY": "x"})
    err = info.value
    assert "BACKEND_API_KEY" in err.message and err.path == "backends[0].api_key"
    assert err.line == 7


def test_default_expansion_and_inline_use() -> None:
    text = ('backends:\n  - name: b\n    url: "http://${HOST:-127.0.0.1}:${PORT}/v1"\n'
            '    models: [m]\n')
    s = load_config_text(text, env={"PORT": "9000"}).settings
    assert s.backends[0].url == "http://127.0.0.1:9000/v1"


@pytest.mark.parametrize("typo,line,suggestion", [
    ("bind_adress", 2, "bind_address"),
    ("modles", 8, "models"),
], ids=["server-key", "backend-key"])
def test_unknown_key_has_line_and_suggestion(typo: str, line: int, suggestion: str) -> None:
    original = "bind_address" if typo == "bind_adress" else "models"
    text = SEED.replace(f"{original}:", f"{typo}:", 1)
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env=ENV)
    assert info.value.line == line
    assert f"did you mean `{suggestion}`" in info.value.message
    assert typo in info.value.message


def test_wrong_type_names_key_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(SEED.replace("type: vllm", "type: vlm"), env=ENV)
    assert info.value.path == "backends[0].type" and info.value.line == 5


def test_enabled_web_search_without_key_is_an_error() -> None:
    text = "web_search:\n  enabled: true\n  provider: serper\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env={})
    assert "SERPER_API_KEY" in info.value.message


def test_secret_values_never_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(SEED.replace("type: vllm", "type: 42"), env=ENV)
    assert "backend-secret" not in str(info.value) and "brave-secret" not in str(info.value)


def test_discovery_order(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config() is None or not str(find_config()).startswith(str(tmp_path))
    local = tmp_path / "config.yaml"
    local.write_text("server:\n  bind_address: 127.0.0.1:9001\n")
    assert find_config() == local
    env_file = tmp_path / "env.yaml"
    env_file.write_text("server:\n  bind_address: 127.0.0.1:9002\n")
    monkeypatch.setenv("CONTINUUM_CONFIG", str(env_file))
    assert load_config().settings.server.port == 9002
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("server:\n  bind_address: 127.0.0.1:9003\n")
    assert load_config(str(explicit)).settings.server.port == 9003
    with pytest.raises(ConfigError):
        load_config(str(tmp_path / "missing.yaml"))


def test_user_config_dir_is_last(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    user = tmp_path / "xdg" / "continuum" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("server:\n  bind_address: 127.0.0.1:9004\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_config().settings.server.port == 9004


@pytest.mark.parametrize("value,seconds", [("10s", 10), ("250ms", 0.25), ("2m", 120), (5, 5)])
def test_durations(value, seconds) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value,size", [("64MiB", 64 * 2**20), ("16 KiB", 16384), (100, 100)])
def test_sizes(value, size) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value,pair", [
    ("0.0.0.0:8000", ("0.0.0.0", 8000)), ("[::1]:9000", ("::1", 9000)),
    ("8080", ("127.0.0.1", 8080))])
def test_bind_address(value, pair) -> None:
    assert split_bind_address(value) == pair


@pytest.mark.parametrize("kind,url,base", [
    ("ollama", "http://host:11434", "http://host:11434/v1"),
    ("vllm", "http://host:8000/v1/", "http://host:8000/v1"),
    ("generic", "host:1234/openai/v1", "http://host:1234/openai/v1"),
    ("llamacpp", "http://h:8080/v1/chat/completions", "http://h:8080/v1"),
])
def test_base_url_conventions(kind, url, base) -> None:
    assert normalize_base_url(url, kind) == base


def test_duplicate_key_is_an_error_with_both_lines() -> None:
    text = "server:\n  bind_address: 127.0.0.1:1\n  bind_address: 127.0.0.1:2\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env={})
    assert info.value.line == 3 and "duplicate key `server.bind_address`" in info.value.message
    assert "line 2" in info.value.message


def test_models_as_a_single_string() -> None:
    s = load_config_text("backends:\n  - name: b\n    url: http://h\n    models: m1\n",
                         env={}).settings
    assert s.backends[0].models == ("m1",)
    with pytest.raises(ConfigError) as info:
        load_config_text("backends:\n  - name: b\n    url: http://h\n    models: 3\n", env={})
    assert "list of model names" in info.value.message and info.value.line == 4
