"""Edit the `model_aliases:` block of config.yaml in place, keeping everything else as typed.

Why a targeted text edit and not a YAML round trip: PyYAML (already a dependency) drops
comments and reflows the file when it dumps; ruamel.yaml keeps them but would be a new
runtime dependency (and another compiled wheel in the zipapp) for one command. The config is
the user's document, with their comments and their order, so we change only the bytes of the
one entry: PyYAML's node marks give the exact spans. Every edit is then verified by parsing
the result: the whole document must equal the old one with only the alias changed, and the
alias table must pass the strict schema. Otherwise the file is left untouched.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from continuum_cli.config.loader import validate
from continuum_cli.errors import ConfigError, ContinuumError

SECTION = "model_aliases"


def scalar(value: str) -> str:
    """`value` as a YAML scalar, quoted only when YAML needs it (`qwen2.5:7b` -> quoted)."""
    return yaml.safe_dump([value], default_flow_style=True, width=10**9).strip()[1:-1]


def _root(text: str, file: str) -> yaml.MappingNode | None:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    if node is not None and not isinstance(node, yaml.MappingNode):
        raise ConfigError("the top level must be a mapping of sections", file=file)
    return node


def _section(root: yaml.MappingNode | None) -> tuple[yaml.Node, yaml.Node] | None:
    for key, value in (root.value if root is not None else []):
        if key.value == SECTION:
            return key, value
    return None


def _line_end(text: str, index: int) -> int:
    """Index just past the newline that ends the line containing `index`."""
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _indent(root: yaml.MappingNode | None) -> int:
    """The indentation the file uses for nested mappings (2 when it shows none)."""
    for _, value in (root.value if root is not None else []):
        if isinstance(value, yaml.MappingNode) and not value.flow_style and value.value:
            return int(value.value[0][0].start_mark.column)
    return 2


def _flow(aliases: dict[str, str]) -> str:
    return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in aliases.items()) + "}"


def _entry(name: str, target: str) -> str:
    return f"{scalar(name)}: {scalar(target)}"


def set_alias(text: str, name: str, target: str, file: str = "config.yaml") -> str:
    root = _root(text, file)
    found = _section(root)
    if found is None:
        glue = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{glue}{SECTION}:\n{' ' * _indent(root)}{_entry(name, target)}\n"
    key, value = found
    if isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null"):
        return _fill_empty(text, key, value, _indent(root), _entry(name, target))
    mapping = _mapping(value, file)
    if mapping.flow_style:
        return _replace_flow(text, mapping, {**_pairs(mapping), name: target})
    for k, v in mapping.value:
        if k.value == name:
            return text[:v.start_mark.index] + scalar(target) + text[v.end_mark.index:]
    last = mapping.value[-1][1]
    at = last.end_mark.index if last.end_mark.column == 0 else _line_end(text, last.end_mark.index)
    indent = " " * mapping.value[0][0].start_mark.column
    glue = "" if text[:at].endswith("\n") else "\n"
    return f"{text[:at]}{glue}{indent}{_entry(name, target)}\n{text[at:]}"


def _fill_empty(text: str, key: yaml.Node, value: yaml.Node, indent: int, entry: str) -> str:
    # `model_aliases:` (or `~` / `null`) with no entries: drop the null, add one block line.
    text = text[:value.start_mark.index] + text[value.end_mark.index:]
    at = _line_end(text, key.end_mark.index)
    glue = "" if text[:at].endswith("\n") else "\n"
    pad = " " * (key.start_mark.column + indent)
    return f"{text[:at]}{glue}{pad}{entry}\n{text[at:]}"


def _mapping(value: yaml.Node, file: str) -> yaml.MappingNode:
    if not isinstance(value, yaml.MappingNode):
        raise ConfigError(f"`{SECTION}` must be a mapping of name: target", file=file,
                          line=value.start_mark.line + 1)
    return value


def _pairs(mapping: yaml.MappingNode) -> dict[str, str]:
    return {str(k.value): str(v.value) for k, v in mapping.value}


def _replace_flow(text: str, mapping: yaml.MappingNode, aliases: dict[str, str]) -> str:
    return text[:mapping.start_mark.index] + _flow(aliases) + text[mapping.end_mark.index:]


def remove_alias(text: str, name: str, file: str = "config.yaml") -> str:
    found = _section(_root(text, file))
    value = found[1] if found is not None else None
    if value is None or not isinstance(value, yaml.MappingNode) or \
            name not in _pairs(value):
        raise ContinuumError(f"there is no alias `{name}` in {file}",
                             hint="`continuum alias list` shows the aliases")
    if value.flow_style:
        return _replace_flow(text, value, {k: v for k, v in _pairs(value).items() if k != name})
    if len(value.value) == 1:
        return _empty_block(text, found[0], value)
    k, v = next((k, v) for k, v in value.value if k.value == name)
    end = v.end_mark.index if v.end_mark.column == 0 else _line_end(text, v.end_mark.index)
    return text[:_line_start(text, k.start_mark.index)] + text[end:]


def _empty_block(text: str, key: yaml.Node, mapping: yaml.MappingNode) -> str:
    # Removing the last entry would leave `model_aliases:` as null, which the schema rejects;
    # write an explicit empty mapping after the colon instead (a comment there stays).
    last = mapping.value[-1][1]
    end = last.end_mark.index if last.end_mark.column == 0 else _line_end(text, last.end_mark.index)
    start = _line_start(text, mapping.value[0][0].start_mark.index)
    text = text[:start] + text[end:]
    colon = text.index(":", key.end_mark.index) + 1
    return text[:colon] + " {}" + text[colon:]


def verify(old: str, new: str, aliases: dict[str, str], file: str) -> None:
    """The edit changed exactly the alias table, and that table passes the strict schema."""
    before, after = _load(old), _load(new)
    expected = {**before, SECTION: aliases}
    if after != expected:
        raise ContinuumError(f"could not edit {file} safely (the result would change more "
                             f"than {SECTION}); the file is unchanged",
                             hint=f"edit the {SECTION} block by hand")
    validate({SECTION: aliases}, file=file)


def _load(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    return dict(data) if isinstance(data, dict) else {}


def current_aliases(text: str) -> dict[str, str]:
    section = _load(text).get(SECTION)
    return {str(k): str(v) for k, v in section.items()} if isinstance(section, dict) else {}


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` in one step (a crash leaves the old or the new file, never half)."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
