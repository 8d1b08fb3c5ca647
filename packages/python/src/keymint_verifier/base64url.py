"""Unpadded base64url (RFC 7515 §2), strictly: no padding, no whitespace, no ``+`` or ``/``, and
no non-zero trailing bits, so that one value has exactly one encoding."""

from __future__ import annotations

import base64
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


class Base64Error(ValueError):
    pass


def decode(segment: str) -> bytes:
    if not _ALPHABET.fullmatch(segment) or len(segment) % 4 == 1:
        raise Base64Error("not unpadded base64url")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    # Non-canonical trailing bits decode to the same bytes; the Rust decoder refuses them.
    if encode(raw) != segment:
        raise Base64Error("not canonical base64url")
    return raw


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
