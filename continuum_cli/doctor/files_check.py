"""Doctor checks for the Files API and documents: `files.dir` can take uploads, and the PDF
reader (pypdf) is installed."""

from __future__ import annotations

import asyncio
import os
from importlib import metadata
from pathlib import Path

from continuum_cli.config.models import Settings
from continuum_cli.doctor.model import CheckResult, failed, passed, skipped

_FILES_FIX = ("set files.dir to a folder the router may create and write (a shared volume "
              "for replicas that share state.redis_url)")


def files_dir_of(settings: Settings) -> Path:
    from continuum_cli.files.blob import default_files_dir

    return Path(settings.files.dir).expanduser() if settings.files.dir else default_files_dir()


def writable_problem(path: Path) -> str | None:
    """Why uploads cannot be stored under `path` (None: they can). The folder may not
    exist yet: the router creates it, so its nearest existing parent must be writable."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user"
    return None


def files_check(path: Path, problem: str | None) -> CheckResult:
    if problem is None:
        return passed("files", f"uploads are kept in {path}")
    return failed("files", f"uploads cannot be stored in {path}: {problem}", _FILES_FIX)


def pdf_reader_check(version: str | None) -> CheckResult:
    if version:
        return passed("pdf reader", f"pypdf {version}: PDFs reach local models as text")
    return failed("pdf reader", "pypdf is not installed: every PDF document is answered 400",
                  "reinstall continuum (pypdf is one of its dependencies): pip install pypdf")


def _pypdf_version() -> str | None:
    try:
        return metadata.version("pypdf")
    except metadata.PackageNotFoundError:
        return None


async def documents_checks(settings: Settings | None) -> list[CheckResult]:
    if settings is None:
        return [skipped("files", "config not loaded")]
    path = files_dir_of(settings)
    problem = await asyncio.to_thread(writable_problem, path)
    return [files_check(path, problem), pdf_reader_check(_pypdf_version())]
