"""A client's DPoP key (RFC 9449): an Ed25519 or P-256 key made by ``cryptography``, its public
JWK and RFC 7638 thumbprint, and the proofs it signs."""

from __future__ import annotations

import json
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import base64url
from .dpop_proof import TYP_DPOP, access_token_hash
from .keys import thumbprint


class DpopKey:
    """Never exported: the private key stays in this object (its ``repr`` shows only the jkt)."""

    def __init__(self, private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
        if isinstance(private, ec.EllipticCurvePrivateKey) and not isinstance(private.curve, ec.SECP256R1):
            raise ValueError("DPoP keys are Ed25519 or P-256")
        self._private = private

    @staticmethod
    def generate(algorithm: str = "EdDSA") -> DpopKey:
        if algorithm == "EdDSA":
            return DpopKey(ed25519.Ed25519PrivateKey.generate())
        if algorithm == "ES256":
            return DpopKey(ec.generate_private_key(ec.SECP256R1()))
        raise ValueError("DPoP keys are EdDSA (Ed25519) or ES256 (P-256)")

    @property
    def algorithm(self) -> str:
        return "EdDSA" if isinstance(self._private, ed25519.Ed25519PrivateKey) else "ES256"

    def public_jwk(self) -> dict[str, str]:
        if isinstance(self._private, ed25519.Ed25519PrivateKey):
            x = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            return {"kty": "OKP", "crv": "Ed25519", "x": base64url.encode(x)}
        n = self._private.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": base64url.encode(n.x.to_bytes(32, "big")),
            "y": base64url.encode(n.y.to_bytes(32, "big")),
        }

    @property
    def jkt(self) -> str:
        return thumbprint(list(self.public_jwk().items()))

    def __repr__(self) -> str:
        return f"DpopKey({self.algorithm}, jkt={self.jkt})"

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._private, ed25519.Ed25519PrivateKey):
            return self._private.sign(data)
        r, s = decode_dss_signature(self._private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def proof(self, method: str, url: str, iat: int, *, access_token: str | None = None, nonce: str | None = None, jti: str | None = None) -> str:
        header = {"typ": TYP_DPOP, "alg": self.algorithm, "jwk": self.public_jwk()}
        claims: dict[str, Any] = {"jti": jti or secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": iat}
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        h = base64url.encode(json.dumps(header, separators=(",", ":")).encode())
        p = base64url.encode(json.dumps(claims, separators=(",", ":")).encode())
        return f"{h}.{p}.{base64url.encode(self._sign(f'{h}.{p}'.encode()))}"
