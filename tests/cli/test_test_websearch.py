"""`continuum test-websearch`: one real search against a local fake provider, through Typer's
CliRunner and as a subprocess. Exit 0 results, 1 provider error, 2 config error."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from continuum_cli.cli import app
from tests.fakes.search_providers import FakeSearchServer

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def brave() -> Iterator[FakeSearchServer]:
    with FakeSearchServer("brave") as fake:
        yield fake


def config_for(tmp_path: Path, base_url: str, provider: str = "brave",
               enabled: bool = True) -> str:
    env = {"brave": "BRAVE_API_KEY", "serper": "SERPER_API_KEY", "exa": "EXA_API_KEY"}[provider]
    path = tmp_path / "config.yaml"
    path.write_text(
        "web_search:\n"
        f"  enabled: {'true' if enabled else 'false'}\n"
        f"  provider: {provider}\n"
        f'  api_key: "${{{env}}}"\n'
        f"  base_url: {base_url}\n"
        "  timeout: 2s\n")
    return str(path)


def run(*args: str) -> object:
    return runner.invoke(app, ["test-websearch", *args], env={"COLUMNS": "200"})


def test_json_results(tmp_path, brave, monkeypatch):
    monkeypatch.setenv("BRAVE_API_KEY", brave.key)
    result = run("python asyncio", "--json", "--count", "2",
                 "--config", config_for(tmp_path, brave.base_url))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["provider"] == "brave" and data["query"] == "python asyncio"
    assert [r["rank"] for r in data["results"]] == [1, 2]
    assert data["results"][0]["url"] == "https://docs.python.org/3/library/asyncio.html"
    assert data["results"][0]["page_age"] == "March 3, 2025"
    assert data["rate_limit"]["remaining"] == "0, 14000"
    assert data["latency_ms"] > 0
    assert brave.requests[0].params["count"] == "2"
    assert brave.key not in result.output


def test_table_latency_and_rate_limit(tmp_path, brave, monkeypatch):
    monkeypatch.setenv("BRAVE_API_KEY", brave.key)
    result = run("python asyncio", "--config", config_for(tmp_path, brave.base_url))
    assert result.exit_code == 0, result.output
    for header in ("#", "title", "url", "age", "snippet"):
        assert header in result.stdout
    assert "Asyncio in depth" in result.stdout
    assert "https://blog.example.com/posts/asyncio" in result.stdout
    assert "3 result(s) from brave in" in result.stderr
    assert "remaining: 0, 14000" in result.stderr


def test_provider_from_the_command_line(tmp_path, monkeypatch):
    with FakeSearchServer("exa") as exa:
        monkeypatch.setenv("EXA_API_KEY", exa.key)
        result = run("q", "--provider", "exa", "--json",
                     "--config", config_for(tmp_path, exa.base_url, provider="exa"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["provider"] == "exa" and exa.requests[0].path == "/search"


def test_disabled_search_still_runs_with_a_note(tmp_path, brave, monkeypatch):
    monkeypatch.setenv("BRAVE_API_KEY", brave.key)
    result = run("q", "--config", config_for(tmp_path, brave.base_url, enabled=False))
    assert result.exit_code == 0, result.output
    assert "web_search.enabled is false" in result.stderr


def test_empty_answer_is_not_an_error(tmp_path, brave, monkeypatch):
    brave.mode = "empty"
    monkeypatch.setenv("BRAVE_API_KEY", brave.key)
    result = run("q", "--config", config_for(tmp_path, brave.base_url))
    assert result.exit_code == 0 and "no results" in result.stderr


def test_bad_key_explains_the_fix(tmp_path, brave, monkeypatch):
    monkeypatch.setenv("BRAVE_API_KEY", "wrong-key-555")
    result = run("q", "--config", config_for(tmp_path, brave.base_url))
    assert result.exit_code == 1
    assert "rejected the API key" in result.stderr and "BRAVE_API_KEY" in result.stderr
    assert "wrong-key-555" not in result.output


def test_rate_limit_explains_like_the_troubleshooting_guide(tmp_path, brave, monkeypatch):
    brave.mode = "rate_limited"
    monkeypatch.setenv("BRAVE_API_KEY", brave.key)
    result = run("q", "--config", config_for(tmp_path, brave.base_url))
    assert result.exit_code == 1
    assert "HTTP 429" in result.stderr and "rate limit" in result.stderr
    assert "upgrade the plan or switch providers" in result.stderr
    assert len(brave.requests) == 2  # one retry first


def test_rate_limit_json(tmp_path, brave, monkeypatch):
    brave.mode = "rate_limited"
    monkeypatch.setenv("BRAVE_API_KEY", brave.key)
    result = run("q", "--json", "--config", config_for(tmp_path, brave.base_url))
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["error_code"] == "too_many_requests"
    assert data["status"] == 429


def test_network_failure(tmp_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("BRAVE_API_KEY", "k")
    result = run("q", "--config", config_for(tmp_path, f"http://127.0.0.1:{port}"))
    assert result.exit_code == 1
    assert "could not reach brave" in result.stderr and "network" in result.stderr


def test_missing_key_is_a_config_error(tmp_path, brave):
    path = tmp_path / "config.yaml"
    path.write_text(f"web_search:\n  provider: brave\n  base_url: {brave.base_url}\n")
    result = run("q", "--config", str(path))
    assert result.exit_code == 2
    assert "no API key" in result.stderr and "export BRAVE_API_KEY" in result.stderr
    assert brave.requests == []


def test_other_provider_needs_its_own_key(tmp_path, brave, monkeypatch):
    monkeypatch.setenv("BRAVE_API_KEY", brave.key)
    result = run("q", "--provider", "serper", "--json",
                 "--config", config_for(tmp_path, brave.base_url))
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["error_code"] == "config" and "SERPER_API_KEY" in data["hint"]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        pytest.param(["--provider", "bing"], "--provider must be one of", id="unknown-provider"),
        pytest.param(["--config", "/nonexistent/config.yaml"], "", id="missing-file"),
    ],
)
def test_config_errors_exit_2(args, text):
    result = run("q", *args)
    assert result.exit_code == 2 and text in result.output


def test_invalid_config_file_exits_2(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("web_search:\n  provider: google\n")
    assert run("q", "--config", str(path)).exit_code == 2


def _subprocess(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "continuum_cli", "test-websearch", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def test_subprocess_results_and_errors(tmp_path, brave):
    config = config_for(tmp_path, brave.base_url)
    ok = _subprocess(["python asyncio", "--json", "--config", config],
                     {"BRAVE_API_KEY": brave.key})
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["results"]) == 3
    bad = _subprocess(["python asyncio", "--config", config], {"BRAVE_API_KEY": "nope-123"})
    assert bad.returncode == 1 and "BRAVE_API_KEY" in bad.stderr and "nope-123" not in bad.stderr
    missing = _subprocess(["q", "--config", config], {})
    assert missing.returncode == 2
