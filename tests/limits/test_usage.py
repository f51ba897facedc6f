"""The usage ledger through the real router: records, `continuum usage` (a real subprocess
reading the same store) and GET /admin/usage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from tests.conftest import basic_config
from tests.fakes.scripted_backend import Chunks, Text, chunk, usage

ALICE, ADMIN = "sk-alice-secret-1", "sk-admin-secret-2"


def config_for(scripted, tmp_path: Path, **state: Any) -> dict[str, Any]:
    keys = [{"key": ALICE, "name": "alice", "limits": {"requests_per_minute": 100}},
            {"key": ADMIN, "name": "ops", "admin": True}]
    return basic_config(scripted, api_keys={"mode": "blocking", "keys": keys},
                        state={"path": str(tmp_path / "state.db"), "timeout": "5s", **state},
                        pricing={scripted.models[0]: {"input": 1.0, "output": 2.0,
                                                      "cached_input": 0.5}})


def run_cli(config: dict[str, Any], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "continuum_cli", "usage", "--config",
                           str(path), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _idle(router) -> bool:
    return not router.service.state.pending


def wait_settled(router) -> None:
    deadline = time.monotonic() + 10
    while not _idle(router) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_ledger_cli_and_admin_endpoint(scripted, router_factory, tmp_path) -> None:
    config = config_for(scripted, tmp_path)
    router = router_factory(config)
    c = anthropic.Anthropic(base_url=router.anthropic_url, api_key=ALICE, max_retries=0)
    scripted.queue(Text("hello", usage=usage(prompt=100, completion=10, cached=40)))
    c.messages.create(model="sonnet", max_tokens=20, messages=[{"role": "user", "content": "x"}])
    scripted.queue(Text("hello there", usage=usage(prompt=50, completion=5)))
    with c.messages.stream(model="haiku", max_tokens=20,
                           messages=[{"role": "user", "content": "y"}]) as stream:
        stream.get_final_message()
    bad = httpx.post(router.anthropic_url + "/v1/messages", headers={"x-api-key": ALICE},
                     json={"model": "nope", "max_tokens": 5,
                           "messages": [{"role": "user", "content": "z"}]})
    assert bad.status_code == 404
    wait_settled(router)

    records = router.call(router.service.state.store.usage_query(0))
    assert len(records) == 3
    first, second, third = records
    assert first["key"] == "alice" and ALICE not in json.dumps(records)
    assert first["route"] == "/anthropic/v1/messages"
    assert (first["model"], first["served_model"], first["backend"]) == (
        "sonnet", scripted.models[0], "scripted")
    assert (first["input_tokens"], first["cached_tokens"], first["output_tokens"]) == (60, 40, 10)
    assert first["cost_usd"] == pytest.approx((60 * 1.0 + 40 * 0.5 + 10 * 2.0) / 1e6)
    assert first["status"] == 200 and first["duration_ms"] > 0
    assert second["model"] == "haiku" and second["output_tokens"] == 5
    assert third["status"] == 404 and third["model"] is None

    result = run_cli(config, tmp_path, "--json", "--by", "model")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["by"] == "model" and report["totals"]["requests"] == 3
    assert report["totals"]["errors"] == 1
    assert report["totals"]["output_tokens"] == 15
    assert report["totals"]["cost_usd"] == pytest.approx(
        (60 + 20 + 20 + 50 * 1.0 + 5 * 2.0) / 1e6)

    table = run_cli(config, tmp_path, "--by", "key", "--since", "1h")
    assert table.returncode == 0 and "alice" in table.stdout and "total" in table.stdout

    url = router.url + "/admin/usage"
    assert httpx.get(url).status_code == 401
    denied = httpx.get(url, headers={"x-api-key": ALICE})
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    allowed = httpx.get(url + "?by=model", headers={"authorization": f"Bearer {ADMIN}"})
    assert allowed.status_code == 200
    body = allowed.json()
    assert body["rows"] == report["rows"] and body["totals"] == report["totals"]
    assert httpx.get(url + "?by=colour", headers={"x-api-key": ADMIN}).status_code == 400
    assert httpx.get(url + "?since=soon", headers={"x-api-key": ADMIN}).status_code == 400


def test_aborted_stream_counts_what_was_produced(scripted, router_factory, tmp_path) -> None:
    config = config_for(scripted, tmp_path)
    router = router_factory(config)
    words = [chunk({"content": "abcdefgh "}) for _ in range(40)]
    scripted.queue(Chunks([chunk({"role": "assistant", "content": ""}), *words,
                           chunk({}, "stop"), chunk(None, usage=usage())], delay=0.05))
    with httpx.stream("POST", router.anthropic_url + "/v1/messages",
                      headers={"x-api-key": ALICE},
                      json={"model": "sonnet", "max_tokens": 500, "stream": True,
                            "messages": [{"role": "user", "content": "x"}]}) as response:
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data:") and "content_block_delta" in line
            if seen >= 5:
                break
    deadline = time.monotonic() + 20
    records: list = []
    while time.monotonic() < deadline and not records:
        wait_settled(router)
        records = router.call(router.service.state.store.usage_query(0))
        time.sleep(0.05)
    (record,) = records
    assert record.get("aborted") is True
    # at least the 5 deltas read (9 characters each), not the whole 40
    assert 10 <= record["output_tokens"] < 90


def test_usage_cli_bad_since_and_empty_store(tmp_path) -> None:
    config = {"state": {"path": str(tmp_path / "empty.db")}}
    bad = run_cli(config, tmp_path, "--since", "yesterday-ish")
    assert bad.returncode == 2 and "since" in bad.stderr
    empty = run_cli(config, tmp_path, "--json")
    assert empty.returncode == 0
    assert json.loads(empty.stdout)["totals"]["requests"] == 0
