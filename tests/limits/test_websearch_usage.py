"""Web search run by the router on a key's behalf counts toward that key: Claude Code's
search sub-request and the model loop's backend turns land in the key's ledger record
(tokens, searches) and its output-token window."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic

from tests.conftest import basic_config
from tests.fakes.scripted_backend import Text, ToolCalls, usage
from tests.fakes.search_providers import FakeSearchServer

CAPTURES = Path(__file__).parent.parent / "fixtures" / "claude_code"
KEY = "sk-searcher-0001"


def test_searches_and_their_turns_count_toward_the_key(scripted, router_factory,
                                                      tmp_path) -> None:
    with FakeSearchServer("brave") as search:
        config = basic_config(
            scripted,
            web_search={"enabled": True, "provider": "brave", "api_key": search.key,
                        "base_url": search.base_url},
            api_keys={"mode": "blocking", "keys": [
                {"key": KEY, "name": "searcher",
                 "limits": {"output_tokens_per_minute": 1000}}]},
            state={"path": str(tmp_path / "s.db"), "timeout": "5s"})
        router = router_factory(config)
        client = anthropic.Anthropic(base_url=router.anthropic_url, api_key=KEY,
                                     max_retries=0, timeout=30)
        # Claude Code's own sub-request: searched directly, one summary turn
        body: dict[str, Any] = json.loads(
            (CAPTURES / "websearch-intermediate-nonstream.json").read_text())["body"]
        body.pop("stream", None)
        scripted.queue(Text("summary", usage=usage(prompt=40, completion=30)))
        client.messages.create(**body)
        # a general request: the model calls the search function, then answers (two turns)
        scripted.queue(ToolCalls([("web_search", '{"query": "asyncio"}')],
                                 usage=usage(prompt=50, completion=20)),
                       Text("answer", usage=usage(prompt=90, completion=25)))
        raw = client.messages.with_raw_response.create(
            model="sonnet", max_tokens=100,
            messages=[{"role": "user", "content": "What is asyncio?"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}])
        assert raw.parse().usage.server_tool_use.web_search_requests == 1

        deadline = time.monotonic() + 10
        while router.service.state.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        records = router.call(router.service.state.store.usage_query(0))
        assert [r["key"] for r in records] == ["searcher", "searcher"]
        assert [r["web_searches"] for r in records] == [1, 1]
        assert records[0]["output_tokens"] == 30
        assert records[1]["output_tokens"] == 45  # both backend turns of the loop
        # the output window holds every turn's tokens: 30 + 45 of 1000
        after = client.messages.with_raw_response.create(
            model="sonnet", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert after.headers["anthropic-ratelimit-output-tokens-remaining"] == "925"
