"""Two `continuum serve` replicas sharing one real Redis behind a real nginx: a key limited to
60 requests per minute gets exactly 60 through, whichever replica answers; the ledger sees
them all; with `on_error: open` a Redis outage does not stop the service, and the limits
apply again once Redis is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from tests.conftest import basic_config
from tests.nginx import Nginx
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ALICE = "sk-alice-replicas-0001"


class Replica:
    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "continuum_cli", "serve", "--config", str(config),
             "--bind", f"127.0.0.1:{self.port}", "--log-format", "json"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
            env={**os.environ, "PYTHONPATH": str(ROOT)})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("replica did not start: " + self.log.read_text())

    def served(self) -> int:
        lines = [json.loads(x) for x in self.log.read_text().splitlines() if x.startswith("{")]
        return sum(1 for line in lines if "POST /anthropic/v1/messages" in line["message"]
                   and "forwarded" not in line["message"] and "failed" not in line["message"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def cluster(scripted, redis_server: RedisServer, tmp_path: Path
            ) -> Iterator[tuple[Nginx, list[Replica], Path, RedisServer]]:
    config: dict[str, Any] = basic_config(
        scripted,
        api_keys={"mode": "blocking",
                  "keys": [{"key": ALICE, "name": "alice",
                            "limits": {"requests_per_minute": 60}}]},
        # a generous timeout: the test machine is shared and loaded
        state={"redis_url": redis_server.url, "on_error": "open", "timeout": "2s"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    replicas = [Replica(path, tmp_path / f"replica{i}.log") for i in range(2)]
    try:
        for replica in replicas:
            replica.wait_ready()
        with Nginx(tmp_path / "nginx", [r.url for r in replicas]) as lb:
            yield lb, replicas, path, redis_server
    finally:
        for replica in replicas:
            replica.stop()


def send(url: str, count: int, workers: int = 8) -> list[httpx.Response]:
    client = anthropic.Anthropic(base_url=url + "/anthropic", api_key=ALICE, max_retries=0,
                                 timeout=60)

    def one(_: int) -> httpx.Response:
        try:
            return client.messages.with_raw_response.create(
                model="sonnet", max_tokens=16,
                messages=[{"role": "user", "content": "hi"}]).http_response
        except anthropic.APIStatusError as exc:
            return exc.response

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


def usage_json(config: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "continuum_cli", "usage", "--json",
                             "--config", str(config)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_two_replicas_behind_nginx_share_one_limit(cluster) -> None:
    lb, replicas, config, redis = cluster
    responses = send(lb.url, 100)
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert (len(ok), len(limited)) == (60, 40)
    for response in limited:
        assert response.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(response.headers["retry-after"]) <= 60
    assert all(r.headers["anthropic-ratelimit-requests-limit"] == "60" for r in ok)
    assert sorted(int(r.headers["anthropic-ratelimit-requests-remaining"]) for r in ok) == list(
        range(60))
    assert all(replica.served() > 0 for replica in replicas)  # nginx used both

    deadline = time.monotonic() + 30
    report = usage_json(config)
    while report["totals"]["requests"] < 60 and time.monotonic() < deadline:
        time.sleep(0.2)
        report = usage_json(config)
    assert report["totals"]["requests"] == 60
    assert report["totals"]["rejected"] == 40
    assert report["rows"][0]["key"] == "alice"

    # Redis goes away: on_error: open keeps serving (without limits)
    redis.stop()
    during = send(lb.url, 10, workers=4)
    assert [r.status_code for r in during] == [200] * 10
    assert all("anthropic-ratelimit-requests-limit" not in r.headers for r in during)

    # Redis is back (empty: it kept nothing on disk): the limit applies again
    redis.start()
    after = send(lb.url, 70)
    assert sorted(r.status_code for r in after) == [200] * 60 + [429] * 10
