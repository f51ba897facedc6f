"""The request path's entry to PDF extraction: size check, cache, worker pool, errors.

`DocumentReader.pdf_text(data, name)` returns the marked text of a PDF or raises a 400 that
names the document and says why it cannot be read. Two requests carrying the same PDF at
the same time share one extraction.
"""

from __future__ import annotations

import asyncio
import logging

from continuum_cli.config.models import DocumentsSettings
from continuum_cli.documents.cache import ExtractionCache, Outcome, content_key
from continuum_cli.documents.pool import ExtractorPool, WorkerFailed
from continuum_cli.errors import InvalidRequest

log = logging.getLogger("continuum.documents")


class DocumentReader:
    def __init__(self, settings: DocumentsSettings) -> None:
        self.settings = settings
        self.cache = ExtractionCache()
        self._pool: ExtractorPool | None = None
        self._reading: dict[str, asyncio.Future[Outcome]] = {}

    @property
    def pool(self) -> ExtractorPool:
        if self._pool is None:  # no worker process until the first PDF arrives
            s = self.settings
            self._pool = ExtractorPool(s.workers, s.timeout, s.memory_limit)
        return self._pool

    async def pdf_text(self, data: bytes, name: str) -> Outcome:
        """The PDF's text (pages after `--- page N ---` markers), or a 400 naming `name`."""
        if len(data) > self.settings.max_bytes:
            raise InvalidRequest(f"PDF document {name} is {len(data)} bytes, more than "
                                 f"documents.max_bytes ({self.settings.max_bytes})")
        if not data.lstrip()[:5] == b"%PDF-":
            raise InvalidRequest(f"PDF document {name} is not a PDF (it does not start with "
                                 "%PDF-)")
        try:
            outcome = await self._outcome(await _key(data, self.settings.max_pages), data)
        except WorkerFailed as exc:
            raise InvalidRequest(f"PDF document {name} cannot be read: {exc.message}") from None
        if outcome.error:
            raise InvalidRequest(f"PDF document {name} cannot be read: {outcome.error}")
        return outcome

    async def _outcome(self, key: str, data: bytes) -> Outcome:
        while (pending := self._reading.get(key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled
                # the request reading it went away: read it for this one
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            outcome = await self._extract(key, data)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._reading.pop(key, None)
        future.set_result(outcome)
        return outcome

    async def _extract(self, key: str, data: bytes) -> Outcome:
        try:
            reply = await self.pool.extract(data, self.settings.max_pages)
        except WorkerFailed as exc:
            if exc.reason != "timeout":
                raise  # perhaps a passing shortage: not remembered
            outcome = Outcome(error=exc.message)  # a timeout stays a timeout: keep it
        else:
            outcome = _from_reply(reply)
        self.cache.put(key, outcome)
        return outcome

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


async def _key(data: bytes, max_pages: int) -> str:
    """The cache key; a large PDF is hashed by a thread, not on the event loop."""
    if len(data) > 1 << 20:
        return await asyncio.to_thread(content_key, data, max_pages)
    return content_key(data, max_pages)


def _from_reply(reply: dict[str, object]) -> Outcome:
    if not reply.get("ok"):
        return Outcome(error=str(reply.get("message") or "it cannot be read"))
    title = reply.get("title")
    return Outcome(text=str(reply.get("text") or ""), pages=int(str(reply.get("pages") or 0)),
                   title=str(title) if title else None)
