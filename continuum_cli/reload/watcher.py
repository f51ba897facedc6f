"""Notice a changed config file: poll about once a second, cheaply.

A `stat` per file per second (mtime, size, inode: an editor that saves by renaming a new
file over the old one changes the inode, not always the mtime's second); the content hash
(SHA-256) only when the stat changed, so touching a file without changing it, or an editor
that writes the same bytes, triggers nothing. `Fingerprint` is the pure part; `FileWatcher`
the asyncio loop around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("continuum.reload")
Stat = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: the file is missing


def stat_of(path: Path) -> Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def digest_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class Fingerprint:
    """The last seen stat and content hash of each watched file."""

    stats: dict[Path, Stat] = field(default_factory=dict)
    digests: dict[Path, str | None] = field(default_factory=dict)

    def changed(self, paths: Sequence[Path]) -> bool:
        """True when a file's content differs from the last time (records the new state)."""
        changed = False
        for path in paths:
            st = stat_of(path)
            if path in self.stats and st == self.stats[path]:
                continue
            self.stats[path] = st
            digest = digest_of(path) if st is not None else None
            if path in self.digests and digest != self.digests[path]:
                changed = True
            self.digests[path] = digest
        return changed


class FileWatcher:
    """Calls `on_change()` when one of `paths()` changed; `paths` is asked each time (a
    reload may name another `api_keys.keys_file`)."""

    def __init__(self, paths: Callable[[], Sequence[Path]],
                 on_change: Callable[[], Awaitable[None]], interval: float = 1.0) -> None:
        self.paths = paths
        self.on_change = on_change
        self.interval = interval
        self.fingerprint = Fingerprint()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.fingerprint.changed(self.paths())  # the files as they are now: the baseline
        self._task = asyncio.ensure_future(self._run())

    def rebase(self) -> None:
        """The files were just loaded (a reload by signal): that content is the baseline."""
        self.fingerprint.changed(self.paths())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if self.fingerprint.changed(self.paths()):
                    await self.on_change()
            except Exception:  # the watcher must outlive any one failed reload
                log.exception("config file watcher failed; still watching")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
