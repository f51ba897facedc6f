"""JSON text from outside (request bodies, backend answers, tool arguments), parsed with a
bound on nesting.

`json.loads` recurses once per nesting level: `[[[[…` (50 000 brackets) ends in a
RecursionError inside the parser, and a document a few hundred levels deep that does parse
can still exhaust the stack of whatever walks it next. Every JSON text that comes from
outside is parsed here instead, and anything nested deeper than `MAX_DEPTH` (512) levels is
refused with `JsonTooDeep`, a ValueError like every other JSON error.

How the depth is checked, cheapest first (figures for a 433 KB Claude Code conversation on
the 2-core bench machine, where `json.loads` takes 1.2–1.6 ms):

1. A text with at most `MAX_DEPTH` opening brackets cannot be deeper: two `count` calls at
   C speed (0.7 µs for a small request, 62 µs for an 89 KB Claude Code turn whose parse
   takes 186 µs). Claude Code's own requests have 150–260 brackets: the usual case.
2. The parser's own guard: CPython's JSON scanner counts its recursion against the
   interpreter's limit (about 1 000 frames) and raises RecursionError, cleanly, long before
   the C stack is at risk. That error is turned into `JsonTooDeep`.
3. A text that parsed but had more brackets than the limit is measured on the parsed value,
   one nesting level at a time with a list per level -- no recursion, and strings are
   already strings, so brackets inside them never count. 0.3 ms for the conversation above;
   a scan of the text that skips strings and escapes costs 2.5 ms there (measured).
"""

from __future__ import annotations

import json
import math
from typing import Any

from continuum_cli.errors import InvalidRequest

MAX_DEPTH = 512


class JsonTooDeep(ValueError):
    """A JSON text nested deeper than the limit. A ValueError, as `json.loads` errors are."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels (the nesting limit is "
                         f"{limit})")
        self.limit = limit


def loads(text: bytes | str, limit: int = MAX_DEPTH, **options: Any) -> Any:
    """`json.loads(text, **options)`, refusing a text nested deeper than `limit`."""
    try:
        value = json.loads(text, **options)
    except RecursionError:
        raise JsonTooDeep(limit) from None
    if _brackets(text) > limit and too_deep(value, limit):
        raise JsonTooDeep(limit)
    return value


def _brackets(text: bytes | str) -> int:
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests lists and dicts deeper than `limit` (a scalar is
    depth 0, `[]` depth 1), measured level by level without recursion."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        deeper = []
        for node in level:
            for child in (node.values() if type(node) is dict else node):
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper
    return False


def parse_json_body(body: bytes | str) -> dict[str, Any]:
    """A request body that must be one JSON object: the one parser of every JSON-body route
    (the Anthropic and OpenAI routes, count_tokens, and any route added later). A 400 says
    what is wrong and where."""
    if not body.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        data = loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except JsonTooDeep:
        raise InvalidRequest(f"request body is not valid JSON: arrays and objects are nested "
                             f"deeper than {MAX_DEPTH} levels (the nesting limit is "
                             f"{MAX_DEPTH})") from None
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not valid JSON: it is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno} (char {exc.pos})") from None
    except ValueError as exc:  # an integer past Python's 4300-digit limit, NaN, 1e400
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"request body must be a JSON object, not "
                             f"{_json_type(data)}")
    return data


def _no_constant(name: str) -> Any:
    # RFC 8259 §6: NaN and Infinity are not JSON (Python's parser accepts them)
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):  # 1e400: a backend would get `Infinity`, not JSON
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
