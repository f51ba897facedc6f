"""Serper, Google SERP results (websearch.md §3.2).

`POST {base}/search` with `X-API-KEY` and a JSON body. Serper documents no query limit;
Google ignores words past the 32nd rather than failing, so only an absurd length (2048
characters, Google's own URL-era cap) is refused as `query_too_long`. A bad or missing
key is HTTP 403 (sometimes 401); 429 covers both QPS and exhausted credits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from continuum_cli.websearch.providers.base import HttpProvider, SearchResult, UserLocation


class SerperProvider(HttpProvider):
    name = "serper"
    key_env = "SERPER_API_KEY"
    default_base_url = "https://google.serper.dev"
    path = "/search"
    max_query_chars = 2048
    max_query_words = None
    max_count = 100

    def build_request(
        self,
        query: str,
        count: int,
        allowed: Sequence[str],
        blocked: Sequence[str],
        location: UserLocation | None,
    ) -> httpx.Request:
        body: dict[str, Any] = {"q": self.fit_operators(query, allowed, blocked), "num": count}
        if location and location.country_code:
            body["gl"] = location.country_code.lower()
        place = _place(location)
        if place:
            body["location"] = place
        headers = {"X-API-KEY": self._api_key, "Content-Type": "application/json"}
        return self._client.build_request(
            "POST", self.endpoint, json=body, headers=headers, timeout=self.timeout
        )

    def parse_results(self, body: Any) -> list[SearchResult]:
        return [_result(item) for item in body.get("organic") or []
                if isinstance(item, dict) and item.get("link")]


def _place(location: UserLocation | None) -> str | None:
    if location is None or not (location.city or location.region):
        return None
    parts = [location.city, location.region, location.country]
    return ", ".join(p for p in parts if p)


def _result(item: dict[str, Any]) -> SearchResult:
    extra = {k: item[k] for k in ("position", "sitelinks") if k in item}
    return SearchResult(
        title=str(item.get("title") or item["link"]),
        url=str(item["link"]),
        snippet=str(item.get("snippet") or ""),
        page_age=str(item["date"]) if item.get("date") else None,
        extra=extra,
    )
