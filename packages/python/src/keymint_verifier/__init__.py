"""keymint_verifier: verify keymint access tokens offline, as the Rust ``keymint-verifier`` does.

Signature against a JWKS with the algorithm the key pins, claims, a signed revocation list kept
fresh by polling and the push channel (fail closed once it expires), DPoP. ``Verifier.verify``
does no I/O; ``LiveSources`` feeds it from URLs or files in background threads.
"""

from .claims import Claims
from .dpop_nonce import NonceSource
from .errors import (
    AccessError,
    BuildError,
    InsufficientScope,
    KeymintError,
    KeySetError,
    SourceError,
    UpdateError,
    VerifyError,
    WrongTenant,
)
from .keys import Jwk, Jwks, PublicKey
from .verified_token import VerifiedToken
from .verifier import DEFAULT_LEEWAY, MAX_LEEWAY, LiveHooks, RevocationUpdate, Verifier

__all__ = [
    "AccessError",
    "BuildError",
    "Claims",
    "DEFAULT_LEEWAY",
    "InsufficientScope",
    "Jwk",
    "Jwks",
    "KeySetError",
    "KeymintError",
    "LiveHooks",
    "MAX_LEEWAY",
    "NonceSource",
    "PublicKey",
    "RevocationUpdate",
    "SourceError",
    "UpdateError",
    "VerifiedToken",
    "Verifier",
    "VerifyError",
    "WrongTenant",
]
