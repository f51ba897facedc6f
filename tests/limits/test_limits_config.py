"""Strict config for limits, budgets, pricing: bad values name the key path and the line."""

from __future__ import annotations

import pytest

from continuum_cli.auth import authenticate
from continuum_cli.config.loader import load_config_text
from continuum_cli.errors import ConfigError

KEY = "api_keys:\n  mode: blocking\n  keys:\n    - key: k1\n      name: alice\n"


@pytest.mark.parametrize("tail, path, line", [
    ("      limits: {requests_per_minute: 0}\n",
     "api_keys.keys[0].limits.requests_per_minute", 6),
    ("      limits:\n        concurrent_requests: -2\n",
     "api_keys.keys[0].limits.concurrent_requests", 7),
    ("      limits: {input_tokens_per_minute: 1.5}\n",
     "api_keys.keys[0].limits.input_tokens_per_minute", 6),
    ("      limits: {requests_per_hour: 5}\n",
     "api_keys.keys[0].limits.requests_per_hour", 6),
    ("      budgets:\n        - {period: daily, tokens: 0}\n",
     "api_keys.keys[0].budgets[0].tokens", 7),
    ("      budgets:\n        - {period: daily, cost_usd: -1}\n",
     "api_keys.keys[0].budgets[0].cost_usd", 7),
    ("      budgets:\n        - {period: yearly, tokens: 5}\n",
     "api_keys.keys[0].budgets[0].period", 7),
    ("      budgets:\n        - {period: daily, tokens: 5, cost_usd: 1}\n",
     "api_keys.keys[0].budgets[0]", 7),
    ("      admin: maybe\n", "api_keys.keys[0].admin", 6),
])
def test_bad_limits_name_path_and_line(tail: str, path: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(KEY + tail)
    assert info.value.path == path and info.value.line == line


def test_defaults_and_pricing_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("api_keys:\n  defaults:\n    limits: {output_tokens_per_minute: 0}\n")
    assert info.value.path == "api_keys.defaults.limits.output_tokens_per_minute"
    assert info.value.line == 3
    with pytest.raises(ConfigError) as info:
        load_config_text("pricing:\n  qwen: {input: -0.1, output: 1}\n")
    assert info.value.path == "pricing.qwen.input" and info.value.line == 2


def test_caller_carries_limits_budgets_admin_and_defaults() -> None:
    text = (KEY + "      admin: true\n      budgets:\n        - {period: weekly, cost_usd: 5}\n"
            "    - key: k2\n      name: bob\n"
            "  defaults:\n    limits: {requests_per_minute: 9}\n"
            "    budgets:\n      - {period: daily, tokens: 100}\n")
    keys = load_config_text(text).settings.api_keys
    alice = authenticate({"x-api-key": "k1"}, keys)
    bob = authenticate({"authorization": "Bearer k2"}, keys)
    assert alice.admin and alice.limits.requests_per_minute == 9
    assert [b.period for b in alice.budgets] == ["weekly"]
    assert not bob.admin and [b.tokens for b in bob.budgets] == [100] and bob.metered
    assert "k1" not in repr(alice)


def test_check_shows_the_state_store_without_the_redis_password(tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    config = tmp_path / "c.yaml"
    config.write_text("state:\n  redis_url: redis://:hunter2@10.0.0.5:6379/0\n"
                      "api_keys:\n  keys:\n    - {key: sk-secret-1, name: a, admin: true,\n"
                      "       limits: {requests_per_minute: 5}}\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-m", "continuum_cli", "check", "--json",
                             "--config", str(config)], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == {"store": "redis", "where": "redis://***@10.0.0.5:6379/0",
                             "on_error": "open", "timeout": 0.05}
    assert data["api_keys"]["limited"] == 1 and data["api_keys"]["admin"] == 1
    assert "hunter2" not in result.stdout and "sk-secret-1" not in result.stdout
