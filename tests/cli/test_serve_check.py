"""`continuum serve` / `check` / `--version` argument plumbing (CliRunner), and local-backend
probing when there is no config file."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from continuum_cli.cli import app
from continuum_cli.cli import serve as serve_mod
from continuum_cli.upstream.probe import probe_local_backends
from tests.fakes.scripted_backend import ScriptedBackend

runner = CliRunner()

GOOD = """\
server:
  bind_address: 127.0.0.1:8123
backends:
  - name: b
    type: ollama
    url: http://127.0.0.1:11434
    api_key: "${SECRET_KEY}"
    models: [m]
model_aliases:
  default: m
"""


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("continuum ")


def test_check_valid_json_hides_secrets(tmp_path, monkeypatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("SECRET_KEY", "super-secret-value")
    result = runner.invoke(app, ["check", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["valid"] and data["backends"][0]["url"] == "http://127.0.0.1:11434/v1"
    assert data["backends"][0]["api_key"] == "set"
    assert "super-secret-value" not in result.output


def test_check_invalid_exits_2_with_line(tmp_path, monkeypatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD.replace("bind_address", "bind_adress"))
    monkeypatch.setenv("SECRET_KEY", "x")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert "config.yaml:2" in result.output and "bind_address" in result.output


def test_check_missing_env_var_exits_2(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD)
    result = runner.invoke(app, ["check", "--config", str(path), "--json"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["valid"] is False and "SECRET_KEY" in data["error"]


def test_serve_applies_flags_and_env(tmp_path, monkeypatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("SECRET_KEY", "x")
    seen = {}
    monkeypatch.setattr(serve_mod, "_run", lambda settings, *_: seen.setdefault("s", settings))
    monkeypatch.setenv("CONTINUUM_LOG_FORMAT", "json")
    result = runner.invoke(app, ["serve", "--config", str(path), "--bind", "127.0.0.1:9999",
                                 "--log-level", "DEBUG"])
    assert result.exit_code == 0, result.output
    settings = seen["s"]
    assert settings.server.port == 9999 and settings.logging.level == "debug"
    assert settings.logging.format == "json"


def test_serve_rejects_bad_bind(tmp_path, monkeypatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("SECRET_KEY", "x")
    monkeypatch.setattr(serve_mod, "_run", lambda settings, *_: None)
    result = runner.invoke(app, ["serve", "--config", str(path), "--bind", "nonsense:port"])
    assert result.exit_code == 2 and "--bind" in result.output


def test_probe_finds_an_openai_server() -> None:
    with ScriptedBackend(models=("local-a", "local-b")) as backend:
        results, found = asyncio.run(probe_local_backends(
            candidates=(("ollama", "ollama", backend.port), ("lmstudio", "lmstudio", 1))))
    assert [r.found for r in results] == [True, False]
    assert found[0].name == "ollama" and found[0].models == ("local-a", "local-b")
    assert found[0].url == f"http://127.0.0.1:{backend.port}/v1"


def test_serve_without_config_uses_found_backend(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with ScriptedBackend(models=("found-model",)) as backend:
        monkeypatch.setattr("continuum_cli.upstream.probe.STANDARD_BACKENDS",
                            (("ollama", "ollama", backend.port),))
        import continuum_cli.upstream.probe as probe

        original = probe.probe_local_backends

        async def only_fake(host="127.0.0.1", timeout=1.0, candidates=None):
            return await original(host, timeout, (("ollama", "ollama", backend.port),))

        monkeypatch.setattr(probe, "probe_local_backends", only_fake)
        seen = {}
        monkeypatch.setattr(serve_mod, "_run", lambda settings, *_: seen.setdefault("s", settings))
        result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    settings = seen["s"]
    assert settings.backends[0].models == ("found-model",)
    assert settings.model_aliases == {"default": "found-model"}


@pytest.mark.parametrize("args", [["serve", "--help"], ["check", "--help"]])
def test_help(args) -> None:
    assert runner.invoke(app, args).exit_code == 0


def test_check_warns_on_alias_to_unlisted_model(tmp_path, monkeypatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD.replace("  default: m", "  default: m\n  haiku: ghost-model"))
    monkeypatch.setenv("SECRET_KEY", "x")
    result = runner.invoke(app, ["check", "--config", str(path), "--json"])
    assert result.exit_code == 0
    warnings = json.loads(result.stdout)["warnings"]
    assert warnings == ["model_aliases.haiku -> ghost-model: no backend lists `ghost-model` "
                        "in its models"]
