"""Tool arguments that must end up as one JSON object (checklist items 34, 39).

`JsonPrefix` decides how much streamed argument text may go out, `repair` rewrites what a
model got wrong, and `complete` ends a tool block so that the forwarded text is one JSON
object whatever the backend sent. The last property is checked for every way of splitting
each argument text into two fragments.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from continuum_cli.translate.partial_json import (
    INVALID_ARGUMENTS_KEY,
    JsonPrefix,
    complete,
    is_object,
    object_text,
    repair,
)

KEY = INVALID_ARGUMENTS_KEY


# -- what may go out --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "safe", "broken"),
    [
        pytest.param('{"a": 1', '{"a": 1', False, id="open-number"),
        pytest.param('{"a": 1, ', '{"a": 1', False, id="comma-held"),
        pytest.param('{"a": 1, "b', '{"a": 1, "b', False, id="comma-released-by-next-key"),
        pytest.param('{"a": [1, ', '{"a": [1', False, id="array-comma-held"),
        pytest.param('{"a": "x\\', '{"a": "x', False, id="escape-held"),
        pytest.param('{"a": "x\\u00', '{"a": "x', False, id="unicode-escape-held"),
        pytest.param('{"a": "x\\u00e9', '{"a": "x\\u00e9', False, id="unicode-escape-done"),
        pytest.param("  ", "", False, id="whitespace-held"),
        pytest.param('{"a" : 1 }', '{"a" : 1 }', False, id="spaces-around-tokens"),
        pytest.param('{"a" 1}', '{"a" ', True, id="missing-colon"),
        pytest.param("  {", "  {", False, id="opening-brace"),
        pytest.param("{'a': 1}", "{", True, id="single-quote"),
        pytest.param('{"a": True}', '{"a": ', True, id="python-literal"),
        pytest.param('{"a": 1,}', '{"a": 1', True, id="trailing-comma"),
        pytest.param('{"a": "l1\nl2"}', '{"a": "l1', True, id="raw-newline-in-string"),
        pytest.param('{"a": "\\q"}', '{"a": "', True, id="invalid-escape"),
        pytest.param('{"a": 01}', '{"a": 0', True, id="leading-zero"),
        pytest.param('{"a": -}', '{"a": -', True, id="sign-without-digits"),
        pytest.param('{"a": nul}', '{"a": nul', True, id="cut-literal"),
        pytest.param('{"a": 1]', '{"a": 1', True, id="wrong-closer"),
        pytest.param('{"a": 1} {', '{"a": 1} ', True, id="text-after-object"),
        pytest.param("[1]", "", True, id="not-an-object"),
        pytest.param('"{}"', "", True, id="string"),
        pytest.param('{"a": -1.5e+3, "b": [true, false, null, {}], "c": "\\"\\n"}',
                     '{"a": -1.5e+3, "b": [true, false, null, {}], "c": "\\"\\n"}', False,
                     id="every-token"),
    ],
)
def test_safe_prefix(text: str, safe: str, broken: bool) -> None:
    whole, by_char = JsonPrefix(), JsonPrefix()
    whole.feed(text)
    for c in text:
        by_char.feed(c)
    for scan in (whole, by_char):
        assert text[: scan.safe] == safe
        assert scan.broken is broken


@pytest.mark.parametrize(
    ("text", "done"),
    [
        pytest.param('{"a": {"b": []}}', True, id="nested"),
        pytest.param('{"a": {"b": []}} \n', True, id="trailing-whitespace"),
        pytest.param('{"a": {"b": []}', False, id="open"),
        pytest.param("{}", True, id="empty"),
    ],
)
def test_done(text: str, done: bool) -> None:
    scan = JsonPrefix()
    scan.feed(text)
    assert scan.done is done


# -- repair -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("{'command': 'ls'}", {"command": "ls"}, id="single-quotes"),
        pytest.param("{'a': 'say \"hi\"', 'b': 'it\\'s'}", {"a": 'say "hi"', "b": "it's"},
                     id="quotes-inside-single-quotes"),
        pytest.param('{"a": True, "b": False, "c": None}', {"a": True, "b": False, "c": None},
                     id="python-literals"),
        pytest.param('{command: "ls", n_1: 2}', {"command": "ls", "n_1": 2}, id="bare-keys"),
        pytest.param('{"a": [1, 2,], }', {"a": [1, 2]}, id="trailing-commas"),
        pytest.param('{"a": {"b": [1', {"a": {"b": [1]}}, id="missing-closers"),
        pytest.param('{"a": 1,', {"a": 1}, id="missing-closer-after-comma"),
        pytest.param('{"a": "l1\nl2\t"}', {"a": "l1\nl2\t"}, id="raw-control-characters"),
        pytest.param('{"p": "C:\\Users\\dir"}', {"p": "C:\\Users\\dir"}, id="invalid-escapes"),
        pytest.param('{"a": "\\u00e9\\n"}', {"a": "é\n"}, id="valid-escapes-kept"),
        pytest.param('{"a": 1}}', {"a": 1}, id="extra-closer-dropped"),
        pytest.param('{"a": 1}{"b": 2}', {"a": 1}, id="second-object-dropped"),
        pytest.param('{"command": "rm -rf /tmp/x', None, id="cut-string-not-invented"),
        pytest.param('{"a":', None, id="cut-after-colon"),
        pytest.param('{"a": NaN}', None, id="nan"),
        pytest.param('{"a": 1]', None, id="wrong-closer"),
        pytest.param("[1, 2]", None, id="array"),
        pytest.param("ls -la", None, id="not-json"),
    ],
)
def test_repair(raw: str, expected: dict[str, Any] | None) -> None:
    fixed = repair(raw)
    if expected is None:
        assert fixed is None
    else:
        assert fixed is not None and json.loads(fixed) == expected


def test_repair_copies_valid_text_verbatim() -> None:
    raw = '{"a": "x\\u00e9\\/", "b": [1,2],  "c": True}'
    assert repair(raw) == '{"a": "x\\u00e9\\/", "b": [1,2],  "c": true}'


# -- the end of a tool block ------------------------------------------------------------------
ARGUMENTS = [
    pytest.param('{"command": "ls"}', {"command": "ls"}, id="valid"),
    pytest.param(' {"a": [1, {"b": "c"}]} ', {"a": [1, {"b": "c"}]}, id="valid-with-spaces"),
    pytest.param("{'command': 'ls'}", {"command": "ls"}, id="single-quotes"),
    pytest.param('{"a": 1, "b": 2,}', {"a": 1, "b": 2}, id="trailing-comma"),
    pytest.param('{"a": [1, 2,]}', {"a": [1, 2]}, id="trailing-comma-in-array"),
    pytest.param('{"a": {"b": 1}', {"a": {"b": 1}}, id="missing-brace"),
    pytest.param('{"a": True}', {"a": True}, id="python-literal"),
    pytest.param('{"a": "it\\\'s"}', {"a": "it's"}, id="escaped-single-quote"),
    pytest.param('{"p": "C:\\dir"}', {"p": "C:\\dir"}, id="invalid-escape"),
    pytest.param('{"a": "l1\nl2"}', {"a": "l1\nl2"}, id="raw-newline"),
    pytest.param('{"a": 1}}', {"a": 1}, id="extra-brace"),
    pytest.param('{"a": 1} trailing words', {"a": 1}, id="words-after-object"),
    pytest.param("", {}, id="empty"),
    pytest.param('"{\\"a\\": 1}"', {"a": 1}, id="double-encoded"),
    pytest.param("\"{'a': 1}\"", {"a": 1}, id="double-encoded-single-quotes"),
    pytest.param("[1, 2]", {KEY: "[1, 2]"}, id="array"),
    pytest.param("ls -la", {KEY: "ls -la"}, id="not-json"),
]
# Cut off (max_tokens) or broken past repair: the part already forwarded stays, closed, and
# the raw text rides along under the key, so the client's schema check rejects the call
# instead of running it with a truncated value.
UNREPAIRABLE = [
    pytest.param('{"command": "rm -rf /tmp/x', {"command": "rm -rf /tmp/x"}, id="cut-string"),
    pytest.param('{"a":', {"a": None}, id="cut-after-colon"),
    pytest.param('{"a": 1, "b', {"a": 1, "b": None}, id="cut-key"),
    pytest.param('{"a": -', {"a": 0}, id="cut-number"),
    pytest.param('{"a": tr', {"a": True}, id="cut-literal"),
    pytest.param('{"a": [{"b": "c', {"a": [{"b": "c"}]}, id="cut-nested"),
    pytest.param('{"a": NaN}', {"a": None}, id="nan"),
    pytest.param('{"a": 1]', {"a": 1}, id="wrong-closer"),
]


def _forward(raw: str, pieces: list[str]) -> str:
    """What a stream sends for `raw` arriving in `pieces`: every safe prefix, then the end."""
    scan, sent = JsonPrefix(), ""
    for piece in pieces:
        scan.feed(piece)
        sent = raw[: scan.safe]
    return sent + complete(sent, raw)


def _splits(raw: str) -> list[list[str]]:
    return [[raw], list(raw)] + [[raw[:k], raw[k:]] for k in range(1, len(raw))]


@pytest.mark.parametrize(("raw", "expected"), ARGUMENTS)
def test_complete_gives_the_repaired_object(raw: str, expected: dict[str, Any]) -> None:
    for pieces in _splits(raw):
        assert json.loads(_forward(raw, pieces)) == expected, pieces
    assert json.loads(object_text(raw)) == expected  # the non-streaming path agrees


@pytest.mark.parametrize(("raw", "partial"), UNREPAIRABLE)
def test_complete_keeps_what_cannot_be_repaired_visible(raw: str, partial: dict[str, Any]
                                                         ) -> None:
    for pieces in _splits(raw):
        assert json.loads(_forward(raw, pieces)) == {**partial, KEY: raw}, pieces
    assert json.loads(object_text(raw)) == {KEY: raw}  # nothing was forwarded


@pytest.mark.parametrize(
    ("sent", "raw"),
    [
        pytest.param('{"a": "x\\', '{"a": "x\\', id="inside-escape"),
        pytest.param('{"a": "\\u00', '{"a": "\\u00', id="inside-unicode-escape"),
        pytest.param('{"a": 1, ', '{"a": 1, ', id="after-comma"),
        pytest.param('{"a": {"b": 1, ', '{"a": {"b": 1, ', id="after-nested-comma"),
        pytest.param('{"a": [1, ', '{"a": [1, ', id="after-array-comma"),
        pytest.param('{"a"', '{"a"', id="after-key"),
        pytest.param('{"a": 1.', '{"a": 1.', id="after-dot"),
        pytest.param('{"a": 1e+', '{"a": 1e+', id="after-exponent-sign"),
        pytest.param("{", "{", id="open-brace"),
        pytest.param("  ", "  x", id="only-whitespace"),
        pytest.param('{"a": 1}', '{"a": 1} x', id="closed"),
    ],
)
def test_unparsed_tail_closes_any_prefix(sent: str, raw: str) -> None:
    """`JsonPrefix` holds some of these back; the ending copes with them all the same."""
    scan = JsonPrefix()
    scan.feed(sent)
    value = json.loads(sent + scan.unparsed_tail(raw))
    assert isinstance(value, dict)
    assert value.get(KEY, raw) == raw


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('{"a": 1}', True, id="object"),
        pytest.param("[1]", False, id="array"),
        pytest.param('{"a": Infinity}', False, id="infinity"),
        pytest.param("[" * 100_000, False, id="deep-nesting"),
    ],
)
def test_is_object(text: str, expected: bool) -> None:
    assert is_object(text) is expected
