"""`Searcher`: max_uses accounting, error mapping and the usage counter, with stand-in providers."""

from __future__ import annotations

import logging

import pytest

from continuum_cli.errors import ProviderError
from continuum_cli.websearch.options import SearchOptions
from continuum_cli.websearch.providers import SearchResponse, SearchResult
from continuum_cli.websearch.searcher import Searcher

pytestmark = pytest.mark.anyio


class StandIn:
    name = "standin"
    key_env = "STANDIN_KEY"
    max_query_chars = 100

    def __init__(self, outcome: object = None) -> None:
        self.outcome = outcome
        self.calls: list[dict] = []

    async def search(self, query, *, count, allowed_domains=(), blocked_domains=(),
                     user_location=None):
        self.calls.append({"query": query, "count": count, "allowed": allowed_domains})
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        result = SearchResult("T", "https://t.example/")
        return SearchResponse(self.name, query, (result,), {}, 1.0)


def error_code(result: dict) -> str | None:
    content = result["content"]
    return content.get("error_code") if isinstance(content, dict) else None


async def test_results_are_counted_and_options_passed():
    provider = StandIn()
    searcher = Searcher(provider, SearchOptions(allowed_domains=("a.com",)), max_results=4)
    use = searcher.call("q")
    result = await searcher.answer(use)
    assert result["tool_use_id"] == use["id"] and error_code(result) is None
    assert provider.calls == [{"query": "q", "count": 4, "allowed": ("a.com",)}]
    assert searcher.executed == 1


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        pytest.param(ProviderError("slow down", error_code="too_many_requests"),
                     "too_many_requests", id="provider-error"),
        pytest.param(RuntimeError("bug"), "unavailable", id="unexpected"),
    ],
)
async def test_failures_become_error_blocks(outcome, code, caplog):
    searcher = Searcher(StandIn(outcome), SearchOptions(), max_results=3)
    with caplog.at_level(logging.WARNING, logger="continuum.websearch"):
        result = await searcher.answer(searcher.call("q"))
    assert error_code(result) == code and searcher.executed == 0
    assert "web_search" in caplog.text


async def test_max_uses_counts_attempts():
    provider = StandIn()
    searcher = Searcher(provider, SearchOptions(max_uses=2), max_results=3)
    codes = [error_code(await searcher.answer(searcher.call(q))) for q in ("a", "b", "c")]
    assert codes == [None, None, "max_uses_exceeded"]
    assert len(provider.calls) == 2 and searcher.exhausted


async def test_empty_query_does_not_use_a_search():
    provider = StandIn()
    searcher = Searcher(provider, SearchOptions(max_uses=1), max_results=3)
    assert error_code(await searcher.answer(searcher.call("  "))) == "invalid_tool_input"
    assert error_code(await searcher.answer(searcher.call("real"))) is None
    assert [c["query"] for c in provider.calls] == ["real"]


async def test_disabled_search_answers_unavailable_then_counts_as_exhausted():
    searcher = Searcher(None, SearchOptions(), max_results=3)
    assert not searcher.exhausted
    assert error_code(await searcher.answer(searcher.call("q"))) == "unavailable"
    assert searcher.exhausted and searcher.provider_name == "none"
