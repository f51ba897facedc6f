"""Extractions kept by content hash, so a long Claude Code session that sends the same PDF
on every turn (the whole history is resent) parses it once.

A bounded LRU: at most `entries` documents and `chars` characters of text in all. Refusals
are kept too (a hostile PDF costs its time limit once, not on every turn).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """What reading a PDF gave: its text, or why it has none (`error`)."""

    text: str = ""
    pages: int = 0
    title: str | None = None
    error: str | None = None


def content_key(data: bytes, max_pages: int) -> str:
    return f"{hashlib.sha256(data).hexdigest()}:{max_pages}"


class ExtractionCache:
    def __init__(self, entries: int = 256, chars: int = 64 * 2**20) -> None:
        self.entries = entries
        self.chars = chars
        self._items: OrderedDict[str, Outcome] = OrderedDict()
        self._size = 0

    def get(self, key: str) -> Outcome | None:
        outcome = self._items.get(key)
        if outcome is not None:
            self._items.move_to_end(key)
        return outcome

    def put(self, key: str, outcome: Outcome) -> None:
        if len(outcome.text) > self.chars:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(old.text)
        self._items[key] = outcome
        self._size += len(outcome.text)
        while len(self._items) > self.entries or self._size > self.chars:
            _, dropped = self._items.popitem(last=False)
            self._size -= len(dropped.text)

    def __len__(self) -> int:
        return len(self._items)
