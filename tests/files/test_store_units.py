"""File ids, pagination, filename and type handling (pure parts of the files package)."""

from __future__ import annotations

import pytest

from continuum_cli.errors import InvalidRequest
from continuum_cli.files.ids import is_file_id, new_file_id
from continuum_cli.files.shapes import content_disposition, rfc3339
from continuum_cli.files.records import FileRecord, page
from continuum_cli.files.upload import _final_component, guess_mime_type


def test_ids_sort_by_time_and_are_valid() -> None:
    ids = [new_file_id(ms) for ms in (0, 1, 61, 62, 10**9, 1_796_000_000_000, 62**8 - 1)]
    assert ids == sorted(ids)
    assert all(is_file_id(i) and len(i) == 30 for i in ids)
    assert new_file_id(5) != new_file_id(5)


@pytest.mark.parametrize("value", ["", "file_", "../etc/passwd", "file_../../x" + "a" * 20,
                                   "file_" + "a" * 24, "file_" + "a" * 26, "FILE_" + "a" * 25,
                                   "file_" + "a" * 24 + "/"])
def test_not_file_ids(value: str) -> None:
    assert not is_file_id(value)


def records(n: int) -> list[FileRecord]:
    """n records, newest first (ids descending)."""
    made = [FileRecord(new_file_id(1000 + i, 0), f"f{i}", "text/plain", i, i, "o")
            for i in range(n)]
    return list(reversed(made))


PAGES = [  # (limit, before index, after index) -> (indexes in the page, has_more)
    pytest.param(2, None, None, [0, 1], True, id="first_page"),
    pytest.param(5, None, None, [0, 1, 2, 3, 4], False, id="all"),
    pytest.param(9, None, None, [0, 1, 2, 3, 4], False, id="limit_past_end"),
    pytest.param(2, None, 1, [2, 3], True, id="after"),
    pytest.param(2, None, 2, [3, 4], False, id="after_to_end"),
    pytest.param(2, None, 4, [], False, id="after_last"),
    pytest.param(2, 4, None, [2, 3], True, id="before"),
    pytest.param(2, 2, None, [0, 1], False, id="before_to_start"),
    pytest.param(2, 0, None, [], False, id="before_first"),
]


@pytest.mark.parametrize(("limit", "before", "after", "expected", "more"), PAGES)
def test_page(limit: int, before: int | None, after: int | None, expected: list[int],
              more: bool) -> None:
    items = records(5)
    found, has_more = page(items, limit, items[before].id if before is not None else None,
                           items[after].id if after is not None else None)
    assert found == [items[i] for i in expected]
    assert has_more is more


def test_page_ascending_and_deleted_cursor() -> None:
    items = list(reversed(records(5)))  # oldest first
    found, more = page(items, 2, after_id=items[1].id, descending=False)
    assert found == items[2:4] and more
    gone = items.pop(2)  # the cursor file was deleted between two pages
    found, _ = page(items, 2, after_id=gone.id, descending=False)
    assert found == items[2:4]


@pytest.mark.parametrize(("declared", "name", "head", "expected"), [
    ("text/csv; charset=utf-8", "x.bin", b"", "text/csv"),
    ("application/octet-stream", "doc.pdf", b"", "application/pdf"),
    (None, "", b"%PDF-1.7 ...", "application/pdf"),
    (None, "noext", b"plain words\n", "text/plain"),
    (None, "noext", b"\x00\x01\x02", "application/octet-stream"),
    (None, "img.png", b"", "image/png"),
    ("image/jpg", "photo.jpg", b"", "image/jpeg"),
    ("application/x-pdf", "a.pdf", b"", "application/pdf"),
    ("application/octet-stream", "shot", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (None, "", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    (None, "x", b"GIF89a\x01\x00\x01\x00\x00", "image/gif"),
    (None, "x", b"RIFF\x24\x00\x00\x00WEBPVP8 \x00", "image/webp"),
])
def test_mime_type(declared: str | None, name: str, head: bytes, expected: str) -> None:
    assert guess_mime_type(declared, name, head) == expected


@pytest.mark.parametrize(("given", "kept"), [
    ("report.pdf", "report.pdf"), ("/etc/passwd", "passwd"), ("C:\\Users\\a\\b.txt", "b.txt"),
    ("../../x", "x"), ("", ""),
])
def test_only_the_final_component_of_a_filename_is_kept(given: str, kept: str) -> None:
    assert _final_component(given) == kept


def test_an_overlong_filename_is_refused_not_cut() -> None:
    assert _final_component("/very/long/dir/" * 40 + "a" * 255) == "a" * 255
    with pytest.raises(InvalidRequest, match="256 characters long"):
        _final_component("a" * 256)


def test_shapes_helpers() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    header = content_disposition('rés"umé.pdf')
    assert header.startswith('attachment; filename="r_s_um_.pdf"')
    assert "filename*=UTF-8''r%C3%A9s%22um%C3%A9.pdf" in header
