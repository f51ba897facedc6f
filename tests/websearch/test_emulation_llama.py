"""The direct path against a REAL llama.cpp server (SmolLM2-135M): Claude Code's WebSearch
sub-request gets its summary text from the real model. Structure only, never wording."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anthropic
import pytest

from continuum_cli.config.models import Settings, WebSearchSettings
from tests.fakes.search_providers import FakeSearchServer
from tests.fixtures_llama import LlamaServer
from tests.router import RouterThread

pytestmark = pytest.mark.realbackend

CAPTURE = Path(__file__).parent.parent / "fixtures" / "claude_code" / "websearch-intermediate.json"


def test_claude_code_sub_request_summarised_by_the_real_model(
        llama_server: LlamaServer, router_factory: Callable[..., RouterThread]) -> None:
    with FakeSearchServer("brave") as search:
        settings = Settings(
            backends=(llama_server.backend(),),
            model_aliases={"default": llama_server.model},
            web_search=WebSearchSettings(enabled=True, provider="brave", api_key=search.key,
                                         base_url=search.base_url))
        router = router_factory(settings)
        client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k",
                                     max_retries=0, timeout=120)
        body = json.loads(CAPTURE.read_text())["body"]
        body.pop("stream")
        body["max_tokens"] = 48  # a brief summary; keeps the CPU time small
        known = ("model", "messages", "system", "tools", "tool_choice", "max_tokens", "metadata")
        with client.messages.stream(**{k: body[k] for k in known},
                                    extra_body={"temperature": 0}) as events:
            message = events.get_final_message()
    assert [b.type for b in message.content] == [
        "server_tool_use", "web_search_tool_result", "text"]
    use, result, text = message.content
    assert result.tool_use_id == use.id and len(result.content) == 3
    assert text.text.strip()
    assert not text.text.startswith("Web search results for")  # the model's, not the fallback
    assert message.usage.server_tool_use.web_search_requests == 1
    assert message.usage.output_tokens > 0
