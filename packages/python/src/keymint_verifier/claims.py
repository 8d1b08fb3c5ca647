"""Access-token claims (RFC 9068 profile): read in document order from the raw payload bytes,
each required claim missing being its own error, in the Rust verifier's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import ids, strict_json
from .errors import DuplicateMember, InvalidClaim, Malformed, MissingClaim

MAX_AUDIENCES_READ = 16


@dataclass(frozen=True, slots=True)
class Claims:
    iss: str
    sub: str
    aud: str
    exp: int
    iat: int
    nbf: int | None
    jti: str
    client_id: str
    scope: frozenset[str]
    #: The ``scope`` claim as it was written (space separated).
    scope_text: str
    tenant: str
    #: ``cnf.jkt``, the DPoP key thumbprint a sender-constrained token is bound to.
    cnf_jkt: str | None


def _aud(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise strict_json.JsonInvalid("JSON has the wrong shape: `aud` must be a string or an array")
    out: list[str] = []
    for item in value:
        # Bound the work an attacker-chosen array can cause (as the Rust reader does).
        if len(out) >= MAX_AUDIENCES_READ:
            raise strict_json.JsonInvalid("too many audiences")
        out.append(strict_json.as_text(item))
    return out


def _cnf(value: Any) -> dict[str, Any]:
    return strict_json.read_object(value, {"jkt": strict_json.as_text}, depth=2)


_READERS: dict[str, Any] = {
    "iss": strict_json.as_text,
    "sub": strict_json.as_text,
    "jti": strict_json.as_text,
    "client_id": strict_json.as_text,
    "scope": strict_json.as_text,
    "tenant": strict_json.as_text,
    "exp": strict_json.as_u64,
    "iat": strict_json.as_u64,
    "nbf": strict_json.as_u64,
    "aud": _aud,
    "cnf": _cnf,
}


def _id(raw: dict[str, Any], claim: str, check: Any) -> str:
    if claim not in raw:
        raise MissingClaim(claim)
    try:
        value: str = check(raw[claim])
    except ids.IdError as e:
        raise InvalidClaim(claim, str(e)) from None
    return value


def parse_claims(payload: bytes) -> Claims:
    try:
        raw = strict_json.read_object(strict_json.parse(payload), _READERS)
    except strict_json.JsonDuplicate as e:
        raise DuplicateMember(e.member) from None
    except strict_json.JsonInvalid as e:
        raise Malformed(f"payload: {e}") from None
    if "aud" not in raw:
        raise MissingClaim("aud")
    auds: list[str] = raw["aud"]
    if len(auds) != 1:
        raise InvalidClaim("aud", f"{len(auds)} audiences, exactly one is allowed")
    aud = _id({"aud": auds[0]}, "aud", ids.audience)
    if "scope" not in raw:
        raise MissingClaim("scope")
    try:
        scope = ids.scope_set(raw["scope"])
    except ids.IdError as e:
        raise InvalidClaim("scope", str(e)) from None
    cnf_jkt = None
    if "cnf" in raw:
        jkt = raw["cnf"].get("jkt")
        try:
            cnf_jkt = ids.jkt(jkt) if jkt is not None else None
        except ids.IdError:
            cnf_jkt = None
        if cnf_jkt is None:
            raise InvalidClaim("cnf", "`cnf.jkt` must be a base64url SHA-256 thumbprint")
    iss = _id(raw, "iss", ids.issuer)
    sub = _id(raw, "sub", ids.api_key_id)
    if "exp" not in raw:
        raise MissingClaim("exp")
    if "iat" not in raw:
        raise MissingClaim("iat")
    jti = _id(raw, "jti", ids.jti)
    client_id = _id(raw, "client_id", ids.client_id)
    tenant = _id(raw, "tenant", ids.tenant)
    return Claims(
        iss=iss,
        sub=sub,
        aud=aud,
        exp=raw["exp"],
        iat=raw["iat"],
        nbf=raw.get("nbf"),
        jti=jti,
        client_id=client_id,
        scope=scope,
        scope_text=raw["scope"],
        tenant=tenant,
        cnf_jkt=cnf_jkt,
    )
