"""The signed revocation list (docs/revocation-list.md): checking its envelope and signature
against the key set, reading its payload, and indexing its entries for O(1) lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import ids, jws, strict_json
from .claims import Claims
from .errors import Revoked, UpdateError
from .keys import Jwks

PROPAGATION_BOUND = 5
LIST_VERSION = 1
MAX_LIST_VALIDITY = 7 * 24 * 3600
DEFAULT_MAX_LIST_LEN = 64 * 1024 * 1024

_ENTRY_IDS = {"key": ids.api_key_id, "jti": ids.jti, "tenant": ids.tenant, "kid": ids.kid}


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    kind: str
    id: str
    revoked_at: int
    drop_after: int


@dataclass(frozen=True, slots=True)
class RevocationList:
    v: int
    iss: str
    serial: int
    iat: int
    exp: int
    entries: tuple[RevocationEntry, ...]


@dataclass(frozen=True, slots=True)
class SignedRevocationList:
    jws: str
    list: RevocationList
    kid: str


def _fail(code: str, message: str) -> UpdateError:
    return UpdateError(code, message)


def _from_jws_error(e: jws.JwsError) -> UpdateError:
    code = {
        "duplicate_member": "list_duplicate_member",
        "forbidden_header": "list_forbidden_header",
        "unknown_crit": "list_forbidden_header",
        "signature_length": "list_bad_signature",
    }.get(e.kind, "list_malformed")
    return _fail(code, f"revocation list: {e}")


def _u32(v: Any) -> int:
    n = strict_json.as_u64(v)
    if n >= 2**32:
        raise strict_json.JsonInvalid("JSON has the wrong shape: `v` is out of range")
    return n


def _entry(value: Any) -> RevocationEntry:
    m = strict_json.read_object(
        value,
        {
            "kind": strict_json.as_text,
            "id": strict_json.as_text,
            "revoked_at": strict_json.as_u64,
            "drop_after": strict_json.as_u64,
        },
        depth=3,
    )
    for name in ("kind", "id", "revoked_at", "drop_after"):
        if name not in m:
            raise strict_json.JsonInvalid(f"JSON has the wrong shape: missing field `{name}`")
    check = _ENTRY_IDS.get(m["kind"])
    # An unknown kind could revoke something this verifier would then fail to enforce: refusing
    # the whole list fails closed.
    if check is None:
        raise strict_json.JsonInvalid("JSON has the wrong shape: unknown revocation kind")
    try:
        check(m["id"])
    except ids.IdError as e:
        raise strict_json.JsonInvalid(f"JSON has the wrong shape: {e}") from None
    return RevocationEntry(m["kind"], m["id"], m["revoked_at"], m["drop_after"])


def _entries(value: Any) -> tuple[RevocationEntry, ...]:
    if not isinstance(value, list):
        raise strict_json.JsonInvalid("JSON has the wrong shape: `entries` must be an array")
    return tuple(_entry(e) for e in value)


def _issuer(value: Any) -> str:
    s = strict_json.as_text(value)
    try:
        return ids.issuer(s)
    except ids.IdError as e:
        raise strict_json.JsonInvalid(f"JSON has the wrong shape: {e}") from None


def parse_list_payload(payload: bytes) -> RevocationList:
    try:
        doc = strict_json.parse(payload)
        # Two passes, as for key sets: duplicates anywhere first, then the shape.
        strict_json.strict_document(doc)
        m = strict_json.read_object(
            doc,
            {
                "v": _u32,
                "iss": _issuer,
                "serial": strict_json.as_u64,
                "iat": strict_json.as_u64,
                "exp": strict_json.as_u64,
                "entries": _entries,
            },
        )
        for name in ("v", "iss", "serial", "iat", "exp", "entries"):
            if name not in m:
                raise strict_json.JsonInvalid(f"JSON has the wrong shape: missing field `{name}`")
    except strict_json.JsonDuplicate as e:
        raise _fail("list_duplicate_member", f"revocation list payload: {e}") from None
    except strict_json.JsonInvalid as e:
        raise _fail("list_malformed", f"revocation list payload: {e}") from None
    return RevocationList(m["v"], m["iss"], m["serial"], m["iat"], m["exp"], m["entries"])


def verify_list(text: str, keys: Jwks, issuer: str, max_len: int) -> SignedRevocationList:
    """The format checks, in order: size and shape, header, ``typ``, key, ``alg``, signature,
    payload, version, issuer, ``exp > iat``."""
    try:
        compact = jws.Compact.split(text, max_len)
        header = jws.parse_header(compact.decode_header_bytes())
    except jws.JwsError as e:
        raise _from_jws_error(e) from None
    if header.typ is None or not jws.typ_matches(header.typ, jws.TYP_REVOCATION_LIST):
        raise _fail("list_wrong_typ", "revocation list has the wrong `typ`")
    if header.kid is None:
        raise _fail("list_malformed", "revocation list header has no `kid`")
    jwk = keys.get(header.kid)
    if jwk is None:
        raise _fail("list_unknown_kid", f"revocation list is signed by unknown key {header.kid[:64]}")
    if not jwk.key.matches_header(header.alg):
        raise _fail("list_alg_mismatch", "revocation list `alg` does not match its key")
    try:
        signature = compact.decode_signature64()
    except jws.JwsError as e:
        raise _from_jws_error(e) from None
    if not jwk.key.verify(compact.signing_input.encode("ascii"), signature):
        raise _fail("list_bad_signature", "revocation list signature does not verify")
    try:
        payload = compact.decode_payload()
    except jws.JwsError as e:
        raise _from_jws_error(e) from None
    lst = parse_list_payload(payload)
    if lst.v != LIST_VERSION:
        raise _fail("list_unsupported_version", f"revocation list version {lst.v} is not supported")
    if lst.iss != issuer:
        raise _fail("list_wrong_issuer", "revocation list issuer is not the expected issuer")
    if lst.exp <= lst.iat:
        raise _fail("list_bad_validity", f"revocation list expires ({lst.exp}) before it was issued ({lst.iat})")
    return SignedRevocationList(text, lst, jwk.kid)


def unverified_serial(text: str, max_len: int) -> int | None:
    """The serial of a list not (yet) verified: for rationing refetches only, never trusted."""
    try:
        payload = jws.Compact.split(text, max_len).decode_payload()
        m = strict_json.read_object(strict_json.parse(payload), {"serial": strict_json.as_u64})
    except (jws.JwsError, strict_json.JsonDuplicate, strict_json.JsonInvalid):
        return None
    serial = m.get("serial")
    return serial if isinstance(serial, int) else None


class RevocationIndex:
    """Hash indexes over a list's entries, one per kind: four lookups whatever its size."""

    __slots__ = ("_keys", "_jtis", "_tenants", "_kids")

    def __init__(self, lst: RevocationList) -> None:
        self._keys: set[str] = set()
        self._jtis: set[str] = set()
        # Tenant → tokens issued strictly before this instant are revoked.
        self._tenants: dict[str, int] = {}
        self._kids: set[str] = set()
        for e in lst.entries:
            if e.kind == "key":
                self._keys.add(e.id)
            elif e.kind == "jti":
                self._jtis.add(e.id)
            elif e.kind == "tenant":
                cutoff = min(e.revoked_at + PROPAGATION_BOUND, 2**64 - 1)
                self._tenants[e.id] = max(self._tenants.get(e.id, 0), cutoff)
            else:
                self._kids.add(e.id)

    def check(self, claims: Claims, kid: str) -> None:
        if claims.sub in self._keys:
            raise Revoked("key", claims.sub)
        if claims.jti in self._jtis:
            raise Revoked("jti", claims.jti)
        cutoff = self._tenants.get(claims.tenant)
        if cutoff is not None and claims.iat < cutoff:
            raise Revoked("tenant", claims.tenant)
        if kid in self._kids:
            raise Revoked("kid", kid)

    def kid_revoked(self, kid: str) -> bool:
        return kid in self._kids

    def __len__(self) -> int:
        return len(self._keys) + len(self._jtis) + len(self._tenants) + len(self._kids)


@dataclass(frozen=True, slots=True)
class RevocationState:
    """The list in force, its index, and which installation it is (never 0)."""

    signed: SignedRevocationList
    index: RevocationIndex
    generation: int
