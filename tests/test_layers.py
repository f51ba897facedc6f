"""The sans-I/O layers stay sans-I/O (style.md §0).

`translate/`, `wire/`, `routing.py` and `auth.py` must not import asyncio, httpx, h11, typer
or rich -- directly, or through another continuum module they import. Checked on the source
AST, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "continuum_cli"
FORBIDDEN = {"asyncio", "httpx", "h11", "typer", "rich"}
PURE = sorted(
    [*PACKAGE.glob("translate/*.py"), *PACKAGE.glob("wire/*.py"),
     PACKAGE / "routing.py", PACKAGE / "auth.py",
     *(PACKAGE / "gateway" / f"{name}.py"
       for name in ("codes", "checksum", "device", "csrf", "page", "urls")),
     # limits, budgets and the ledger: arithmetic and parsing only (gate.py, meter.py and
     # query.py are their I/O shells)
     *(PACKAGE / "limits" / f"{name}.py" for name in ("budgets", "plan", "decide", "headers",
                                                      "pricing")),
     PACKAGE / "usage" / "observe.py", PACKAGE / "usage" / "report.py",
     PACKAGE / "state" / "counters.py", PACKAGE / "state" / "codec.py",
     *(PACKAGE / "fleet" / f"{name}.py" for name in ("state", "balancer", "classify")),
     *(PACKAGE / "files" / f for f in ("multipart.py", "ids.py", "records.py", "shapes.py")),
     *(PACKAGE / "documents" / f for f in ("pdf.py", "cache.py")),
     PACKAGE / "claude_state" / "setup.py",
     PACKAGE / "metrics" / "labels.py", PACKAGE / "metrics" / "access.py",
     PACKAGE / "reload" / "diff.py"]
)


def imported_modules(path: Path) -> set[str]:
    """Absolute dotted names imported anywhere in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside = path.is_relative_to(PACKAGE.parent)
    package = ".".join(path.relative_to(PACKAGE.parent).parts[:-1]) if inside else ""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(package, node.module, node.level)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _resolve(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join(parts + ([module] if module else []))


def module_file(name: str) -> Path | None:
    """The source file of a `continuum_cli...` module name (None for names inside one)."""
    if not name.startswith("continuum_cli."):
        return None
    rel = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reachable_violations(start: Path) -> list[str]:
    seen: set[Path] = set()
    todo, bad = [start], []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            if name.split(".")[0] in FORBIDDEN:
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
            found = module_file(name)
            if found is not None:
                todo.append(found)
    return sorted(bad)


def test_pure_layers_exist() -> None:
    names = {p.name for p in PURE}
    assert {"request.py", "stream.py", "anthropic.py", "routing.py", "auth.py"} <= names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_io_or_cli_imports(path: Path) -> None:
    assert reachable_violations(path) == []


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import httpx\n    from rich.console import Console\n")
    assert {n.split(".")[0] for n in imported_modules(bad)} >= {"httpx", "rich"}
