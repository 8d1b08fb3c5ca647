"""DPoP proofs (RFC 9449 §4.3): parsing and checking the proof JWS, then comparing it with the
request (method, URL, time window, token hash, bound key, server nonce). The replay cache is
``dpop_replay``'s."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from . import base64url, jws, strict_json
from .errors import KeySetError
from .keys import jwk_from_members

TYP_DPOP = "dpop+jwt"
MAX_PROOF_LEN = 4096
#: How old a proof may be.
DEFAULT_PROOF_WINDOW_SECS = 60
#: How far ahead of our clock a proof's ``iat`` may be.
MAX_PROOF_FUTURE_SECS = 5


class ProofInvalid(Exception):
    """The proof is malformed, badly signed or does not match the request (``invalid_dpop_proof``)."""


class ProofNeedsNonce(Exception):
    def __init__(self, nonce: str) -> None:
        super().__init__("a DPoP nonce is required")
        self.nonce = nonce


@dataclass(frozen=True, slots=True)
class DpopProof:
    jkt: str
    jti: str
    htm: str
    htu: str
    iat: int
    ath: str | None
    nonce: str | None


def _optional_text(v: Any) -> str | None:
    return None if v is None else strict_json.as_text(v)


def parse_proof(proof: str) -> DpopProof:
    try:
        compact = jws.Compact.split(proof, MAX_PROOF_LEN)
        doc = strict_json.parse(compact.decode_header_bytes())
        strict_json.strict_document(doc)
        header = strict_json.read_object(
            doc,
            {"typ": _optional_text, "alg": _optional_text, "jwk": lambda v: v, "crit": lambda v: True},
        )
    except (jws.JwsError, strict_json.JsonDuplicate, strict_json.JsonInvalid) as e:
        raise ProofInvalid(f"DPoP proof: {e}") from None
    if header.get("typ") != TYP_DPOP:
        raise ProofInvalid("DPoP proof `typ` must be dpop+jwt")
    if "crit" in header:
        raise ProofInvalid("DPoP proof has a `crit` extension")
    if header.get("jwk") is None:
        raise ProofInvalid("DPoP proof `jwk`: missing")
    try:
        key = jwk_from_members(header["jwk"]).key
    except KeySetError as e:
        raise ProofInvalid(f"DPoP proof `jwk`: {e}") from None
    alg = header.get("alg")
    if alg is None or not key.matches_header(alg):
        raise ProofInvalid("DPoP proof `alg` is not EdDSA/ES256 matching its jwk")
    try:
        signature = compact.decode_signature64()
    except jws.JwsError:
        raise ProofInvalid("DPoP proof signature does not verify") from None
    if not key.verify(compact.signing_input.encode("ascii"), signature):
        raise ProofInvalid("DPoP proof signature does not verify")
    try:
        doc = strict_json.parse(compact.decode_payload())
        strict_json.strict_document(doc)
        c = strict_json.read_object(
            doc,
            {
                "jti": _optional_text,
                "htm": _optional_text,
                "htu": _optional_text,
                "iat": lambda v: None if v is None else strict_json.as_u64(v),
                "ath": _optional_text,
                "nonce": _optional_text,
            },
        )
    except (jws.JwsError, strict_json.JsonDuplicate, strict_json.JsonInvalid) as e:
        raise ProofInvalid(f"DPoP proof JSON: {e}") from None

    def short(name: str, limit: int) -> str:
        v = c.get(name)
        if not v or len(v.encode("utf-8", "surrogatepass")) > limit:
            raise ProofInvalid(f"DPoP proof claim `{name}` is missing or invalid")
        return str(v)

    jti, htm, htu = short("jti", 256), short("htm", 16), short("htu", 2048)
    if c.get("iat") is None:
        raise ProofInvalid("DPoP proof claim `iat` is missing or invalid")
    # The thumbprint of the key as presented, whatever `kid` it may carry.
    return DpopProof(key.thumbprint(), jti, htm, htu, c["iat"], c.get("ath"), c.get("nonce"))


def access_token_hash(token: str) -> str:
    """``ath``: base64url SHA-256 of the access token (RFC 9449 §4.2)."""
    return base64url.encode(hashlib.sha256(token.encode("utf-8")).digest())


def normalize_htu(url: str) -> str:
    """Drops query and fragment, lower-cases scheme and authority (RFC 9449 §4.3 point 9)."""
    for sep in ("?", "#"):
        url = url.split(sep, 1)[0]
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    return f"{_ascii_lower(scheme)}://{_ascii_lower(authority)}{path or '/'}"


def _ascii_lower(s: str) -> str:
    return "".join(ch.lower() if ch.isascii() else ch for ch in s)


@dataclass(frozen=True, slots=True)
class ProofRequirements:
    method: str
    url: str
    access_token: str | None
    bound_jkt: str | None


def check_proof(
    proof: str,
    req: ProofRequirements,
    nonces: Any,
    window_secs: int,
    now: int,
) -> DpopProof:
    """Parses ``proof`` and compares it with the request; ``nonces`` is a ``NonceSource`` or None."""
    p = parse_proof(proof)
    if p.htm != req.method:
        raise ProofInvalid("DPoP proof htm does not match the request method")
    if normalize_htu(p.htu) != normalize_htu(req.url):
        raise ProofInvalid("DPoP proof htu does not match the request URL")
    if p.iat > now + MAX_PROOF_FUTURE_SECS:
        raise ProofInvalid("DPoP proof iat is too far in the future")
    if max(now - p.iat, 0) > window_secs:
        raise ProofInvalid("DPoP proof iat is outside the accepted window")
    if req.access_token is not None and p.ath != access_token_hash(req.access_token):
        raise ProofInvalid("DPoP proof ath does not match the access token")
    if req.bound_jkt is not None and p.jkt != req.bound_jkt:
        raise ProofInvalid("DPoP proof key is not the key the token is bound to")
    if nonces is not None and not (p.nonce is not None and nonces.accepts(p.nonce, now)):
        raise ProofNeedsNonce(nonces.current(now))
    return p
