"""Run one search for the emulation: max_uses accounting, the provider call, the blocks.

Errors never escape: each failure becomes a `web_search_tool_result_error` with the code the
provider reported (websearch.md §1.4, §1.10 steps 3-4), so the HTTP request still succeeds.
Every search logs the seed's troubleshooting line `web_search loop round complete`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from continuum_cli.errors import ProviderError
from continuum_cli.websearch.blocks import (
    Block,
    error_result_block,
    new_tool_use_id,
    result_block,
    server_tool_use_block,
)
from continuum_cli.websearch.options import SearchOptions
from continuum_cli.websearch.providers import SearchProvider

log = logging.getLogger("continuum.websearch")


class Searcher:
    """Searches for one Anthropic message. `executed` feeds
    `usage.server_tool_use.web_search_requests` (searches that returned results; an errored
    search is not billed, §1.3)."""

    def __init__(self, provider: SearchProvider | None, options: SearchOptions, *,
                 max_results: int, record: Callable[[str, str], None] | None = None) -> None:
        self.provider = provider
        self.record = record  # (provider, "ok" | error code) per provider call: metrics
        self.options = options
        self.max_results = max_results
        self.answered = 0
        self.attempted = 0
        self.executed = 0

    @property
    def provider_name(self) -> str:
        return self.provider.name if self.provider is not None else "none"

    @property
    def exhausted(self) -> bool:
        """No further search can succeed: `max_uses` spent, or search disabled and the
        model already told so."""
        limit = self.options.max_uses
        spent = limit is not None and self.attempted >= limit
        return spent or (self.provider is None and self.answered > 0)

    def call(self, query: str) -> Block:
        """The `server_tool_use` block for a query, with a fresh `srvtoolu_` id."""
        return server_tool_use_block(new_tool_use_id(), query)

    async def answer(self, use: Block) -> Block:
        """The `web_search_tool_result` paired with `use` (results or an error)."""
        self.answered += 1
        tool_use_id, query = use["id"], str(use["input"].get("query") or "")
        if not query.strip():
            return error_result_block(tool_use_id, "invalid_tool_input")
        if self.provider is None:
            return error_result_block(tool_use_id, "unavailable")
        if self.exhausted:
            log.info("web_search max_uses=%s reached; answering max_uses_exceeded for %r",
                     self.options.max_uses, query)
            return error_result_block(tool_use_id, "max_uses_exceeded")
        self.attempted += 1
        return await self._search(tool_use_id, query)

    async def _search(self, tool_use_id: str, query: str) -> Block:
        started = time.perf_counter()
        try:
            response = await self.provider.search(  # type: ignore[union-attr]
                query, count=self.max_results,
                allowed_domains=self.options.allowed_domains,
                blocked_domains=self.options.blocked_domains,
                user_location=self.options.user_location,
            )
        except ProviderError as exc:
            log.warning(
                "web_search loop round complete provider=%s query=%r results=0 ms=%d "
                "error=%s (%s)", self.provider_name, query, _ms(started), exc.error_code,
                exc.message,
            )
            self._record(exc.error_code)
            return error_result_block(tool_use_id, exc.error_code)
        except Exception:  # a provider bug must not fail the client's request either (§1.4)
            log.exception("web_search provider %s failed unexpectedly for %r",
                          self.provider_name, query)
            self._record("unavailable")
            return error_result_block(tool_use_id, "unavailable")
        self._record("ok")
        self.executed += 1
        log.info("web_search loop round complete provider=%s query=%r results=%d ms=%d",
                 self.provider_name, response.query, len(response.results), _ms(started))
        return result_block(tool_use_id, response.results, provider=self.provider_name,
                            query=response.query)


    def _record(self, result: str) -> None:
        if self.record is not None:
            self.record(self.provider_name, result)


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
