"""Shared value types and the HTTP plumbing every search provider uses.

A provider subclass only says how to build its documented request and how to read its
documented response (websearch.md §3). Everything else lives here, once: query checks,
the single retry on 429 (bounded wait from `Retry-After` / `X-RateLimit-Reset`), mapping
statuses to `web_search_tool_result_error` codes (websearch.md §3.4 table), the loud
bad-key warning, rate-limit header capture and the domain post-filter.

Keys travel only in request headers; no message, log line or URL built here contains one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from continuum_cli.errors import ProviderError
from continuum_cli.websearch.blocks import filter_results, normalize_domains

logger = logging.getLogger("continuum.websearch")

# websearch.md §3 asks for one retry on 429; waiting longer than this would stall a whole
# Claude Code turn, so a longer reset (e.g. a monthly quota) means "give up now".
RETRY_WAIT_CAP = 2.0
_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "ratelimit-")


@dataclass(frozen=True)
class UserLocation:
    """Anthropic's `user_location` (websearch.md §1.2); every field optional."""

    city: str | None = None
    region: str | None = None
    country: str | None = None
    timezone: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> UserLocation | None:
        if not data:
            return None
        values = {k: _text(data.get(k)) for k in ("city", "region", "country", "timezone")}
        return cls(**values) if any(values.values()) else None

    @property
    def country_code(self) -> str | None:
        code = (self.country or "").strip()
        return code.upper() if len(code) == 2 and code.isalpha() else None


def _text(value: object) -> str | None:
    return str(value).strip() or None if value is not None else None


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str = ""
    page_age: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResponse:
    provider: str
    query: str
    results: tuple[SearchResult, ...]
    # e.g. {"limit": "1, 15000", "remaining": "0, 14000", "reset": "1, 1419704"} (Brave)
    rate_limit: dict[str, str]
    latency_ms: float


def check_query(query: str, *, max_chars: int, max_words: int | None) -> str:
    """The query as sent, or a `ProviderError` carrying the Anthropic error code (§1.10 step 2)."""
    text = " ".join((query or "").split())
    if not text:
        raise ProviderError("the search query is empty", error_code="invalid_tool_input")
    if len(text) > max_chars or (max_words is not None and len(text.split()) > max_words):
        limit = f"{max_chars} characters" + (f" / {max_words} words" if max_words else "")
        raise ProviderError(
            f"the search query is longer than the provider allows ({limit})",
            error_code="query_too_long",
        )
    return text


def site_operators(query: str, allowed: Sequence[str], blocked: Sequence[str]) -> str:
    """`q` with `site:` / `-site:` groups appended (websearch.md §3.4, Brave and Serper rows)."""
    if allowed:
        sites = " OR ".join(f"site:{d}" for d in allowed)
        return f"{query} ({sites})" if len(allowed) > 1 else f"{query} {sites}"
    if blocked:
        return query + "".join(f" -site:{d}" for d in blocked)
    return query


def rate_limit_headers(headers: httpx.Headers) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        for prefix in _RATE_LIMIT_PREFIXES:
            if lowered.startswith(prefix):
                found[lowered[len(prefix):]] = value
    return found


def _numbers(value: str | None) -> list[float]:
    out = []
    for part in (value or "").split(","):
        try:
            out.append(float(part.strip().split(";")[0]))
        except ValueError:
            continue
    return out


def retry_delay(headers: httpx.Headers, default: float) -> float | None:
    """Seconds to wait before the one retry, or None when the wait would exceed the cap.

    Brave sends per-window lists (`X-RateLimit-Reset: 1, 1419704`, websearch.md §3.1); the
    window that ran out is the one whose `Remaining` is 0. Serper and Exa send nothing.
    """
    after = _numbers(headers.get("retry-after"))
    limits = rate_limit_headers(headers)
    resets, remaining = _numbers(limits.get("reset")), _numbers(limits.get("remaining"))
    if after:
        wait = after[0]
    elif resets:
        spent = [r for r, left in zip(resets, remaining, strict=False) if left <= 0]
        wait = max(spent) if spent else min(resets)
    else:
        wait = default
    return max(wait, 0.0) if wait <= RETRY_WAIT_CAP else None


