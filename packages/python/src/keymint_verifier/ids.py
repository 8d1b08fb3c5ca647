"""The identifier rules of the token format (the Rust ``keymint_jwks`` id types): each claim is
checked once, at the edge, byte by byte."""

from __future__ import annotations

import string


class IdError(ValueError):
    pass


_ALNUM = frozenset((string.ascii_letters + string.digits).encode())
_TENANT = _ALNUM | frozenset(b"-_.:@")
_JTI = _ALNUM | frozenset(b"-_.:")
_B64URL = _ALNUM | frozenset(b"-_")
_VISIBLE = frozenset(range(0x21, 0x7F))
# RFC 6749 §3.3 scope-token: visible ASCII except `"` and `\`.
_SCOPE = _VISIBLE - frozenset(b'"\\')


def _check(kind: str, s: str, max_len: int, allowed: frozenset[int]) -> str:
    raw = s.encode("utf-8", "surrogatepass")
    if not raw:
        raise IdError(f"{kind} is empty")
    if len(raw) > max_len:
        raise IdError(f"{kind} is {len(raw)} bytes long, the maximum is {max_len}")
    if not all(b in allowed for b in raw):
        raise IdError(f"{kind} contains a character outside its alphabet")
    return s


def api_key_id(s: str) -> str:
    return _check("API key ID", s, 64, _ALNUM)


def tenant(s: str) -> str:
    return _check("tenant", s, 128, _TENANT)


def jti(s: str) -> str:
    return _check("jti", s, 128, _JTI)


def client_id(s: str) -> str:
    return _check("client_id", s, 128, _VISIBLE)


def kid(s: str) -> str:
    return _check("kid", s, 256, _VISIBLE)


def issuer(s: str) -> str:
    return _check("issuer", s, 2048, _VISIBLE)


def audience(s: str) -> str:
    return _check("audience", s, 2048, _VISIBLE)


def jkt(s: str) -> str:
    if len(s.encode("utf-8", "surrogatepass")) != 43:
        raise IdError("jkt must be 43 characters")
    return _check("jkt", s, 43, _B64URL)


def scope(s: str) -> str:
    return _check("scope", s, 128, _SCOPE)


MAX_SCOPES = 256


def scope_set(s: str) -> frozenset[str]:
    """A space-separated scope string: single spaces, at most 256 scopes."""
    if not s:
        return frozenset()
    parts = s.split(" ")
    out: set[str] = set()
    for index, part in enumerate(parts):
        if not part:
            raise IdError("scopes must be separated by single spaces")
        if index >= MAX_SCOPES:
            raise IdError(f"{len(parts)} scopes, the maximum is {MAX_SCOPES}")
        try:
            out.add(scope(part))
        except IdError as e:
            raise IdError(f"scope #{index}: {e}") from None
    return frozenset(out)
