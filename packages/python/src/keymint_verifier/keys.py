"""Public keys as JWKs (Ed25519 ``OKP`` and P-256 ``EC``), key sets, and RFC 7638 thumbprints.

Signatures are checked by PyJWT's algorithm objects (on ``cryptography``) with the algorithm the
key pins; nothing here is hand-written crypto. A token's ``alg`` header is only ever compared with
the key's algorithm, never used to choose one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.exceptions import PyJWKError

from . import base64url, ids, strict_json
from .errors import KeySetError

ED_DSA = "EdDSA"
ES256 = "ES256"
MAX_KEYS = 64

# Ed25519 encodings of points of small order (a signature "valid" under such a key says nothing
# about who made it), with the sign bit cleared: y = 0, 1, the two order-8 y values, p-1, p, p+1.
_P_MINUS_1 = bytes([0xEC]) + b"\xff" * 30 + bytes([0x7F])
_SMALL_ORDER_Y = (
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    _P_MINUS_1,
    bytes([0xED]) + b"\xff" * 30 + bytes([0x7F]),
    bytes([0xEE]) + b"\xff" * 30 + bytes([0x7F]),
)


def algorithm_from_name(name: str) -> str | None:
    """The algorithm a header ``alg`` names: ``Ed25519`` is the fully specified synonym."""
    return {"EdDSA": ED_DSA, "Ed25519": ED_DSA, "ES256": ES256}.get(name)


def thumbprint(members: list[tuple[str, str]]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, as compact JSON."""
    canonical = "{" + ",".join(
        json.dumps(k, ensure_ascii=False) + ":" + json.dumps(v, ensure_ascii=False)
        for k, v in sorted(members)
    ) + "}"
    return base64url.encode(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True, eq=False)
class PublicKey:
    """A verifying key. ``algorithm`` is ``EdDSA`` or ``ES256``; equality is by key bytes."""

    algorithm: str
    x: bytes
    y: bytes | None
    _jwk: jwt.PyJWK = field(repr=False, compare=False)

    @staticmethod
    def ed25519(x: bytes) -> PublicKey:
        if len(x) != 32:
            raise KeySetError(f"JWK member `x` is {len(x)} bytes, 32 expected")
        if x[:31] + bytes([x[31] & 0x7F]) in _SMALL_ORDER_Y:
            raise KeySetError("JWK Ed25519 point has small order: it would verify forged signatures")
        data = {"kty": "OKP", "crv": "Ed25519", "x": base64url.encode(x)}
        return PublicKey(ED_DSA, x, None, _pyjwk(data, ED_DSA))

    @staticmethod
    def p256(x: bytes, y: bytes) -> PublicKey:
        for name, v in (("x", x), ("y", y)):
            if len(v) != 32:
                raise KeySetError(f"JWK member `{name}` is {len(v)} bytes, 32 expected")
        data = {"kty": "EC", "crv": "P-256", "x": base64url.encode(x), "y": base64url.encode(y)}
        # cryptography refuses a point that is not on the curve.
        return PublicKey(ES256, x, y, _pyjwk(data, ES256))

    def matches_header(self, alg: str) -> bool:
        return algorithm_from_name(alg) == self.algorithm

    def verify(self, message: bytes, signature: bytes) -> bool:
        algo: Any = self._jwk.Algorithm
        try:
            return bool(algo.verify(message, self._jwk.key, signature))
        except Exception:  # a malformed signature is a bad signature, never a crash
            return False

    def thumbprint(self) -> str:
        if self.algorithm == ED_DSA:
            return thumbprint([("crv", "Ed25519"), ("kty", "OKP"), ("x", base64url.encode(self.x))])
        assert self.y is not None
        return thumbprint(
            [("crv", "P-256"), ("kty", "EC"), ("x", base64url.encode(self.x)), ("y", base64url.encode(self.y))]
        )

    def same_key(self, other: PublicKey) -> bool:
        return (self.algorithm, self.x, self.y) == (other.algorithm, other.x, other.y)


def _pyjwk(data: dict[str, str], alg: str) -> jwt.PyJWK:
    try:
        return jwt.PyJWK(data, algorithm=alg)
    except (PyJWKError, ValueError, TypeError) as e:
        raise KeySetError(f"JWK point is not a valid {alg} public key") from e


_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k", "oth")
_JWK_TEXT = ("kty", "crv", "x", "y", "kid", "alg", "use")


