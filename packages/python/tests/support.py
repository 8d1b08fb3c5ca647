"""Test helpers: an issuer in miniature (signing keys, tokens, lists) built on ``cryptography``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keymint_verifier import base64url
from keymint_verifier.keys import Jwks, jwk_from_members, thumbprint
from keymint_verifier import strict_json

ISS = "https://issuer.example"
AUD = "https://api.example"
NOW = 1_800_000_000


def b64(data: bytes) -> str:
    return base64url.encode(data)


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


@dataclass
class Signer:
    alg: str
    private: Any

    @staticmethod
    def ed25519() -> "Signer":
        return Signer("EdDSA", ed25519.Ed25519PrivateKey.generate())

    @staticmethod
    def es256() -> "Signer":
        return Signer("ES256", ec.generate_private_key(ec.SECP256R1()))

    def public_jwk(self) -> dict[str, str]:
        pub = self.private.public_key()
        if self.alg == "EdDSA":
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            x = pub.public_bytes(Encoding.Raw, PublicFormat.Raw)
            return {"kty": "OKP", "crv": "Ed25519", "x": b64(x)}
        n = pub.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}

    @property
    def kid(self) -> str:
        return thumbprint(sorted(self.public_jwk().items()))

    def sign_raw(self, signing_input: bytes) -> bytes:
        if self.alg == "EdDSA":
            return bytes(self.private.sign(signing_input))
        from cryptography.hazmat.primitives import hashes

        r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def sign(self, header: dict[str, Any] | str, payload: dict[str, Any] | bytes | str) -> str:
        h = header if isinstance(header, str) else b64json(header)
        if isinstance(payload, dict):
            p = b64json(payload)
        elif isinstance(payload, bytes):
            p = b64(payload)
        else:
            p = payload
        si = f"{h}.{p}"
        return f"{si}.{b64(self.sign_raw(si.encode()))}"

    def token(self, claims: dict[str, Any] | None = None, header: dict[str, Any] | None = None, **over: Any) -> str:
        c = claims if claims is not None else default_claims(**over)
        h = header if header is not None else {"typ": "at+jwt", "alg": self.alg, "kid": self.kid}
        return self.sign(h, c)

    def list(self, serial: int, entries: list[dict[str, Any]] | None = None, iat: int = NOW, exp: int | None = None, iss: str = ISS, header: dict[str, Any] | None = None, **extra: Any) -> str:
        payload = {"v": 1, "iss": iss, "serial": serial, "iat": iat, "exp": iat + 86400 if exp is None else exp, "entries": entries or [], **extra}
        h = header if header is not None else {"typ": "keymint-revocations+jwt", "alg": self.alg, "kid": self.kid}
        return self.sign(h, payload)


def default_claims(**over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "iss": ISS, "sub": "K1", "aud": AUD, "exp": NOW + 600, "iat": NOW, "nbf": NOW,
        "jti": "t-1", "client_id": "K1", "scope": "orders:read orders:write", "tenant": "acme",
    }
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def jwks_of(*signers: Signer) -> Jwks:
    return Jwks([jwk_from_members(strict_json.parse(json.dumps(s.public_jwk()).encode())) for s in signers])


def jwks_json(*signers: Signer) -> str:
    return json.dumps({"keys": [dict(s.public_jwk(), kid=s.kid, alg=s.alg, use="sig") for s in signers]})


def entry(kind: str, ident: str, revoked_at: int = NOW - 100) -> dict[str, Any]:
    return {"kind": kind, "id": ident, "revoked_at": revoked_at, "drop_after": revoked_at + 7200}
