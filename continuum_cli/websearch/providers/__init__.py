"""Search providers: one `SearchProvider` Protocol, one class per documented API.

    make_provider(settings.web_search, shared_httpx_client).search(query, count=8)

Every provider raises `ProviderError(error_code=...)` with a web_search_tool_result_error
code (websearch.md §1.4, §3.4): 429 -> `too_many_requests`; timeout, 5xx and a rejected key
-> `unavailable`; over-long query -> `query_too_long`; empty query -> `invalid_tool_input`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx

from continuum_cli.config.models import WebSearchSettings
from continuum_cli.errors import ConfigError
from continuum_cli.websearch.providers.base import (
    HttpProvider,
    SearchResponse,
    SearchResult,
    UserLocation,
)
from continuum_cli.websearch.providers.brave import BraveProvider
from continuum_cli.websearch.providers.exa import ExaProvider
from continuum_cli.websearch.providers.serper import SerperProvider

__all__ = [
    "REGISTRY", "SearchProvider", "SearchResponse", "SearchResult", "UserLocation",
    "BraveProvider", "ExaProvider", "SerperProvider", "make_provider",
]


class SearchProvider(Protocol):
    name: str
    key_env: str
    max_query_chars: int

    async def search(
        self,
        query: str,
        *,
        count: int,
        allowed_domains: Sequence[str] = (),
        blocked_domains: Sequence[str] = (),
        user_location: UserLocation | None = None,
    ) -> SearchResponse: ...


REGISTRY: dict[str, type[HttpProvider]] = {
    "brave": BraveProvider,
    "serper": SerperProvider,
    "exa": ExaProvider,
}


def make_provider(settings: WebSearchSettings, client: httpx.AsyncClient) -> SearchProvider:
    """The configured provider on the shared client. A missing key is a config problem."""
    cls = REGISTRY[settings.provider]
    key = (settings.api_key or "").strip()
    if not key:
        raise ConfigError(
            f"web_search.provider {settings.provider} needs an api_key",
            path="web_search.api_key",
            hint=f'set api_key: "${{{cls.key_env}}}" and export {cls.key_env}',
        )
    return cls(client, api_key=key, base_url=settings.base_url, timeout=settings.timeout)
