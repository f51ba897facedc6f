"""Device codes, user codes and tokens (RFC 8628 §3.2, §6.1), and how they are stored.

Only hashes are stored: a copy of the state store gives no usable credential.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

# RFC 8628 §6.1: base-20, consonants only, so no word can be spelled and no character is
# ambiguous (0/O, 1/I); 20^8 ≈ 2^34.6 codes
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
ACCESS_PREFIX = "cgw_at_"
REFRESH_PREFIX = "cgw_rt_"


def new_device_code() -> str:
    """256 random bits, URL-safe (the protocol asks for at least 256)."""
    return secrets.token_urlsafe(32)


def new_user_code(choice: Callable[[str], str] = secrets.choice) -> str:
    chars = "".join(choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return f"{chars[:4]}-{chars[4:]}"


def normalize_user_code(text: str) -> str | None:
    """What a person typed -> `XXXX-XXXX`, or None when it cannot be a code.

    RFC 8628 §6.1: case-insensitive, punctuation and spaces ignored."""
    chars = "".join(c for c in text.upper() if c.isalnum())
    if len(chars) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in chars):
        return None
    return f"{chars[:4]}-{chars[4:]}"


def new_access_token() -> str:
    return ACCESS_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def new_session_id() -> str:
    return "gws_" + secrets.token_hex(8)


def is_gateway_token(token: str) -> bool:
    return token.startswith(ACCESS_PREFIX) or token.startswith(REFRESH_PREFIX)


def digest(secret: str) -> str:
    """The key a secret is stored under: its SHA-256 (the secrets are 256 random bits, so no
    salt or slow hash is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()
