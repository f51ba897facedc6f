"""File metadata in the state store (namespace `files`), ownership, listing and pages.

Keys are file ids, which sort by creation time (`files/ids.py`), so `kv_list` returns files
oldest first. A record names its `owner` (the key or gateway user that uploaded it); a
caller whose owner differs gets `FileNotFound`, the same answer as for an id that never
existed. `owner=None` means every file is visible (permissive `api_keys` mode: one owner).
A file uploaded with an expiry is stored with that TTL and simply stops existing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from continuum_cli.errors import FileNotFound
from continuum_cli.files import blob
from continuum_cli.files.ids import is_file_id, new_file_id
from continuum_cli.files.records import FileRecord

log = logging.getLogger("continuum.files")
NS = "files"
EXPIRY_NS = "files_expiry"  # id -> {"at": expiry}: whose bytes the sweep removes, and when
_ORPHAN_AGE = 3600.0  # an unfinished upload not written to for this long was abandoned
# the Files API is off the limits' hot path: it may wait on the store longer than
# `state.timeout` (which bounds admissions); a busy store must not lose an upload that took
# minutes, or fail a list, a lookup or a deletion under load
STORE_TIMEOUT = 5.0


class FileStore:
    def __init__(self, store: Any, directory: Path, max_bytes: int) -> None:
        self.store = store  # continuum_cli.state.StateStore
        self.directory = directory
        self.max_bytes = max_bytes

    def path(self, record: FileRecord) -> Path:
        return blob.blob_path(self.directory, record.id)

    def writer(self) -> blob.BlobWriter:
        return blob.BlobWriter(self.directory)

    async def add(self, writer: blob.BlobWriter, *, owner: str, filename: str,
                  mime_type: str, purpose: str = "user_data",
                  expires_in: float | None = None) -> FileRecord:
        """Commit a finished upload: the blob moves into place, then its record is stored."""
        now = time.time()
        record = FileRecord(new_file_id(int(now * 1000)), filename, mime_type, writer.size,
                            now, owner, purpose, now + expires_in if expires_in else None)
        await writer.commit(record.id)
        value = {k: v for k, v in asdict(record).items() if k != "id"}
        try:
            if record.expires_at is not None:  # the record expires by itself, its bytes not
                await self.store.kv_put(EXPIRY_NS, record.id, {"at": record.expires_at},
                                        timeout=STORE_TIMEOUT)
            await self.store.kv_put(NS, record.id, value, ttl=expires_in,
                                    timeout=STORE_TIMEOUT)
        except BaseException:
            await blob.remove(self.path(record))
            raise
        return record

    async def get(self, file_id: str, owner: str | None) -> FileRecord:
        if not is_file_id(file_id):
            raise FileNotFound(file_id)
        value = await self.store.kv_get(NS, file_id, timeout=STORE_TIMEOUT)
        if value is None:
            raise FileNotFound(file_id)
        record = FileRecord.from_dict(file_id, value)
        if owner is not None and record.owner != owner:
            raise FileNotFound(file_id)
        return record

    async def visible(self, owner: str | None) -> list[FileRecord]:
        """Every live file the owner may see, oldest first."""
        listing = await self.store.kv_list(NS, timeout=STORE_TIMEOUT)
        records = [FileRecord.from_dict(k, v) for k, v in listing]
        return [r for r in records if owner is None or r.owner == owner]

    async def delete(self, file_id: str, owner: str | None) -> FileRecord:
        record = await self.get(file_id, owner)
        await self.store.kv_delete(NS, file_id, timeout=STORE_TIMEOUT)
        await blob.remove(self.path(record))
        if record.expires_at is not None:
            await self.store.kv_delete(EXPIRY_NS, file_id, timeout=STORE_TIMEOUT)
        return record

    async def sweep(self, now: float | None = None) -> int:
        """Remove what expiries and crashes left in `files.dir`: the bytes of expired files
        (listed in `EXPIRY_NS` when they were uploaded) and unfinished uploads. A blob with no
        record is never guessed to be an orphan: `files.dir` may be shared with routers that
        use another store. Returns how many files were removed."""
        now = time.time() if now is None else now
        removed = 0
        for path in blob.stale_parts(self.directory, _ORPHAN_AGE):
            await blob.remove(path)
            removed += 1
        for file_id, value in await self.store.kv_list(EXPIRY_NS, timeout=STORE_TIMEOUT):
            if float(value.get("at", now)) <= now and is_file_id(file_id):
                await blob.remove(blob.blob_path(self.directory, file_id))
                await self.store.kv_delete(EXPIRY_NS, file_id)
                removed += 1
        if removed:
            log.info("files: removed %d expired or unfinished file(s) from %s", removed,
                     self.directory)
        return removed
