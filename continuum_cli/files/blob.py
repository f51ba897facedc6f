"""File bytes on disk, in `files.dir`, under names the router makes (the file id).

An upload is written to a temporary `.part` file in the same folder, in pieces of up to
`_FLUSH` bytes, each written by a thread so a slow disk never blocks the event loop; it is
fsynced and renamed into place only when complete (rename is atomic within one file system),
so a reader never sees half a file and a failed upload leaves nothing behind. A client's
filename is metadata only and never touches a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from continuum_cli.errors import InternalError
from continuum_cli.files.ids import is_file_id

_FLUSH = 256 * 1024  # per upload in memory at most: many uploads at once stay small
_READ = 256 * 1024
PART_SUFFIX = ".part"


def default_files_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("continuum")) / "files"


def blob_path(directory: Path, file_id: str) -> Path:
    if not is_file_id(file_id):  # never a path from a client's hand
        raise ValueError(f"not a file id: {file_id[:40]!r}")
    return directory / file_id


class BlobWriter:
    """One upload in progress: `write()` pieces, then `commit(file_id)` or `abort()`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.size = 0
        self.temp = directory / f".upload-{secrets.token_hex(12)}{PART_SUFFIX}"
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._fd: int | None = None

    async def open(self) -> None:
        with self._storing():
            self._fd = await asyncio.to_thread(_create, self.directory, self.temp)

    @contextlib.contextmanager
    def _storing(self) -> Iterator[None]:
        """A disk that is full or a folder the router may not write is the operator's to
        fix: a 500 that says so, never a traceback."""
        try:
            yield
        except OSError as exc:
            raise InternalError(f"cannot store the file in files.dir ({self.directory}): "
                                f"{exc.strerror or exc}") from None

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= _FLUSH:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        assert self._fd is not None
        with self._storing():
            await asyncio.to_thread(_write_all, self._fd, data)

    async def commit(self, file_id: str) -> None:
        await self._flush()
        fd, self._fd = self._fd, None
        assert fd is not None
        with self._storing():
            await asyncio.to_thread(_finish, fd, self.temp, blob_path(self.directory, file_id))

    async def abort(self) -> None:
        fd, self._fd = self._fd, None
        self._pending.clear()
        await asyncio.to_thread(_discard, fd, self.temp)


def _create(directory: Path, temp: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _finish(fd: int, temp: Path, final: Path) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, final)


def _discard(fd: int | None, temp: Path) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):  # cleanup never hides the error that caused it
        temp.unlink()


async def open_blob(path: Path) -> BinaryIO:
    """The blob opened for reading (FileNotFoundError when it is not in `files.dir`)."""
    return await asyncio.to_thread(open, path, "rb")


async def read_chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    """An open blob's bytes in pieces, each read by a thread; closes it at the end."""
    try:
        while chunk := await asyncio.to_thread(handle.read, _READ):
            yield chunk
    finally:
        handle.close()


async def read_bytes(path: Path) -> bytes:
    return await asyncio.to_thread(path.read_bytes)


async def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await asyncio.to_thread(path.unlink)


def stale_parts(directory: Path, older_than: float) -> list[Path]:
    """Temporary files of uploads that never finished (a crash), older than `older_than` s."""
    cutoff = time.time() - older_than
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.endswith(PART_SUFFIX) and entry.stat().st_mtime < cutoff:
                found.append(Path(entry.path))
    return found
