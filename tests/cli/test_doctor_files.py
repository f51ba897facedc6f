"""Doctor: files.dir can take uploads, and the PDF reader is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuum_cli.config.models import Settings
from continuum_cli.doctor import files_check

pytestmark = pytest.mark.anyio


def test_a_folder_that_does_not_exist_yet_under_a_writable_parent(tmp_path: Path) -> None:
    assert files_check.writable_problem(tmp_path / "a" / "b") is None


def test_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert files_check.writable_problem(tmp_path / "f" / "files") == f"{tmp_path / 'f'} is not " \
                                                                     "a folder"


async def test_checks_report_the_folder_and_pypdf(tmp_path: Path) -> None:
    good = await files_check.documents_checks(Settings(files={"dir": str(tmp_path / "up")}))
    assert [(r.name, r.status) for r in good] == [("files", "pass"), ("pdf reader", "pass")]
    assert str(tmp_path / "up") in good[0].evidence and "pypdf " in good[1].evidence
    (tmp_path / "f").write_text("x")
    bad = await files_check.documents_checks(Settings(files={"dir": str(tmp_path / "f" / "u")}))
    assert bad[0].status == "fail" and "files.dir" in (bad[0].fix or "")
    assert files_check.pdf_reader_check(None).status == "fail"
    assert (await files_check.documents_checks(None))[0].status == "skip"
