"""Pure builders: server-tool blocks and events, encrypted_content and domain rules
(websearch.md §1)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from continuum_cli.websearch import blocks
from continuum_cli.websearch.providers import SearchResult

RESULT = SearchResult("Title", "https://a.example.com/x", "the snippet", "May 1, 2025",
                      {"extra_snippets": ["more one", "more two"]})


def test_tool_use_ids_look_like_anthropics():
    ids = {blocks.new_tool_use_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"srvtoolu_[A-Za-z0-9]{24}", i) for i in ids)


def test_server_tool_use_block():
    assert blocks.server_tool_use_block("srvtoolu_x", "q") == {
        "type": "server_tool_use", "id": "srvtoolu_x", "name": "web_search",
        "input": {"query": "q"}}


def test_result_block_shape_and_opaque_content():
    block = blocks.result_block("srvtoolu_x", [RESULT], provider="brave", query="q")
    (item,) = block["content"]
    assert block["type"] == "web_search_tool_result" and block["tool_use_id"] == "srvtoolu_x"
    assert set(item) == {"type", "title", "url", "encrypted_content", "page_age"}
    assert item["type"] == "web_search_result" and item["page_age"] == "May 1, 2025"
    assert item["encrypted_content"].startswith(blocks.ENCRYPTED_PREFIX)
    assert "the snippet" not in item["encrypted_content"]  # opaque to clients


def test_encrypted_content_round_trip():
    value = blocks.encode_encrypted_content(RESULT, provider="exa", query="q")
    assert re.fullmatch(re.escape(blocks.ENCRYPTED_PREFIX) + r"[A-Za-z0-9_-]+", value)
    assert blocks.decode_encrypted_content(value) == {
        "provider": "exa", "query": "q", "snippet": "the snippet", "page_age": "May 1, 2025",
        "extra_snippets": ["more one", "more two"]}


def test_encrypted_content_is_never_empty():
    empty = SearchResult("t", "https://x.org")
    assert blocks.encode_encrypted_content(empty, provider="brave", query="")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5", id="anthropic-minted"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(blocks.ENCRYPTED_PREFIX + "!!!not base64", id="garbage"),
        pytest.param(blocks.ENCRYPTED_PREFIX + base64.urlsafe_b64encode(b"[1]").decode(),
                     id="not-an-object"),
    ],
)
def test_foreign_encrypted_content_decodes_to_none(value):
    assert blocks.decode_encrypted_content(value) is None


def test_snippet_of_our_results_and_foreign_ones():
    ours = blocks.result_block("s", [RESULT], provider="brave", query="q")["content"][0]
    assert blocks.snippet_of(ours) == "the snippet more one more two"
    assert blocks.snippet_of({"encrypted_content": "EqgfCioIARgB"}) is None


def test_results_text_is_what_the_model_reads():
    use = blocks.server_tool_use_block("s", "python")
    result = blocks.result_block("s", [RESULT], provider="brave", query="python")
    text = blocks.results_text(use, result)
    assert 'Web search results for "python"' in text
    assert "https://a.example.com/x" in text and "the snippet more one more two" in text


def test_error_result_block():
    assert blocks.error_result_block("s", "too_many_requests") == {
        "type": "web_search_tool_result", "tool_use_id": "s",
        "content": {"type": "web_search_tool_result_error", "error_code": "too_many_requests"}}


def test_render_error_explains_the_code():
    assert blocks.render_error("q", "max_uses_exceeded") == (
        'The web search for "q" failed (max_uses_exceeded: the maximum number of searches '
        "for this request was reached).")


def test_server_tool_use_events_follow_the_tool_use_pattern():
    use = blocks.server_tool_use_block("srvtoolu_x", 'say "hi"')
    (start, start_payload), (delta, delta_payload), (stop, stop_payload) = \
        blocks.server_tool_use_events(3, use)
    assert (start, delta, stop) == ("content_block_start", "content_block_delta",
                                    "content_block_stop")
    assert start_payload["content_block"] == {**use, "input": {}}
    assert delta_payload["delta"]["type"] == "input_json_delta"
    assert json.loads(delta_payload["delta"]["partial_json"]) == {"query": 'say "hi"'}
    # Claude Code's live progress regex reads the query out of this delta (REPORT.md §7.3)
    assert re.search(r'"query"\s*:\s*"', delta_payload["delta"]["partial_json"])
    assert {p["index"] for p in (start_payload, delta_payload, stop_payload)} == {3}


def test_result_block_arrives_whole_without_deltas():
    block = blocks.error_result_block("s", "unavailable")
    assert blocks.result_block_events(4, block) == [
        ("content_block_start", {"type": "content_block_start", "index": 4,
                                 "content_block": block}),
        ("content_block_stop", {"type": "content_block_stop", "index": 4})]


def test_text_block_events():
    names = [name for name, _ in blocks.text_block_events(2, "hello")]
    assert names == ["content_block_start", "content_block_delta", "content_block_stop"]


def test_server_usage_has_both_counters():
    assert blocks.server_usage(2) == {"web_search_requests": 2, "web_fetch_requests": 0}


@pytest.mark.parametrize(
    ("url", "rule", "matches"),
    [
        ("https://example.com/a", "example.com", True),
        ("https://docs.example.com/a", "example.com", True),
        ("https://notexample.com/a", "example.com", False),
        ("https://example.com.evil.org/", "example.com", False),
        ("https://EXAMPLE.com:8443/", "example.com", True),
        ("https://example.com/blog", "example.com/blog", True),
        ("https://example.com/blog/post", "example.com/blog/", True),
        ("https://example.com/blogger", "example.com/blog", False),
        ("https://example.com/", "https://example.com", True),
        ("https://a.example.com/", "*.example.com", True),
        ("not a url", "example.com", False),
    ],
)
def test_domain_matches(url, rule, matches):
    assert blocks.domain_matches(url, rule) is matches


def test_normalize_domains_dedupes_and_drops_blanks():
    assert blocks.normalize_domains(["A.com", "a.com/", " ", "https://b.org"]) == ("a.com", "b.org")


@pytest.mark.parametrize(
    ("allowed", "blocked", "kept"),
    [([], [], 3), (["a.com"], [], 1), ([], ["a.com"], 2), (["zzz.com"], [], 0)],
)
def test_filter_results(allowed, blocked, kept):
    results = [SearchResult("1", "https://a.com/x"), SearchResult("2", "https://b.com"),
               SearchResult("3", "https://c.com")]
    assert len(blocks.filter_results(results, allowed, blocked)) == kept
