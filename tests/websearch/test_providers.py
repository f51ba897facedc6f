"""Providers against local fakes of the documented Brave / Serper / Exa APIs (websearch.md §3)."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest

from continuum_cli.config.models import WebSearchSettings
from continuum_cli.errors import ConfigError, ProviderError
from continuum_cli.websearch.providers import (
    REGISTRY,
    BraveProvider,
    ExaProvider,
    SerperProvider,
    UserLocation,
    make_provider,
)
from continuum_cli.websearch.providers.base import (
    check_query,
    error_detail,
    rate_limit_headers,
    retry_delay,
    site_operators,
)
from continuum_cli.websearch.providers.dates import human_date
from tests.fakes.search_providers import FakeSearchServer

pytestmark = pytest.mark.anyio


def provider_for(fake: FakeSearchServer, http: httpx.AsyncClient, **kw: object):
    options = {"api_key": fake.key, "base_url": fake.base_url, "default_retry_wait": 0.01, **kw}
    return REGISTRY[fake.provider](http, **options)  # type: ignore[arg-type]


async def test_documented_request_and_parsed_results(fake, http):
    provider = provider_for(fake, http)
    response = await provider.search("python asyncio", count=3)

    assert [r.url for r in response.results] == [r["url"] for r in fake.results]
    assert response.results[0].title == "asyncio — Asynchronous I/O"
    assert "async/await" in response.results[0].snippet
    assert response.provider == fake.provider and response.query == "python asyncio"
    assert response.latency_ms > 0
    (sent,) = fake.requests
    assert fake.query_of(sent) == "python asyncio"
    assert fake.key not in sent.raw_target  # keys only in headers, never in URLs


@pytest.mark.parametrize(
    ("provider", "method", "path", "header"),
    [
        pytest.param("brave", "GET", "/res/v1/web/search", "x-subscription-token", id="brave"),
        pytest.param("serper", "POST", "/search", "x-api-key", id="serper"),
        pytest.param("exa", "POST", "/search", "x-api-key", id="exa"),
    ],
)
async def test_method_path_and_auth_header(provider, method, path, header, http):
    with FakeSearchServer(provider) as fake:
        await provider_for(fake, http).search("q", count=2)
    (sent,) = fake.requests
    assert (sent.method, sent.path, sent.headers[header]) == (method, path, fake.key)


async def test_brave_params_markup_age_and_rate_limit():
    async with httpx.AsyncClient() as http:
        with FakeSearchServer("brave") as fake:
            response = await provider_for(fake, http).search("python asyncio", count=3)
    params = fake.requests[0].params
    assert params["count"] == "3" and params["text_decorations"] == "false"
    assert response.results[2].snippet == "Guide to asyncio & friends."
    assert response.results[0].page_age == "March 3, 2025"  # Brave `age` wins over page_age
    assert response.rate_limit["remaining"] == "0, 14000"
    assert response.rate_limit["limit"] == "1, 15000"


async def test_exa_asks_for_highlights_and_formats_dates(http):
    with FakeSearchServer("exa") as fake:
        response = await provider_for(fake, http).search("q", count=3)
    body = fake.requests[0].body
    assert body["numResults"] == 3 and "highlights" in body["contents"]
    assert response.results[0].page_age == "March 3, 2025"
    assert response.results[1].page_age == "November 25, 2026"


@pytest.mark.parametrize(("asked", "sent"), [(2, 2), (50, 20), (0, 1)], ids=["2", "cap", "min"])
async def test_brave_count_is_clamped_to_documented_range(asked, sent, http):
    with FakeSearchServer("brave") as fake:
        response = await provider_for(fake, http).search("q", count=asked)
    assert fake.requests[0].params["count"] == str(sent)
    assert len(response.results) == min(sent, len(fake.results))


async def test_empty_answer_is_no_results(fake, http):
    fake.mode = "empty"
    response = await provider_for(fake, http).search("nothing here", count=5)
    assert response.results == ()


async def test_bad_key_is_unavailable_and_logged_loudly(fake, http, caplog):
    provider = provider_for(fake, http, api_key="wrong-key-987")
    with caplog.at_level(logging.ERROR, logger="continuum.websearch"):
        with pytest.raises(ProviderError) as info:
            await provider.search("q", count=2)
    err = info.value
    assert err.error_code == "unavailable"
    assert err.status == {"brave": 422, "serper": 403, "exa": 401}[fake.provider]
    assert provider.key_env in (err.hint or "")
    (record,) = [r for r in caplog.records if "rejected the API key" in r.getMessage()]
    assert provider.key_env in record.getMessage()
    assert "wrong-key-987" not in caplog.text + str(err) + (err.hint or "")


@pytest.mark.parametrize(
    ("provider", "status"),
    [pytest.param("serper", 401, id="serper-401"), pytest.param("brave", 401, id="brave-401"),
     pytest.param("exa", 403, id="exa-403-is-not-a-key-problem")],
)
async def test_other_auth_statuses(provider, status, http, caplog):
    with FakeSearchServer(provider, bad_key_status=status) as fake:
        with pytest.raises(ProviderError) as info:
            await provider_for(fake, http, api_key="nope").search("q", count=1)
    assert info.value.error_code == "unavailable" and info.value.status == status
    assert ("rejected the API key" in caplog.text) == (provider != "exa")


async def test_brave_missing_token_is_a_key_problem(http, caplog):
    with FakeSearchServer("brave") as fake:
        provider = provider_for(fake, http)
        provider._api_key = ""  # the fake then sees no X-Subscription-Token value it accepts
        with pytest.raises(ProviderError) as info:
            await provider.search("q", count=1)
    assert info.value.status == 422 and "BRAVE_API_KEY" in (info.value.hint or "")


async def test_429_retries_once_then_too_many_requests(fake, http):
    fake.mode = "rate_limited"
    with pytest.raises(ProviderError) as info:
        await provider_for(fake, http).search("q", count=1)
    assert info.value.error_code == "too_many_requests" and info.value.status == 429
    assert len(fake.requests) == 2


async def test_429_once_then_results(fake, http):
    fake.mode = "rate_limited_once"
    response = await provider_for(fake, http).search("q", count=1)
    assert len(response.results) == 1 and len(fake.requests) == 2


async def test_brave_monthly_quota_is_not_retried(http):
    with FakeSearchServer("brave", mode="quota") as fake:
        with pytest.raises(ProviderError) as info:
            await provider_for(fake, http).search("q", count=1)
    assert info.value.error_code == "too_many_requests"
    assert "QUOTA_LIMITED" in info.value.message
    assert len(fake.requests) == 1  # the reset is weeks away: give up at once


async def test_server_error_is_unavailable(fake, http):
    fake.mode = "server_error"
    with pytest.raises(ProviderError) as info:
        await provider_for(fake, http).search("q", count=1)
    assert (info.value.error_code, info.value.status) == ("unavailable", 503)


async def test_exa_out_of_credits(http):
    with FakeSearchServer("exa", mode="no_credits") as fake:
        with pytest.raises(ProviderError) as info:
            await provider_for(fake, http).search("q", count=1)
    assert info.value.error_code == "unavailable" and "credits" in info.value.message


async def test_slow_provider_times_out_as_unavailable(fake, http):
    fake.mode, fake.delay = "slow", 1.0
    with pytest.raises(ProviderError) as info:
        await provider_for(fake, http, timeout=0.2).search("q", count=1)
    assert info.value.error_code == "unavailable"
    assert "did not answer within 0.2s" in info.value.message


async def test_unreachable_provider_is_unavailable(http):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = BraveProvider(http, api_key="k", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderError) as info:
        await provider.search("q", count=1)
    assert info.value.error_code == "unavailable" and "could not reach brave" in info.value.message


@pytest.mark.parametrize(
    ("provider", "query"),
    [
        pytest.param("brave", "x" * 401, id="brave-chars"),
        pytest.param("brave", "w " * 51, id="brave-words"),
        pytest.param("serper", "x" * 2049, id="serper-chars"),
        pytest.param("exa", "x" * 2001, id="exa-chars"),
    ],
)
async def test_query_too_long_is_refused_before_the_call(provider, query, http):
    with FakeSearchServer(provider) as fake:
        with pytest.raises(ProviderError) as info:
            await provider_for(fake, http).search(query, count=1)
    assert info.value.error_code == "query_too_long" and fake.requests == []


async def test_empty_query_is_invalid_tool_input(fake, http):
    with pytest.raises(ProviderError) as info:
        await provider_for(fake, http).search("  \n ", count=1)
    assert info.value.error_code == "invalid_tool_input" and fake.requests == []


@pytest.mark.parametrize(
    ("allowed", "blocked", "kept"),
    [
        pytest.param(["example.com"], [], ["https://blog.example.com/posts/asyncio"], id="sub"),
        pytest.param(["example.com/posts"], [], ["https://blog.example.com/posts/asyncio"],
                     id="subpath"),
        pytest.param(["example.com/guides"], [], [], id="subpath-miss"),
        pytest.param(["python.org", "example.org"], [],
                     ["https://docs.python.org/3/library/asyncio.html",
                      "https://www.example.org/guides/asyncio"], id="two-allowed"),
        pytest.param([], ["python.org"], ["https://blog.example.com/posts/asyncio",
                                          "https://www.example.org/guides/asyncio"], id="blocked"),
    ],
)
async def test_results_are_post_filtered(fake, http, allowed, blocked, kept):
    response = await provider_for(fake, http).search(
        "asyncio", count=3, allowed_domains=allowed, blocked_domains=blocked)
    assert [r.url for r in response.results] == kept


@pytest.mark.parametrize(
    ("provider", "allowed", "blocked", "expect"),
    [
        pytest.param("brave", ["a.com"], [], ("q", "asyncio site:a.com"), id="brave-one"),
        pytest.param("brave", ["a.com", "b.com"], [], ("q", "asyncio (site:a.com OR site:b.com)"),
                     id="brave-two"),
        pytest.param("serper", [], ["x.com", "y.com"], ("q", "asyncio -site:x.com -site:y.com"),
                     id="serper-blocked"),
        pytest.param("exa", ["https://A.com/"], [], ("includeDomains", ["a.com"]), id="exa-allow"),
        pytest.param("exa", [], ["x.com"], ("excludeDomains", ["x.com"]), id="exa-block"),
    ],
)
async def test_domain_rules_mapped_per_provider(provider, allowed, blocked, expect, http):
    with FakeSearchServer(provider) as fake:
        await provider_for(fake, http).search(
            "asyncio", count=3, allowed_domains=allowed, blocked_domains=blocked)
    sent = fake.requests[0]
    where = sent.params if provider == "brave" else sent.body
    assert where[expect[0]] == expect[1]


async def test_operators_dropped_when_they_would_not_fit(http):
    query = "word " * 49 + "last"  # 50 words: the operator would make it 51
    with FakeSearchServer("brave") as fake:
        response = await provider_for(fake, http).search(
            query, count=3, allowed_domains=["example.com"])
    assert fake.requests[0].params["q"] == " ".join(query.split())
    assert [r.url for r in response.results] == ["https://blog.example.com/posts/asyncio"]


async def test_user_location_mapping(http):
    where = UserLocation(city="Berlin", region="Berlin", country="de", timezone="Europe/Berlin")
    sent = {}
    for name in ("brave", "serper", "exa"):
        with FakeSearchServer(name) as fake:
            await provider_for(fake, http).search("q", count=1, user_location=where)
        sent[name] = fake.requests[0]
    brave = sent["brave"]
    assert brave.params["country"] == "DE"
    assert brave.headers["x-loc-city"] == "Berlin"
    assert brave.headers["x-loc-state-name"] == "Berlin"
    assert brave.headers["x-loc-timezone"] == "Europe/Berlin"
    assert sent["serper"].body["gl"] == "de"
    assert sent["serper"].body["location"] == "Berlin, Berlin, de"
    assert sent["exa"].body["userLocation"] == "DE"


async def test_base_url_with_trailing_slash(http):
    with FakeSearchServer("serper") as fake:
        provider = SerperProvider(http, api_key=fake.key, base_url=fake.base_url + "/")
        response = await provider.search("q", count=1)
    assert provider.endpoint == fake.base_url + "/search" and len(response.results) == 1


def test_default_endpoints():
    client = httpx.AsyncClient()
    assert BraveProvider(client, api_key="k").endpoint == \
        "https://api.search.brave.com/res/v1/web/search"
    assert SerperProvider(client, api_key="k").endpoint == "https://google.serper.dev/search"
    assert ExaProvider(client, api_key="k").endpoint == "https://api.exa.ai/search"
    assert "k" not in repr(BraveProvider(client, api_key="secret-k"))


@pytest.mark.parametrize("name", ["brave", "serper", "exa"])
def test_make_provider_uses_settings(name):
    settings = WebSearchSettings(enabled=True, provider=name, api_key="k1",
                                 base_url="http://127.0.0.1:9/", timeout="3s")
    provider = make_provider(settings, httpx.AsyncClient())
    assert type(provider) is REGISTRY[name]
    assert provider.timeout == 3.0 and provider.endpoint.startswith("http://127.0.0.1:9/")


def test_make_provider_without_key_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        make_provider(WebSearchSettings(provider="exa"), httpx.AsyncClient())
    assert "EXA_API_KEY" in (info.value.hint or "")


# -- pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"X-RateLimit-Remaining": "0, 10", "X-RateLimit-Reset": "1, 999"}, 1.0,
                     id="brave-second-window"),
        pytest.param({"X-RateLimit-Remaining": "3, 0", "X-RateLimit-Reset": "1, 999"}, None,
                     id="brave-month-window"),
        pytest.param({"Retry-After": "2"}, 2.0, id="retry-after"),
        pytest.param({"Retry-After": "30"}, None, id="retry-after-too-long"),
        pytest.param({"RateLimit-Reset": "0"}, 0.0, id="ietf-reset"),
        pytest.param({}, 0.5, id="no-headers-default"),
    ],
)
def test_retry_delay(headers, expected):
    assert retry_delay(httpx.Headers(headers), 0.5) == expected


@pytest.mark.parametrize(
    ("query", "code"),
    [("", "invalid_tool_input"), ("  ", "invalid_tool_input"), ("a " * 11, "query_too_long"),
     ("x" * 21, "query_too_long")],
)
def test_check_query_errors(query, code):
    with pytest.raises(ProviderError) as info:
        check_query(query, max_chars=20, max_words=10)
    assert info.value.error_code == code


def test_check_query_collapses_whitespace():
    assert check_query("  a \n b ", max_chars=20, max_words=None) == "a b"


@pytest.mark.parametrize(
    ("allowed", "blocked", "out"),
    [([], [], "q"), (["a.com"], [], "q site:a.com"), ([], ["b.com"], "q -site:b.com")],
)
def test_site_operators(allowed, blocked, out):
    assert site_operators("q", allowed, blocked) == out


@pytest.mark.parametrize(
    ("body", "text"),
    [
        pytest.param({"error": {"code": "RATE_LIMITED", "detail": "slow down"}},
                     "RATE_LIMITED slow down", id="brave"),
        pytest.param({"errors": [{"code": "VALIDATION"}]}, "VALIDATION", id="brave-array"),
        pytest.param({"message": "Unauthorized.", "statusCode": 403}, "Unauthorized.", id="serper"),
        pytest.param({"error": "rate limit exceeded", "tag": "X"}, "X rate limit exceeded",
                     id="exa"),
        pytest.param(None, "", id="not-json"),
    ],
)
def test_error_detail(body, text):
    assert error_detail(body) == text


def test_rate_limit_headers_are_collected():
    headers = httpx.Headers({"X-RateLimit-Limit": "1", "RateLimit-Remaining": "4", "Other": "x"})
    assert rate_limit_headers(headers) == {"limit": "1", "remaining": "4"}


@pytest.mark.parametrize(
    ("value", "out"),
    [("2025-01-15T00:00:00", "January 15, 2025"), ("2026-11-25T10:00:00Z", "November 25, 2026"),
     ("3 days ago", "3 days ago"), (None, None), ("", None)],
)
def test_human_date(value, out):
    assert human_date(value) == out
