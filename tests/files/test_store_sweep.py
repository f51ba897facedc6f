"""The hourly sweep: expired files' bytes and abandoned uploads go; nothing else is guessed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from continuum_cli.errors import FileNotFound
from continuum_cli.files.ids import new_file_id
from continuum_cli.files.store import FileStore
from continuum_cli.state.sqlite_store import SQLiteStore

pytestmark = pytest.mark.anyio


async def upload(files: FileStore, data: bytes, expires_in: float | None = None) -> str:
    writer = files.writer()
    await writer.open()
    await writer.write(data)
    record = await files.add(writer, owner="o", filename="f", mime_type="text/plain",
                             expires_in=expires_in)
    return record.id


async def test_sweep(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        files = FileStore(store, tmp_path / "blobs", 10**6)
        kept = await upload(files, b"kept")
        expiring = await upload(files, b"soon", expires_in=3600)
        foreign = tmp_path / "blobs" / new_file_id(0)  # another router's file, same folder
        foreign.write_bytes(b"not ours")
        os.utime(foreign, (0, 0))
        abandoned = tmp_path / "blobs" / ".upload-x.part"
        abandoned.write_bytes(b"half")
        os.utime(abandoned, (0, 0))
        assert await files.sweep() == 1  # only the abandoned upload: nothing expired yet
        assert not abandoned.exists() and (tmp_path / "blobs" / expiring).exists()
        assert await files.sweep(now=time.time() + 7200) == 1
        assert not (tmp_path / "blobs" / expiring).exists()
        assert (tmp_path / "blobs" / kept).exists() and foreign.exists()
        assert await files.sweep(now=time.time() + 7200) == 0
        await files.delete(kept, "o")
        with pytest.raises(FileNotFound):
            await files.get(kept, "o")
        assert not (tmp_path / "blobs" / kept).exists()
    finally:
        await store.close()


async def test_files_wait_on_the_store_longer_than_an_admission(tmp_path: Path) -> None:
    """`state.timeout` bounds the limits' hot path; a listing of files or an upload's
    commit may take longer on a busy machine and still succeed."""
    store = SQLiteStore(tmp_path / "s.db", timeout=1e-6)  # every off-thread call times out
    await store.open()
    try:
        files = FileStore(store, tmp_path / "blobs", 10**6)
        made = await upload(files, b"listed", expires_in=3600)
        assert [r.id for r in await files.visible(None)] == [made]
        assert await files.sweep(now=time.time() + 7200) == 1
    finally:
        await store.close()


async def test_an_upload_commits_and_a_file_is_deleted_while_another_process_writes(
        tmp_path: Path) -> None:
    """Another process (a replica, `continuum usage`) holding the database's write lock for
    longer than `state.timeout` delays a commit or a deletion; it does not fail it."""
    import asyncio
    import sqlite3
    import threading

    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    locked, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(10)
        other.execute("ROLLBACK")
        other.close()

    try:
        files = FileStore(store, tmp_path / "blobs", 10**6)
        kept = await upload(files, b"kept")
        for step in ("upload", "delete"):
            holder = threading.Thread(target=hold_the_write_lock)
            holder.start()
            locked.wait(10)
            asyncio.get_running_loop().call_later(0.5, release.set)
            if step == "upload":
                made = await upload(files, b"during a write")
            else:
                await files.delete(kept, None)
            holder.join()
            locked.clear()
            release.clear()
        assert [r.id for r in await files.visible(None)] == [made]
    finally:
        await store.close()
