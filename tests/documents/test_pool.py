"""Extraction workers: a hard time limit that really stops the work, and recovery after it."""

from __future__ import annotations

import asyncio
import os

import pytest

from continuum_cli.config.models import DocumentsSettings
from continuum_cli.documents.pool import ExtractorPool, WorkerFailed
from continuum_cli.documents.reader import DocumentReader
from continuum_cli.errors import InvalidRequest
from tests import pdfgen

pytestmark = pytest.mark.anyio
GOOD = pdfgen.pdf([["alpha"], ["beta"]])
SLOW = pdfgen.slow_pdf(1_000_000)  # tens of seconds of parsing


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split(") ")[1][0] != "Z"


async def test_timeout_kills_the_worker_and_the_next_document_is_read() -> None:
    pool = ExtractorPool(workers=1, timeout=1.0, memory_limit=2**30)
    try:
        first = await pool.extract(GOOD, 100)
        pid = pool._idle[0].process.pid
        assert first["ok"] and "--- page 2 ---\nbeta" in first["text"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(WorkerFailed) as info:
            await pool.extract(SLOW, 100)
        assert info.value.reason == "timeout" and loop.time() - started < 5
        for _ in range(100):
            if not alive(pid):
                break
            await asyncio.sleep(0.05)
        assert not alive(pid), "the timed-out worker is still running"
        again = await pool.extract(GOOD, 100)
        assert again["ok"]
    finally:
        await pool.aclose()


async def test_a_cancelled_request_kills_its_worker() -> None:
    pool = ExtractorPool(workers=1, timeout=60, memory_limit=2**30)
    try:
        await pool.extract(GOOD, 100)
        pid = pool._idle[0].process.pid
        task = asyncio.ensure_future(pool.extract(SLOW, 100))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if not alive(pid):
                break
            await asyncio.sleep(0.05)
        assert not alive(pid)
        assert (await pool.extract(GOOD, 100))["ok"]
    finally:
        await pool.aclose()


async def test_a_worker_that_dies_is_reported_and_replaced() -> None:
    pool = ExtractorPool(workers=1, timeout=60, memory_limit=2**30)
    try:
        await pool.extract(GOOD, 100)
        worker = pool._idle[0]
        task = asyncio.ensure_future(pool.extract(SLOW, 100))
        await asyncio.sleep(0.5)
        worker.process.kill()
        with pytest.raises(WorkerFailed) as info:
            await task
        assert info.value.reason == "crashed"
        assert (await pool.extract(GOOD, 100))["ok"]
    finally:
        await pool.aclose()


async def test_reader_caches_by_content_and_names_the_document() -> None:
    reader = DocumentReader(DocumentsSettings(timeout=1.0))
    try:
        outcome = await reader.pdf_text(GOOD, "g")
        assert outcome.text.startswith("--- page 1 ---\nalpha")
        await reader.pool.aclose()  # no worker left: a second read must come from the cache
        assert (await reader.pdf_text(GOOD, "g")).text == outcome.text
        with pytest.raises(InvalidRequest, match="PDF document \"slow.pdf\" cannot be read: "
                                                 "reading it took longer than 1s"):
            await reader.pdf_text(SLOW, '"slow.pdf"')
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(InvalidRequest, match="longer than 1s"):  # remembered, not redone
            await reader.pdf_text(SLOW, "again")
        assert loop.time() - started < 0.5
        with pytest.raises(InvalidRequest, match="is not a PDF"):
            await reader.pdf_text(b"hello", "h")
    finally:
        await reader.aclose()


async def test_concurrent_requests_for_one_pdf_share_one_extraction() -> None:
    reader = DocumentReader(DocumentsSettings())
    calls = 0
    real = reader.pool.extract

    async def counted(data: bytes, max_pages: int) -> dict[str, object]:
        nonlocal calls
        calls += 1
        return await real(data, max_pages)

    reader.pool.extract = counted  # type: ignore[method-assign]
    try:
        results = await asyncio.gather(*(reader.pdf_text(GOOD, "g") for _ in range(5)))
        assert calls == 1 and len({r.text for r in results}) == 1
    finally:
        await reader.aclose()
