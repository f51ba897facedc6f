"""A small pool of extraction worker processes with a hard time limit per document.

At most `workers` documents are read at once; idle workers are kept for the next document
(starting one and loading pypdf takes a few hundred milliseconds). A worker that runs past
the time limit, fails, or is abandoned (its request was cancelled) is killed, never reused:
its state is unknown. The time limit covers the extraction only, not a worker's start-up,
so a loaded machine does not turn a legitimate document into a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from continuum_cli.documents.worker import READY, frame

log = logging.getLogger("continuum.documents")
_MODULE = "continuum_cli.documents.worker"
_START_TIMEOUT = 60.0


class WorkerFailed(Exception):
    """The worker died, timed out or broke the protocol. `reason`: `timeout` or `crashed`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(eq=False)
class _Worker:
    process: asyncio.subprocess.Process

    async def ask(self, header: dict[str, Any], data: bytes) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(frame(json.dumps(header).encode()) + frame(data))
        await stdin.drain()
        size = int.from_bytes(await stdout.readexactly(4), "big")
        reply: dict[str, Any] = json.loads(await stdout.readexactly(size))
        return reply

    def kill(self) -> asyncio.Future[None]:
        """Kill now; the returned future is done once the process is reaped."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        return asyncio.ensure_future(_reap(self.process))


async def _reap(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(Exception):
        await process.wait()
    transport = getattr(process, "_transport", None)
    if transport is not None:  # its pipes closed while the loop runs, not at collection
        transport.close()


def _child_env() -> dict[str, str]:
    # the worker imports what the router imports, also from a zipapp's unpacked site-packages
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.exists(p))
    return env


class ExtractorPool:
    def __init__(self, workers: int, timeout: float, memory_limit: int) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[_Worker] = []
        self._running: set[_Worker] = set()
        self._reaping: set[asyncio.Future[None]] = set()

    async def extract(self, data: bytes, max_pages: int) -> dict[str, Any]:
        """The worker's JSON answer for one PDF; `WorkerFailed` when it timed out or died."""
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._start()
            self._running.add(worker)
            try:
                reply = await self._ask(worker, data, max_pages)
            except BaseException:
                self._kill(worker)
                raise
            finally:
                self._running.discard(worker)
            if reply.get("ok"):
                self._idle.append(worker)
            else:
                self._kill(worker)  # after a MemoryError or a parser failure: start afresh
            return reply

    def _kill(self, worker: _Worker) -> None:
        reaping = worker.kill()
        self._reaping.add(reaping)
        reaping.add_done_callback(self._reaping.discard)

    async def _ask(self, worker: _Worker, data: bytes, max_pages: int) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.timeout):
                return await worker.ask({"max_pages": max_pages}, data)
        except TimeoutError:
            raise WorkerFailed("timeout", f"reading it took longer than "
                                          f"{self.timeout:g}s (documents.timeout)") from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            code = worker.process.returncode
            log.warning("document worker failed (%s, exit status %s)", type(exc).__name__, code)
            raise WorkerFailed("crashed", "the PDF reader stopped while reading it (it may "
                                          "need more than documents.memory_limit)") from None

    async def _start(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", _MODULE, str(self.memory_limit),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env=_child_env())
        worker = _Worker(process)
        try:
            assert process.stdout is not None
            async with asyncio.timeout(_START_TIMEOUT):
                ready = await process.stdout.readexactly(len(READY))
        except (asyncio.IncompleteReadError, TimeoutError):
            ready = b""
        except BaseException:
            self._kill(worker)
            raise
        if ready != READY:
            self._kill(worker)
            log.error("the document worker did not start (exit status %s)", process.returncode)
            raise WorkerFailed("crashed", "the PDF reader process did not start; see the "
                                          "router log")
        return worker

    async def aclose(self) -> None:
        workers = [*self._idle, *self._running]
        self._idle.clear()
        for worker in workers:
            self._kill(worker)
        if self._reaping:
            await asyncio.wait(list(self._reaping), timeout=5)