@dataclass(frozen=True)
class Jwk:
    kid: str
    key: PublicKey


def jwk_from_members(obj: Any) -> Jwk:
    """One JWK, already checked for duplicate members: public Ed25519 or P-256, ``use`` sig if
    present, an ``alg`` (if present) that fits the key, a ``kid`` (default: the thumbprint)."""
    try:
        members = strict_json.read_object(
            obj, {**{n: strict_json.as_text for n in _JWK_TEXT}, **{n: lambda v: True for n in _PRIVATE_MEMBERS}}
        )
    except strict_json.JsonInvalid as e:
        raise KeySetError(f"JWK: {e}") from None
    for name in _PRIVATE_MEMBERS:
        if name in members:
            raise KeySetError(f"JWK contains the private member `{name}`")
    if "use" in members and members["use"] != "sig":
        raise KeySetError("JWK `use` must be sig")
    kty = members.get("kty")
    if kty is None:
        raise KeySetError("JWK member `kty` is missing")
    if kty not in ("OKP", "EC"):
        raise KeySetError(f"unsupported JWK key type {kty[:32]!r}")
    crv = members.get("crv")
    if crv is None:
        raise KeySetError("JWK member `crv` is missing")
    if (kty, crv) == ("OKP", "Ed25519"):
        key = PublicKey.ed25519(_member_bytes(members, "x"))
    elif (kty, crv) == ("EC", "P-256"):
        key = PublicKey.p256(_member_bytes(members, "x"), _member_bytes(members, "y"))
    else:
        raise KeySetError(f"unsupported JWK curve {crv[:32]!r}")
    if "alg" in members and algorithm_from_name(members["alg"]) != key.algorithm:
        raise KeySetError("JWK `alg` does not fit its key")
    if "kid" in members:
        try:
            kid = ids.kid(members["kid"])
        except ids.IdError as e:
            raise KeySetError(f"JWK kid: {e}") from None
    else:
        kid = key.thumbprint()
    return Jwk(kid, key)


def _member_bytes(members: dict[str, Any], name: str) -> bytes:
    if name not in members:
        raise KeySetError(f"JWK member `{name}` is missing")
    try:
        return base64url.decode(members[name])
    except base64url.Base64Error:
        raise KeySetError(f"JWK member `{name}` is not valid base64url") from None


class Jwks:
    """A key set, indexed by ``kid``. Immutable: a refresh builds a new one."""

    __slots__ = ("_by_kid", "_keys")

    def __init__(self, keys: list[Jwk]) -> None:
        if len(keys) > MAX_KEYS:
            raise KeySetError(f"JWKS has {len(keys)} keys, the maximum is {MAX_KEYS}")
        by_kid: dict[str, Jwk] = {}
        for k in keys:
            if k.kid in by_kid:
                raise KeySetError(f"JWKS has two keys with kid {k.kid[:64]}")
            by_kid[k.kid] = k
        self._keys = tuple(keys)
        self._by_kid = by_kid

    @staticmethod
    def from_json(data: bytes | str) -> Jwks:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        try:
            doc = strict_json.parse(raw)
            strict_json.strict_document(doc)
            top = strict_json.read_object(doc, {"keys": lambda v: v})
        except strict_json.JsonDuplicate as e:
            raise KeySetError(f"JWKS is not valid: {e}") from None
        except strict_json.JsonInvalid as e:
            raise KeySetError(f"JWKS is not valid: {e}") from None
        entries = top.get("keys")
        if not isinstance(entries, list):
            raise KeySetError("JWKS is not valid: `keys` must be an array")
        if len(entries) > MAX_KEYS:
            raise KeySetError(f"JWKS has {len(entries)} keys, the maximum is {MAX_KEYS}")
        keys = []
        for index, entry in enumerate(entries):
            try:
                keys.append(jwk_from_members(entry))
            except KeySetError as e:
                raise KeySetError(f"JWKS key #{index}: {e}") from None
        return Jwks(keys)

    @staticmethod
    def empty() -> Jwks:
        return Jwks([])

    @property
    def keys(self) -> tuple[Jwk, ...]:
        return self._keys

    def get(self, kid: str) -> Jwk | None:
        return self._by_kid.get(kid)

    def still_has(self, kid: str, key: PublicKey) -> bool:
        """Whether ``kid`` still names exactly ``key``."""
        jwk = self._by_kid.get(kid)
        return jwk is not None and jwk.key.same_key(key)
