"""PDF bytes -> text with page markers, with pypdf. Runs in a worker process only
(`documents/worker.py`): parsing an untrusted PDF is unbounded work that must never run on
the event loop or in the router's own memory.

The text is one block per page, each opened by `--- page N ---`, so a model can cite pages.
A PDF is refused (`Unreadable`, with a reason a person can act on) when it is encrypted,
has more pages than allowed, has no extractable text at all (a scan), or cannot be parsed.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

PAGE_MARKER = "--- page {} ---"
# the extracted text of one document; a model's whole context is far smaller than this
MAX_TEXT_CHARS = 4 * 2**20


class Unreadable(Exception):
    """A PDF that cannot become text. `reason` is a short code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Extracted:
    text: str  # every page, each after its marker
    pages: int
    title: str | None = None  # the PDF's own /Title, if it has one


def extract(data: bytes, max_pages: int) -> Extracted:
    """The text of every page of `data`, or `Unreadable`."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed files warn per object
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _opens_without_password(reader):
            raise Unreadable("encrypted", "it is encrypted (password-protected); send a "
                                          "decrypted copy")
        return _pages_text(reader, max_pages)
    except Unreadable:
        raise
    except MemoryError:
        raise Unreadable("too_large", "reading it needs more memory than "
                                      "documents.memory_limit allows") from None
    except RecursionError:
        raise Unreadable("malformed", "its objects are nested too deeply to read") from None
    except Exception as exc:  # pypdf raises many types on malformed input
        raise Unreadable("malformed", f"it is not a readable PDF ({_describe(exc)})") from None


def _opens_without_password(reader: Any) -> bool:
    """An encrypted PDF whose user password is empty (only an owner password restricts
    printing or copying) opens in every viewer without asking: it is read the same way
    (ISO 32000-1, 7.6.3.3: the empty string is tried as the user password)."""
    try:
        return bool(reader.decrypt(""))  # PasswordType.NOT_DECRYPTED is 0
    except Exception:  # an algorithm pypdf cannot run without an optional dependency
        return False


def _pages_text(reader: Any, max_pages: int) -> Extracted:
    count = len(reader.pages)
    if count > max_pages:
        raise Unreadable("too_many_pages", f"it has {count} pages; at most {max_pages} are "
                                           "read (documents.max_pages)")
    blocks, size, found = [], 0, False
    for number, page in enumerate(reader.pages, start=1):
        text = (page.extract_text() or "").strip()
        found = found or bool(text)
        size += len(text)
        if size > MAX_TEXT_CHARS:
            raise Unreadable("too_large", f"its text is larger than {MAX_TEXT_CHARS} "
                                          "characters")
        blocks.append(f"{PAGE_MARKER.format(number)}\n{text}" if text
                      else PAGE_MARKER.format(number))
    if not found:
        raise Unreadable("no_text", f"it has no extractable text ({count} page"
                                    f"{'s' if count != 1 else ''}; probably scanned images): "
                                    "OCR it first or send its pages as images")
    return Extracted("\n\n".join(blocks), count, _title(reader))


def _title(reader: Any) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a broken /Info dictionary is not worth refusing the text for
        return None
    return str(title).strip() or None if title else None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
