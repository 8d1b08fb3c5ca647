"""JWS compact serialization (RFC 7515 §7.1): splitting, the protected header, ``typ``.

Errors here are ``JwsError`` with a ``kind``; the token path and the list path map them to their
own reason codes (the list has codes of its own, ``list_*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import base64url, strict_json

TYP_ACCESS_TOKEN = "at+jwt"
TYP_REVOCATION_LIST = "keymint-revocations+jwt"
FORBIDDEN_HEADERS = ("jku", "jwk", "x5u", "x5c")

_B64_OR_DOT = re.compile(r"[A-Za-z0-9_.-]*")


class JwsError(Exception):
    """``kind``: oversize, malformed, duplicate_member, forbidden_header, unknown_crit,
    signature_length."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Compact:
    header: str
    payload: str
    signature: str
    signing_input: str

    @staticmethod
    def split(token: str, max_len: int) -> Compact:
        length = byte_length(token)
        if length > max_len:
            raise JwsError("oversize", f"JWS is {length} bytes, the limit is {max_len}")
        # One linear scan before anything is decoded: garbage costs almost nothing.
        if not _B64_OR_DOT.fullmatch(token):
            raise JwsError("malformed", "JWS is not unpadded base64url")
        parts = token.split(".")
        if len(parts) != 3:
            raise JwsError("malformed", f"JWS has {len(parts)} segments, 3 expected")
        h, p, s = parts
        return Compact(h, p, s, f"{h}.{p}")

    def decode_header_bytes(self) -> bytes:
        return _decode(self.header, "header")

    def decode_payload(self) -> bytes:
        return _decode(self.payload, "payload")

    def decode_signature64(self) -> bytes:
        # 64 bytes (Ed25519, or ES256 r || s) are exactly 86 characters.
        if len(self.signature) != 86:
            raise JwsError("signature_length", "JWS signature has the wrong length")
        return _decode(self.signature, "signature")


def byte_length(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))


def _decode(segment: str, name: str) -> bytes:
    try:
        return base64url.decode(segment)
    except base64url.Base64Error:
        raise JwsError("malformed", f"JWS {name} is not unpadded base64url") from None


@dataclass(frozen=True, slots=True)
class Header:
    alg: str
    kid: str | None
    typ: str | None


def parse_header(raw: bytes) -> Header:
    """A protected header: an object without duplicate members, with a string ``alg``, and
    without ``crit``, ``jku``, ``jwk``, ``x5u`` or ``x5c``. Nothing in it is ever followed."""
    try:
        doc = strict_json.parse(raw)
        flags: dict[str, Any] = {"crit": False, "forbidden": None}

        def flag(name: str) -> Any:
            def read(value: Any) -> None:
                strict_json.no_duplicates(value, 2)
                if name == "crit":
                    flags["crit"] = True
                elif flags["forbidden"] is None:
                    flags["forbidden"] = name

            return read

        readers: dict[str, Any] = {
            "alg": strict_json.as_text,
            "kid": strict_json.as_text,
            "typ": strict_json.as_text,
            "crit": flag("crit"),
        }
        for name in FORBIDDEN_HEADERS:
            readers[name] = flag(name)
        members = strict_json.read_object(doc, readers)
    except strict_json.JsonDuplicate as e:
        raise JwsError("duplicate_member", str(e), e.member) from None
    except strict_json.JsonInvalid as e:
        raise JwsError("malformed", f"JWS header: {e}") from None
    if flags["forbidden"] is not None:
        raise JwsError("forbidden_header", f"JWS header member `{flags['forbidden']}` is not accepted", flags["forbidden"])
    if flags["crit"]:
        raise JwsError("unknown_crit", "JWS header has a `crit` extension")
    if "alg" not in members:
        raise JwsError("malformed", "JWS header has no `alg`")
    return Header(alg=members["alg"], kid=members.get("kid"), typ=members.get("typ"))


def typ_matches(typ: str, expected: str) -> bool:
    """RFC 9068 §4 / RFC 7515 §4.1.9: case-insensitive, with or without ``application/``."""
    if typ[:12].lower() == "application/" and len(typ) >= 12:
        typ = typ[12:]
    return typ.isascii() and typ.lower() == expected
