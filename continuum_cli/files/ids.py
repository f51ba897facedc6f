"""File ids: `file_` + 25 base-62 characters that sort by creation time.

The first 8 characters are the creation time in milliseconds, the other 17 are random
(about 101 bits), so ids are unguessable, and the state store's key order (`kv_list`) is
creation order: pagination needs no index of its own. Base 62 in ASCII order (0-9, A-Z,
a-z) keeps string order equal to numeric order.
"""

from __future__ import annotations

import re
import secrets

PREFIX = "file_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TIME_WIDTH = 8
_RANDOM_WIDTH = 17
PATTERN = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{_TIME_WIDTH + _RANDOM_WIDTH}}}$")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def new_file_id(now_ms: int, random_bits: int | None = None) -> str:
    rand = secrets.randbits(101) if random_bits is None else random_bits
    return PREFIX + _base62(now_ms, _TIME_WIDTH) + _base62(rand, _RANDOM_WIDTH)


def is_file_id(value: str) -> bool:
    """True for ids this router makes: also what keeps an id from ever being a path."""
    return bool(PATTERN.match(value))