def error_detail(body: object) -> str:
    """A short human text from any of the three providers' error bodies (§3.1-3.3)."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        return " ".join(str(error.get(k)) for k in ("code", "detail") if error.get(k))
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return error_detail({"error": errors[0]})
    parts = [str(body[k]) for k in ("tag", "error", "message") if isinstance(body.get(k), str)]
    return " ".join(parts)


class HttpProvider:
    """One provider API behind `search()`. Subclasses fill in the class constants and
    `build_request` / `parse_results` / `is_bad_key`."""

    name: ClassVar[str]
    key_env: ClassVar[str]
    default_base_url: ClassVar[str]
    path: ClassVar[str]
    max_query_chars: ClassVar[int]
    max_query_words: ClassVar[int | None] = None
    max_count: ClassVar[int]

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 10.0,
        default_retry_wait: float = 1.0,
    ) -> None:
        self._client = client
        self._api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = timeout
        self.default_retry_wait = default_retry_wait

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(base_url={self.base_url!r}, timeout={self.timeout})"

    @property
    def endpoint(self) -> str:
        return self.base_url + self.path

    async def search(
        self,
        query: str,
        *,
        count: int,
        allowed_domains: Sequence[str] = (),
        blocked_domains: Sequence[str] = (),
        user_location: UserLocation | None = None,
    ) -> SearchResponse:
        text = check_query(query, max_chars=self.max_query_chars, max_words=self.max_query_words)
        allowed, blocked = normalize_domains(allowed_domains), normalize_domains(blocked_domains)
        count = max(1, min(count, self.max_count))
        started = time.perf_counter()
        try:
            request = self.build_request(text, count, allowed, blocked, user_location)
        except httpx.InvalidURL as exc:
            raise ProviderError(f"{self.name}: invalid base URL {self.base_url!r}",
                                hint="fix web_search.base_url") from exc
        response = await self._send(request)
        results = filter_results(self.parse_results(_json(response, self.name)), allowed, blocked)
        elapsed = (time.perf_counter() - started) * 1000
        return SearchResponse(
            self.name, text, tuple(results[:count]), rate_limit_headers(response.headers), elapsed
        )

    def fit_operators(self, query: str, allowed: Sequence[str], blocked: Sequence[str]) -> str:
        """Operators count toward the length budget; when they do not fit, drop them and rely
        on the post-filter rather than truncating the user's query (websearch.md §3.4)."""
        full = site_operators(query, allowed, blocked)
        words_ok = self.max_query_words is None or len(full.split()) <= self.max_query_words
        return full if len(full) <= self.max_query_chars and words_ok else query

    def build_request(
        self,
        query: str,
        count: int,
        allowed: Sequence[str],
        blocked: Sequence[str],
        location: UserLocation | None,
    ) -> httpx.Request:
        raise NotImplementedError

    def parse_results(self, body: Any) -> list[SearchResult]:
        raise NotImplementedError

    def is_bad_key(self, status: int, body: object) -> bool:
        return status in (401, 403)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._attempt(request)
        if response.status_code == 429:
            wait = retry_delay(response.headers, self.default_retry_wait)
            if wait is not None:
                logger.info("web_search provider %s answered 429; retrying once in %.2fs",
                            self.name, wait)
                await asyncio.sleep(wait)
                response = await self._attempt(request)
        if response.status_code >= 400:
            raise self._error_for(response)
        return response

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._client.send(request)
        except httpx.TimeoutException as exc:
            raise ProviderError(
                f"{self.name} did not answer within {self.timeout:g}s",
                hint="raise web_search.timeout, or check the provider's status page",
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"could not reach {self.name} at {self.base_url} ({type(exc).__name__})",
                hint="check the network / proxy settings and web_search.base_url",
            ) from exc

    def _error_for(self, response: httpx.Response) -> ProviderError:
        status, body = response.status_code, _json_or_none(response)
        detail = self._redact(error_detail(body))[:200]
        suffix = f": {detail}" if detail else ""
        if status == 429:
            return ProviderError(
                f"{self.name} rate limit hit (HTTP 429{suffix})", error_code="too_many_requests",
                status=status,
                hint="the provider's free tier may be capped at a low QPS or monthly quota; "
                "wait, upgrade the plan or switch providers (web_search.provider)",
            )
        if self.is_bad_key(status, body):
            return self._bad_key(status, suffix)
        if status == 402:
            return ProviderError(
                f"{self.name} refused the search: out of credits (HTTP 402{suffix})",
                status=status, hint="top up the provider account or switch web_search.provider",
            )
        return ProviderError(
            f"{self.name} answered HTTP {status}{suffix}", status=status,
            hint="the provider failed; try again later or switch web_search.provider",
        )

    def _bad_key(self, status: int, suffix: str) -> ProviderError:
        # Loud on purpose: a bad key otherwise shows up only as "no results" in Claude Code
        # (seed, Troubleshooting: "verify the provider's API key is valid").
        logger.error(
            "web_search provider %s rejected the API key (HTTP %d); set %s to a valid key "
            "(web_search.api_key)", self.name, status, self.key_env,
        )
        return ProviderError(
            f"{self.name} rejected the API key (HTTP {status}{suffix})", status=status,
            hint=f"set {self.key_env} to a valid {self.name} API key (web_search.api_key)",
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _json(response: httpx.Response, name: str) -> Any:
    body = _json_or_none(response)
    if not isinstance(body, dict):
        raise ProviderError(f"{name} answered with a body that is not a JSON object")
    return body
