"""Web-search sub-requests fail over too: each backend turn of the emulated server tool is
sent to a ready backend and moves on when that one cannot take it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anthropic

from tests.fakes.scripted_backend import Error, Text
from tests.fakes.search_providers import FakeSearchServer
from tests.fleet.conftest import fleet_config

CAPTURE = Path(__file__).parent.parent / "fixtures" / "claude_code" / \
    "websearch-intermediate.json"
SUMMARY = "The secret word is PINEAPPLE-42."


def test_claude_codes_websearch_subrequest_fails_over(router_factory, trio, caplog) -> None:
    caplog.set_level(logging.INFO, logger="continuum")
    body = json.loads(CAPTURE.read_text())["body"]
    body.pop("stream", None)
    with FakeSearchServer("brave") as search:
        config = fleet_config(trio[:2], routing={"strategy": "priority"},
                              model_aliases={"default": "m"},
                              web_search={"enabled": True, "provider": "brave",
                                          "api_key": search.key, "base_url": search.base_url})
        router = router_factory(config)
        trio[0].queue(Error(503, {"error": {"message": "busy"}}))
        trio[1].queue(Text(SUMMARY))
        client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="x", max_retries=0)
        known = {"model", "max_tokens", "messages", "system", "tools", "tool_choice",
                 "metadata", "temperature", "thinking"}
        with client.messages.stream(**{k: v for k, v in body.items() if k in known},
                                    extra_body={k: v for k, v in body.items()
                                                if k not in known}) as stream:
            message = stream.get_final_message()
    kinds = [block.type for block in message.content]
    assert kinds == ["server_tool_use", "web_search_tool_result", "text"]
    assert message.content[2].text == SUMMARY  # the summary turn, from the second backend
    assert (len(trio[0].chat_requests()), len(trio[1].chat_requests())) == (1, 1)
    assert "failover: gpu-a -> gpu-b (HTTP 503)" in caplog.text
