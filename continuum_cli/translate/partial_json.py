"""Tool-call arguments that must end up as one JSON object (checklist items 34 and 39).

Nothing guarantees that the `function.arguments` a backend streams add up to JSON: qwen3-coder
writes single-quoted, Python-literal objects (musistudio/claude-code-router#454), other models
leave a trailing comma or forget the closing brace, and max_tokens cuts calls off. The
anthropic SDK (and so Claude Code) parses the concatenated `partial_json` of a tool block and
fails the whole turn when it is not JSON. So the stream translator forwards only text that can
still become a JSON object, and ends every tool block with a delta that makes the whole valid:

* `JsonPrefix` is fed the argument text as it arrives and says how much of it is a valid
  prefix of a JSON object that may go out (`safe`). A comma is held back until the next
  member starts, and so is an unfinished escape, so that `repair` never has to take back
  text that was already sent.
* `repair` rewrites an invalid argument text as JSON: single-quoted strings, Python
  `True`/`False`/`None`, bare keys, trailing commas, raw control characters and invalid
  escapes in strings, missing closing brackets. Valid text is copied verbatim, so a repair
  extends what was already forwarded. Text after the first complete object is dropped. A
  string that was cut off is not repaired: closing it would invent a value (a truncated
  `command` would still run).
* `complete(sent, raw)` is that final delta: the rest of `raw` when it is valid, else the rest
  of its repair, else `sent` closed with `"_unparsed_arguments": raw` added -- the key the
  non-streaming path uses too (`object_text`), so the client's input validation tells the
  model what went wrong instead of running a half-parsed call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from continuum_cli.wire.json_text import MAX_DEPTH
from continuum_cli.wire.json_text import loads as bounded_loads

# Arguments that cannot be read as a JSON object are handed over under this key rather than
# dropped (item 34).
INVALID_ARGUMENTS_KEY = "_unparsed_arguments"

_WS = frozenset(" \t\r\n")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_LITERALS = {"t": "rue", "f": "alse", "n": "ull"}
_PYTHON_WORDS = {"True": "true", "False": "false", "None": "null",
                 "true": "true", "false": "false", "null": "null"}
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]+')  # the bulk of a string, skipped in one step
_REPAIR_RUN = re.compile(r'[^"\'\\\x00-\x1f]+')
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Where the text so far must not go out yet: before the opening brace, after a comma (a
# trailing comma is repaired away) and inside an escape (`\'` is repaired to `'`).
_HOLD = frozenset({"start", "key", "item", "escape", "unicode", "pair", "pair_u"})
# JSON number grammar: sub-state -> character class -> next sub-state.
_NUMBER = {
    "-": {"0": "0", "d": "int"},
    "0": {".": ".", "e": "e"},
    "int": {"0": "int", "d": "int", ".": ".", "e": "e"},
    ".": {"0": "frac", "d": "frac"},
    "frac": {"0": "frac", "d": "frac", "e": "e"},
    "e": {"s": "esign", "0": "exp", "d": "exp"},
    "esign": {"0": "exp", "d": "exp"},
    "exp": {"0": "exp", "d": "exp"},
}
_NUMBER_ENDS = frozenset({"0", "int", "frac", "exp"})


def loads(text: str) -> Any:
    """`json.loads` that refuses NaN and Infinity, which JavaScript's JSON.parse rejects,
    text nested deeper than the limit of `wire.json_text`, and `\\u` escapes of unpaired
    UTF-16 surrogates, which Python's json accepts but strict parsers (the anthropic SDK's
    jiter, RFC 7493 I-JSON) reject."""
    value = bounded_loads(text, parse_constant=_reject_constant)
    if "\\u" in text and _lone_surrogate(text):
        raise ValueError("an unpaired surrogate escape is not valid JSON text here")
    return value


_U_ESCAPE = re.compile(r"(\\+)u([0-9a-fA-F]{4})")


def _lone_surrogate(text: str) -> bool:
    """Whether a `\\uXXXX` escape in `text` (a backslash run of odd length) is a high
    surrogate not followed by a low one, or a low one not preceded by a high one."""
    want_low_at = -1
    for match in _U_ESCAPE.finditer(text):
        if len(match.group(1)) % 2 == 0:
            continue  # an escaped backslash, then the letter u
        code = int(match.group(2), 16)
        start = match.start() + len(match.group(1)) - 1
        if 0xDC00 <= code <= 0xDFFF:
            if start != want_low_at:
                return True
            want_low_at = -1
        elif want_low_at != -1:
            return True
        elif 0xD800 <= code <= 0xDBFF:
            want_low_at = match.end()
    return want_low_at != -1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def is_object(text: str) -> bool:
    try:
        return isinstance(loads(text), dict)
    except (ValueError, RecursionError):
        return False


def object_text(raw: str) -> str:
    """`raw` arguments (possibly a JSON string holding JSON) as the text of one JSON object."""
    if not raw.strip():
        return "{}"
    candidates = [raw]
    inner = _string_content(raw)
    if inner is not None:
        candidates.append(inner)  # double-encoded (saberjack/SHTUCodeProxy#1)
    for text in candidates:
        if is_object(text):
            return text
    for text in candidates:
        fixed = repair(text)
        if fixed is not None:
            return fixed
    return json.dumps({INVALID_ARGUMENTS_KEY: raw}, ensure_ascii=False)


def _string_content(raw: str) -> str | None:
    try:
        value = loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, str) and value.strip() else None


def complete(sent: str, raw: str) -> str:
    """What must follow `sent` -- a prefix of `raw` that `JsonPrefix` let out -- so that
    `sent + complete(sent, raw)` is one JSON object."""
    if not sent:
        return object_text(raw)
    if is_object(raw):
        return raw[len(sent):]
    fixed = repair(raw)
    if fixed is not None and fixed.startswith(sent):
        return fixed[len(sent):]
    scan = JsonPrefix()
    scan.feed(sent)
    return scan.unparsed_tail(raw)


class JsonPrefix:
    """Incremental check that a text is (so far) a prefix of one JSON object.

    `feed()` pieces; scanning stops for good at the first character that cannot continue a
    JSON object (`broken`). `safe` is how many characters may be forwarded, `done` says the
    object is closed.
    """

    def __init__(self) -> None:
        self.consumed = 0
        self.safe = 0
        self.broken = False
        self.members = False  # the top-level object has at least one member
        self._state = "start"
        self._stack: list[str] = []
        self._key = False  # the open string is an object key
        self._pending = ""  # rest of a literal, or the number sub-state
        self._hex = 0  # hex digits still due in a \u escape
        self._code = 0  # the \u escape's value so far
        self._want_low = False  # a high surrogate was read: its low half must follow
        self._steps: dict[str, Callable[[str], bool]] = {
            "start": self._start, "first_key": self._first_key, "key": self._key_start,
            "colon": self._colon, "value": self._value, "item": self._value,
            "first_item": self._first_item, "after": self._after, "done": self._done,
            "string": self._string, "escape": self._escape, "unicode": self._unicode,
            "pair": self._pair, "pair_u": self._pair_u,
            "literal": self._literal, "number": self._number,
        }

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text) and not self.broken:
            run = _STRING_RUN.match(text, i) if self._state == "string" else None
            if run is not None:
                i = run.end()
            elif self._steps[self._state](text[i]):
                i += 1
            else:
                self.broken = True
            if self._state not in _HOLD and not self.broken:
                self.safe = self.consumed + i
        self.consumed += i

    def unparsed_tail(self, raw: str) -> str:
        """What closes the text fed so far into an object that also carries `raw` under
        `INVALID_ARGUMENTS_KEY` (nothing when the object is already closed)."""
        if self._state == "done":
            return ""
        value = json.dumps(raw, ensure_ascii=False)
        if self._state == "start":
            return f'{{"{INVALID_ARGUMENTS_KEY}": {value}}}'
        closers = "".join("}" if b == "{" else "]" for b in reversed(self._stack[1:]))
        comma_due = self.members and not (self._state == "key" and len(self._stack) == 1)
        sep = ", " if comma_due else ""
        return f'{self._finish_token()}{closers}{sep}"{INVALID_ARGUMENTS_KEY}": {value}}}'

    def _finish_token(self) -> str:
        """The smallest text that ends the token or member in progress."""
        state = self._state
        if state in ("string", "escape", "unicode"):
            escape = {"string": "", "escape": "\\", "unicode": "0" * self._hex}[state]
            return escape + '"' + (": null" if self._key else "")
        if state == "number":
            return "" if self._pending in _NUMBER_ENDS else "0"
        if state == "literal":
            return self._pending
        if state in ("value", "item"):
            return "null"
        if state == "colon":
            return ": null"
        if state == "key" and len(self._stack) > 1:
            return '"": null'
        return ""

    # -- one character in each state (False: it cannot continue a JSON object) -------------
    def _start(self, c: str) -> bool:
        if c in _WS:
            return True
        return c == "{" and self._open(c)

    def _open(self, bracket: str) -> bool:
        if len(self._stack) >= MAX_DEPTH:
            return False  # deeper than any parser downstream is asked to take (json_text)
        self._stack.append(bracket)
        self._state = "first_key" if bracket == "{" else "first_item"
        return True

    def _first_key(self, c: str) -> bool:
        return self._close(c) if c == "}" else self._key_start(c)

    def _key_start(self, c: str) -> bool:
        if c in _WS:
            return True
        if c != '"':
            return False
        self.members = self.members or len(self._stack) == 1
        self._state, self._key = "string", True
        return True

    def _colon(self, c: str) -> bool:
        if c in _WS:
            return True
        if c != ":":
            return False
        self._state = "value"
        return True

    def _first_item(self, c: str) -> bool:
        return self._close(c) if c == "]" else self._value(c)

    def _value(self, c: str) -> bool:
        if c in _WS:
            return True
        if c in "{[":
            return self._open(c)
        if c == '"':
            self._state, self._key = "string", False
        elif c == "-" or c in _DIGITS:
            self._state, self._pending = "number", ("int" if c != "-" and c != "0" else c)
        elif c in _LITERALS:
            self._state, self._pending = "literal", _LITERALS[c]
        else:
            return False
        return True

    def _after(self, c: str) -> bool:
        if c in _WS:
            return True
        if c == ",":
            self._state = "key" if self._stack[-1] == "{" else "item"
            return True
        return self._close(c)

    def _close(self, c: str) -> bool:
        if c != ("}" if self._stack[-1] == "{" else "]"):
            return False
        self._stack.pop()
        self._value_done()
        return True

    def _value_done(self) -> None:
        self._state = "after" if self._stack else "done"

    def _done(self, c: str) -> bool:
        return c in _WS

    def _string(self, c: str) -> bool:
        if c == '"':
            if self._key:
                self._state = "colon"
            else:
                self._value_done()
        elif c == "\\":
            self._state = "escape"
        return c >= " "  # control characters must be escaped

    def _escape(self, c: str) -> bool:
        if c == "u":
            self._state, self._hex, self._code = "unicode", 4, 0
            return True
        self._state = "string"
        return c in _SIMPLE_ESCAPES

    def _unicode(self, c: str) -> bool:
        if c not in _HEX:
            return False
        self._hex -= 1
        self._code = self._code * 16 + int(c, 16)
        if not self._hex:
            return self._escaped(self._code)
        return True

    def _escaped(self, code: int) -> bool:
        """A complete `\\uXXXX`: surrogates must come in pairs (see `loads`)."""
        low = 0xDC00 <= code <= 0xDFFF
        if low != self._want_low:
            return False
        self._want_low = 0xD800 <= code <= 0xDBFF
        self._state = "pair" if self._want_low else "string"
        return True

    def _pair(self, c: str) -> bool:
        self._state = "pair_u"
        return c == "\\"

    def _pair_u(self, c: str) -> bool:
        self._state, self._hex, self._code = "unicode", 4, 0
        return c == "u"

    def _literal(self, c: str) -> bool:
        if c != self._pending[:1]:
            return False
        self._pending = self._pending[1:]
        if not self._pending:
            self._value_done()
        return True

    def _number(self, c: str) -> bool:
        following = _NUMBER[self._pending].get(_number_class(c))
        if following is not None:
            self._pending = following
            return True
        if self._pending not in _NUMBER_ENDS:
            return False
        self._value_done()
        return self._steps[self._state](c)


def _number_class(c: str) -> str:
    if c in _DIGITS:
        return "0" if c == "0" else "d"
    if c in "eE":
        return "e"
    if c in "+-":
        return "s"
    return "." if c == "." else "?"


# -- repair ---------------------------------------------------------------------------------
def repair(text: str) -> str | None:
    """`text` rewritten as the text of one JSON object (see the module docstring), or None."""
    body = text.lstrip()
    if not body.startswith("{"):
        return None
    out = [text[: len(text) - len(body)]]
    stack: list[str] = []
    i = len(out[0])
    while i < len(text):
        i = _repair_token(text, i, out, stack)
        if i < 0:
            return None
        if not stack:
            break  # the object is complete; what follows is dropped
    if stack:
        _drop_trailing_comma(out)
        out.extend(reversed(stack))
    fixed = "".join(out)
    return fixed if is_object(fixed) else None


def _repair_token(text: str, i: int, out: list[str], stack: list[str]) -> int:
    """Copy (or fix) the token at `i` into `out`; the index after it, -1 if hopeless."""
    c = text[i]
    if c in "\"'":
        return _repair_string(text, i, out)
    if c.isalpha() or c == "_":
        return _repair_word(text, i, out)
    if c in "{[":
        stack.append("}" if c == "{" else "]")
    elif c in "}]":
        if not stack or stack[-1] != c:
            return -1
        _drop_trailing_comma(out)
        stack.pop()
    out.append(c)
    return i + 1


def _repair_word(text: str, i: int, out: list[str]) -> int:
    match = _WORD.match(text, i)
    end = match.end() if match else i + 1
    word = text[i:end]
    if word in _PYTHON_WORDS:
        out.append(_PYTHON_WORDS[word])
    elif text[end:].lstrip().startswith(":"):
        out.append(json.dumps(word))  # a bare key, as JavaScript object literals have
    else:
        out.append(word)  # left as is: the result will not parse
    return end


def _repair_string(text: str, i: int, out: list[str]) -> int:
    quote, parts, j = text[i], ['"'], i + 1
    while j < len(text):
        run = _REPAIR_RUN.match(text, j)
        if run is not None:
            parts.append(run.group())
            j = run.end()
            continue
        c = text[j]
        if c == quote:
            out.append("".join(parts) + '"')
            return j + 1
        if c == "\\":
            j = _repair_escape(text, j, parts)
            continue
        parts.append('\\"' if c == '"' else c if c == "'" else json.dumps(c)[1:-1])
        j += 1
    return -1  # a string that was cut off: not repaired (module docstring)


def _repair_escape(text: str, j: int, parts: list[str]) -> int:
    following = text[j + 1: j + 2]
    if following == "'":
        parts.append("'")
        return j + 2
    if following in _SIMPLE_ESCAPES:
        parts.append("\\" + following)
        return j + 2
    digits = text[j + 2: j + 6]
    if following == "u" and len(digits) == 4 and set(digits) <= _HEX:
        parts.append(text[j: j + 6])
        return j + 6
    parts.append("\\\\")  # a backslash that escapes nothing JSON knows: keep it literally
    return j + 1


def _drop_trailing_comma(out: list[str]) -> None:
    k = len(out) - 1
    while k >= 0 and out[k].isspace():
        k -= 1
    if k >= 0 and out[k] == ",":
        del out[k]
