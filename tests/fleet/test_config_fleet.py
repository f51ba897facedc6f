"""`routing:` and the per-backend `weight` / `health_check` keys: defaults and strict errors."""

from __future__ import annotations

import pytest

from continuum_cli.config.loader import load_config_text
from continuum_cli.errors import ConfigError

TEAM = """\
routing:
  strategy: round_robin
  max_attempts: 2
  fallbacks:
    qwen3-coder: qwen2.5-coder:7b
backends:
  - name: gpu-a
    type: vllm
    url: http://gpu-a:8000
    models: [qwen3-coder]
    weight: 2
    health_check: {path: /ready, interval: 500ms, timeout: 1s}
  - name: gpu-b
    type: vllm
    url: http://gpu-b:8000
    models: [qwen3-coder]
"""


def test_team_config() -> None:
    s = load_config_text(TEAM).settings
    assert (s.routing.strategy, s.routing.max_attempts) == ("round_robin", 2)
    assert s.routing.fallbacks == {"qwen3-coder": ("qwen2.5-coder:7b",)}
    a, b = s.backends
    assert (a.weight, a.health_check.path, a.health_check.interval,
            a.health_check.timeout) == (2, "/ready", 0.5, 1.0)
    assert (b.weight, b.health_check.path, b.health_check.interval,
            b.health_check.timeout) == (1, None, 5.0, 2.0)


def test_defaults_without_a_routing_section() -> None:
    s = load_config_text("backends: []\n").settings
    assert (s.routing.strategy, s.routing.max_attempts, s.routing.fallbacks) == (
        "least_outstanding", 3, {})


@pytest.mark.parametrize(("edit", "line", "words"), [
    (("strategy: round_robin", "strategy: random"), 2, "strategy"),
    (("max_attempts: 2", "max_attempts: 0"), 3, "max_attempts"),
    (("max_attempts: 2", "max_atempts: 2"), 3, "max_attempts"),  # did you mean
    (("    weight: 2", "    weight: 0"), 11, "weight"),
    (("    weight: 2", "    wieght: 2"), 11, "weight"),
    (("path: /ready", "path: ready"), 12, "must be a path starting with /"),
    (("interval: 500ms", "interval: often"), 12, "not a duration"),
    (("interval: 500ms", "intervall: 500ms"), 12, "interval"),
    (("qwen3-coder: qwen2.5-coder:7b", "qwen3-coder: [qwen3-coder]"), None,
     "lists itself as a fallback"),
])
def test_strict_errors(edit: tuple[str, str], line: int | None, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(TEAM.replace(*edit))
    text = str(info.value) + (info.value.hint or "")
    assert words in text, text
    if line is not None:
        assert info.value.line == line, str(info.value)


def test_continuum_check_shows_routing(tmp_path) -> None:
    from typer.testing import CliRunner

    from continuum_cli.cli import app

    path = tmp_path / "config.yaml"
    path.write_text(TEAM.replace("qwen3-coder: qwen2.5-coder:7b", "qwen3-coder: [qwen2.5]"))
    result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # as printed, without the terminal's wrapping
    assert "routing: round_robin, up to 2 backend(s) per request, fallbacks qwen3-coder -> " \
           "qwen2.5" in text
    assert "routing.fallbacks.qwen3-coder -> qwen2.5: no backend lists `qwen2.5`" in text
    data = __import__("json").loads(
        CliRunner().invoke(app, ["check", "--config", str(path), "--json"]).output)
    assert data["routing"]["strategy"] == "round_robin"
    assert data["backends"][0]["weight"] == 2
    assert data["backends"][0]["health_check"] == {"path": "/ready", "interval": 0.5,
                                                   "timeout": 1.0}
