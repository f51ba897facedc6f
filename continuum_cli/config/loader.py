"""Find, read and validate config.yaml: `${VAR}` expansion, key paths, line numbers, suggestions.

Discovery order: `--config PATH`, `$CONTINUUM_CONFIG`, `./config.yaml`, then the platformdirs
user config dir (`…/continuum/config.yaml`). Expansion happens before validation so an unset
variable is reported by name and key path, not as a confusing type error.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from platformdirs import user_config_dir
from pydantic import BaseModel, ValidationError

from continuum_cli.config.models import Settings
from continuum_cli.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
LinePath = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    path: Path | None  # None: built-in defaults, no file found
    env_vars: tuple[str, ...] = ()  # every ${VAR} the file references (for doctor)


def user_config_path() -> Path:
    return Path(user_config_dir("continuum")) / "config.yaml"


def candidate_paths(explicit: str | None = None) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("CONTINUUM_CONFIG")
    if env:
        return [Path(env).expanduser()]
    return [Path.cwd() / "config.yaml", user_config_path()]


def find_config(explicit: str | None = None) -> Path | None:
    """The config file to use, or None. An explicit path that does not exist is an error."""
    paths = candidate_paths(explicit)
    if explicit or os.environ.get("CONTINUUM_CONFIG"):
        if not paths[0].is_file():
            raise ConfigError(f"config file {paths[0]} does not exist", file=str(paths[0]))
        return paths[0]
    return next((p for p in paths if p.is_file()), None)


def load_config(explicit: str | None = None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    path = find_config(explicit)
    if path is None:
        return LoadedConfig(Settings(), None)
    return load_config_text(path.read_text(encoding="utf-8"), str(path), env)


def load_config_text(
    text: str, file: str = "config.yaml", env: Mapping[str, str] | None = None
) -> LoadedConfig:
    env = os.environ if env is None else env
    raw, lines = _parse_yaml(text, file)
    names = tuple(sorted({m.group(1) for m in _VAR.finditer(text)}))
    expanded = _expand(raw, (), env, lines, file)
    settings = validate(expanded, lines, file)
    return LoadedConfig(settings, Path(file), names)


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[LinePath, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", line=line,
                          file=file) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of sections", line=1, file=file)
    lines: dict[LinePath, int] = {}
    _index_lines(node, (), lines, file)
    return data, lines


def _index_lines(node: Any, path: LinePath, out: dict[LinePath, int], file: str = "") -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            if sub in out:  # PyYAML keeps the last one silently; a typo-level mistake
                raise ConfigError(
                    f"duplicate key `{format_path(sub)}` (first at line {out[sub]})",
                    path=format_path(sub), line=key.start_mark.line + 1, file=file)
            out[sub] = key.start_mark.line + 1
            _index_lines(value, sub, out, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _index_lines(item, (*path, i), out, file)


def format_path(path: LinePath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_for(path: LinePath, lines: Mapping[LinePath, int]) -> int | None:
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _expand(value: Any, path: LinePath, env: Mapping[str, str], lines: Mapping, file: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, (*path, k), env, lines, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, i), env, lines, file) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _VAR.sub(lambda m: _lookup(m, path, env, lines, file), value)
    return value


def _lookup(match: re.Match[str], path: LinePath, env: Mapping[str, str], lines: Mapping,
            file: str) -> str:
    name, default = match.group(1), match.group(2)
    if name in env:
        return env[name]
    if default is not None:
        return default
    raise ConfigError(
        f"environment variable {name} is not set (used by `{format_path(path)}`)",
        path=format_path(path), line=_line_for(path, lines), file=file,
        hint=f"export {name}=... or write ${{{name}:-default}} in the config",
    )


def validate(data: Any, lines: Mapping[LinePath, int] | None = None,
             file: str = "config.yaml") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, lines or {}, file) from None


def _config_error(exc: ValidationError, lines: Mapping[LinePath, int], file: str) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    path = format_path(loc) or "(top level)"
    line = _line_for(loc, lines)
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    if err["type"] == "extra_forbidden":
        hint = _suggest(loc)
        text = f"unknown key `{path}`" + (f"; did you mean `{hint}`?" if hint else "")
        return ConfigError(text + more, path=path, line=line, file=file)
    msg = err["msg"].removeprefix("Value error, ")
    return ConfigError(f"`{path}`: {msg}{more}", path=path, line=line, file=file)


def _suggest(loc: LinePath) -> str | None:
    fields = _fields_at(Settings, loc[:-1])
    if not fields or not isinstance(loc[-1], str):
        return None
    close = difflib.get_close_matches(loc[-1], fields, n=1, cutoff=0.5)
    return close[0] if close else None


def _fields_at(model: type[BaseModel], loc: LinePath) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        current = _inner_model(field.annotation)
    return list(current.model_fields) if hasattr(current, "model_fields") else []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
