"""PDF -> text with page markers (pypdf), including hostile and unreadable files."""

from __future__ import annotations

import pytest

from continuum_cli.documents.cache import ExtractionCache, Outcome, content_key
from continuum_cli.documents.pdf import Unreadable, extract
from tests import pdfgen


def test_pages_are_marked_and_the_title_kept() -> None:
    data = pdfgen.pdf([["First (page) one", "line two"], None, ["Third page"]], title="Plan")
    result = extract(data, 100)
    assert result.text == ("--- page 1 ---\nFirst (page) one\nline two\n\n--- page 2 ---\n\n"
                           "--- page 3 ---\nThird page")
    assert result.pages == 3 and result.title == "Plan"


UNREADABLE = [
    pytest.param(lambda: pdfgen.pdf([None, None]), "no_text", "no extractable text (2 pages",
                 id="scanned"),
    pytest.param(lambda: pdfgen.encrypted(pdfgen.pdf([["secret"]])), "encrypted",
                 "encrypted", id="encrypted"),
    pytest.param(lambda: pdfgen.pdf([["a"]] * 4), "too_many_pages",
                 "4 pages; at most 3", id="too_many_pages"),
    pytest.param(pdfgen.nested_pdf, "malformed", "", id="nested_200k_deep"),
    pytest.param(lambda: pdfgen.bomb_pdf(300), "malformed", "Limit", id="compression_bomb"),
    pytest.param(lambda: b"%PDF-1.4\n garbage", "malformed", "not a readable PDF",
                 id="garbage"),
]


@pytest.mark.parametrize(("make", "reason", "message"), UNREADABLE)
def test_unreadable(make, reason: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unreadable) as info:
        extract(make(), 3)
    assert info.value.reason == reason
    assert message in info.value.message


def test_an_owner_password_alone_does_not_stop_reading() -> None:
    """Restrictions without a user password: viewers open it without asking, so do we."""
    data = pdfgen.encrypted(pdfgen.pdf([["open to all"]]), password="", owner="boss")
    assert extract(data, 100).text == "--- page 1 ---\nopen to all"


def test_a_self_referencing_xref_chain_is_read_once() -> None:
    assert extract(pdfgen.xref_loop_pdf(), 100).text == "--- page 1 ---\nloop"


def test_cache_is_bounded_by_entries_and_characters() -> None:
    cache = ExtractionCache(entries=3, chars=10)
    for i in range(5):
        cache.put(str(i), Outcome(text="x"))
    assert len(cache) == 3 and cache.get("0") is None and cache.get("4") is not None
    cache.get("2")  # used: kept over "3"
    cache.put("big", Outcome(text="y" * 9))
    assert cache.get("2") is not None and cache.get("3") is None
    cache.put("huge", Outcome(text="z" * 11))  # larger than the whole cache: not kept
    assert cache.get("huge") is None
    cache.put("e", Outcome(error="why"))  # refusals are kept too
    assert cache.get("e") == Outcome(error="why")


def test_content_key_depends_on_bytes_and_page_limit() -> None:
    assert content_key(b"a", 100) == content_key(b"a", 100)
    assert content_key(b"a", 100) != content_key(b"b", 100)
    assert content_key(b"a", 100) != content_key(b"a", 5)
