"""Exa neural search (websearch.md §3.3).

`POST {base}/search` with `x-api-key`. Domain rules map natively to `includeDomains` /
`excludeDomains`, the country to `userLocation`; city/region/timezone are not supported.
Snippets come from `highlights` (requested explicitly, because the default returns up to
10,000 characters of page text per result). Exa documents no query limit; 2000 characters
is our cap (websearch.md §3.4 suggests 1-2k). A bad key is HTTP 401.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from continuum_cli.websearch.providers.base import HttpProvider, SearchResult, UserLocation
from continuum_cli.websearch.providers.dates import human_date

_SNIPPET_CHARS = 600


class ExaProvider(HttpProvider):
    name = "exa"
    key_env = "EXA_API_KEY"
    default_base_url = "https://api.exa.ai"
    path = "/search"
    max_query_chars = 2000
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
        body: dict[str, Any] = {
            "query": query, "numResults": count, "type": "auto",
            "contents": {"highlights": {"maxCharacters": _SNIPPET_CHARS}},
        }
        if allowed:
            body["includeDomains"] = list(allowed)
        elif blocked:
            body["excludeDomains"] = list(blocked)
        if location and location.country_code:
            body["userLocation"] = location.country_code
        headers = {"x-api-key": self._api_key, "Content-Type": "application/json"}
        return self._client.build_request(
            "POST", self.endpoint, json=body, headers=headers, timeout=self.timeout
        )

    def parse_results(self, body: Any) -> list[SearchResult]:
        return [_result(item) for item in body.get("results") or []
                if isinstance(item, dict) and item.get("url")]

    def is_bad_key(self, status: int, body: object) -> bool:
        return status == 401


def _snippet(item: dict[str, Any]) -> str:
    highlights = [str(h) for h in item.get("highlights") or [] if h]
    if highlights:
        return " … ".join(highlights)
    return str(item.get("summary") or item.get("text") or "")[:_SNIPPET_CHARS].strip()


def _result(item: dict[str, Any]) -> SearchResult:
    extra = {k: item[k] for k in ("author", "score", "id") if item.get(k) is not None}
    return SearchResult(
        title=str(item.get("title") or item["url"]),
        url=str(item["url"]),
        snippet=_snippet(item),
        page_age=human_date(item.get("publishedDate")),
        extra=extra,
    )
