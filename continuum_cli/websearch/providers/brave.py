"""Brave Search Web Search API (websearch.md §3.1).

`GET {base}/res/v1/web/search` with `X-Subscription-Token`. Query limit: 400 characters
and 50 words (documented), so longer queries get `query_too_long` before any call.
A bad or missing token is HTTP 422 (`SUBSCRIPTION_TOKEN_INVALID`, or `VALIDATION` on the
`x-subscription-token` header), not 401. Rate-limit headers come on every response.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import httpx

from continuum_cli.websearch.providers.base import HttpProvider, SearchResult, UserLocation
from continuum_cli.websearch.providers.dates import human_date

_TAGS = re.compile(r"<[^>]+>")


def strip_markup(text: object) -> str:
    return html.unescape(_TAGS.sub("", str(text or ""))).strip()


class BraveProvider(HttpProvider):
    name = "brave"
    key_env = "BRAVE_API_KEY"
    default_base_url = "https://api.search.brave.com"
    path = "/res/v1/web/search"
    max_query_chars = 400
    max_query_words = 50
    max_count = 20

    def build_request(
        self,
        query: str,
        count: int,
        allowed: Sequence[str],
        blocked: Sequence[str],
        location: UserLocation | None,
    ) -> httpx.Request:
        params = {"q": self.fit_operators(query, allowed, blocked), "count": str(count),
                  "result_filter": "web", "text_decorations": "false"}
        if location and location.country_code:
            params["country"] = location.country_code
        headers = {"X-Subscription-Token": self._api_key, "Accept": "application/json",
                   **_location_headers(location)}
        return self._client.build_request(
            "GET", self.endpoint, params=params, headers=headers, timeout=self.timeout
        )

    def parse_results(self, body: Any) -> list[SearchResult]:
        web = body.get("web") if isinstance(body.get("web"), dict) else {}
        return [_result(item) for item in web.get("results") or [] if _usable(item)]

    def is_bad_key(self, status: int, body: object) -> bool:
        if status in (401, 403):
            return True
        text = str(body)
        return status == 422 and (
            "SUBSCRIPTION_TOKEN_INVALID" in text or "x-subscription-token" in text.lower()
        )


def _location_headers(location: UserLocation | None) -> dict[str, str]:
    if location is None:
        return {}
    headers = {"X-Loc-City": location.city, "X-Loc-Timezone": location.timezone,
               "X-Loc-Country": location.country_code}
    if location.region:
        # X-Loc-State takes a code of at most 3 characters; longer names go by name.
        key = "X-Loc-State" if len(location.region) <= 3 else "X-Loc-State-Name"
        headers[key] = location.region
    return {k: v for k, v in headers.items() if v and v.isascii()}


def _usable(item: object) -> bool:
    return isinstance(item, dict) and bool(item.get("url"))


def _result(item: dict[str, Any]) -> SearchResult:
    extra = [strip_markup(s) for s in item.get("extra_snippets") or []]
    age = item.get("age") or human_date(item.get("page_age"))
    return SearchResult(
        title=strip_markup(item.get("title")) or str(item["url"]),
        url=str(item["url"]),
        snippet=strip_markup(item.get("description")),
        page_age=str(age) if age else None,
        extra={"extra_snippets": extra} if extra else {},
    )
