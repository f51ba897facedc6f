"""File records and pages of them: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FileRecord", "page"]


@dataclass(frozen=True)
class FileRecord:
    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: float  # seconds since the epoch
    owner: str
    purpose: str = "user_data"
    expires_at: float | None = None

    @classmethod
    def from_dict(cls, file_id: str, value: dict[str, Any]) -> FileRecord:
        fields = {k: value[k] for k in cls.__dataclass_fields__ if k in value and k != "id"}
        return cls(id=file_id, **fields)


def page(records: list[FileRecord], limit: int, before_id: str | None = None,
         after_id: str | None = None, descending: bool = True
         ) -> tuple[list[FileRecord], bool]:
    """One page of `records` (given in list order: newest first when `descending`) after
    `after_id` or before `before_id`, and whether more lie beyond it in that direction. A
    cursor is compared by id order, so a file deleted between two pages does not break the
    walk."""
    def later(a: str, b: str) -> bool:  # a comes after b in list order
        return a < b if descending else a > b

    if after_id:
        rest = [r for r in records if later(r.id, after_id)]
        return rest[:limit], len(rest) > limit
    if before_id:
        rest = [r for r in records if later(before_id, r.id)]
        return rest[-limit:], len(rest) > limit
    return records[:limit], len(records) > limit
