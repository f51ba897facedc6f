"""Stream plumbing for handlers: keep-alive pings during upstream silence, SSE error frames.

`with_keepalive` runs the upstream iterator in one reader task feeding an inbox, so waiting
for the next chunk never creates a task per chunk, and a timer injects a ping marker after
`interval` seconds without upstream data (checklist item 37: Claude Code's stall watchdog and
idle-cutting proxies).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

T = TypeVar("T")
PING: Any = object()
_END: Any = object()


async def with_keepalive(source: AsyncIterator[T], interval: float) -> AsyncIterator[Any]:
    """Yield items of `source`, and `PING` whenever `interval` seconds pass without one.
    Exceptions of `source` are re-raised here; closing this generator cancels the reader."""
    async for batch in batches_with_keepalive(source, interval):
        for item in batch:
            yield item


async def batches_with_keepalive(source: AsyncIterator[T], interval: float
                                 ) -> AsyncIterator[list[Any]]:
    """Like `with_keepalive`, but yields every item already waiting as one list: a fast
    backend's chunks that arrive in one read are translated and written together, one
    frame batch and one socket write instead of one per chunk."""
    inbox = _Inbox()
    last = [time.monotonic()]
    reader = asyncio.ensure_future(_read(source, inbox, last))
    timer = _Ticker(inbox, last, interval)
    try:
        while True:
            batch = await inbox.take()
            items = [i for i in batch if i is not _END and not isinstance(i, _Failure)]
            if items:
                yield items
            for item in batch:
                if isinstance(item, _Failure):
                    raise item.exc
                if item is _END:
                    return
    finally:
        timer.cancel()
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader


class _Inbox:
    """What the reader and the timer produced, taken all at once: cheaper per chunk than an
    `asyncio.Queue` (no per-item bookkeeping), and the consumer wakes once per batch."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def take(self) -> list[Any]:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        items, self.items = self.items, []
        return items


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def _read(source: AsyncIterator[Any], queue: _Inbox, last: list[float]) -> None:
    first = True
    try:
        async for item in source:
            last[0] = time.monotonic()
            queue.put_nowait(item)
            if first:  # let the consumer write the first event before the rest of the read
                first = False
                await asyncio.sleep(0)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        queue.put_nowait(_Failure(exc))
        return
    queue.put_nowait(_END)


class _Ticker:
    """Puts `PING` after `interval` seconds without an item: one timer handle, re-armed when
    it fires, instead of a sleeping task per stream."""

    def __init__(self, inbox: _Inbox, last: list[float], interval: float) -> None:
        self.inbox, self.last, self.interval = inbox, last, interval
        self.loop = asyncio.get_running_loop()
        self.handle = self.loop.call_later(interval, self._fire)

    def _fire(self) -> None:
        wait = self.last[0] + self.interval - time.monotonic()
        if wait <= 0:
            self.inbox.put_nowait(PING)
            self.last[0] = time.monotonic()
            wait = self.interval
        self.handle = self.loop.call_later(wait, self._fire)

    def cancel(self) -> None:
        self.handle.cancel()
