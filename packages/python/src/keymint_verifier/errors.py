"""The package's errors: one class per reason, each with the stable ``code`` the Rust verifier,
the Node package and the conformance corpus share (tests/fixtures/conformance/README.md).

Messages never contain a token, a key or a secret; values taken from a token (a ``kid``, an
``alg``) are cut short.
"""

from __future__ import annotations


def cut(value: str, limit: int = 64) -> str:
    """Cuts an attacker-chosen value before it goes into a message."""
    return value[:limit]


class KeymintError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "error"


# --- Tokens ----------------------------------------------------------------------------------


class VerifyError(KeymintError):
    """A token was not accepted. ``code`` is the reason code."""

    code = "invalid_token"
    #: True when the verifier itself cannot vouch for anything (HTTP 503, not 401).
    unavailable: bool = False


class Oversize(VerifyError):
    code = "oversize"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"token is {length} bytes, the limit is {limit}")
        self.length, self.limit = length, limit


class Malformed(VerifyError):
    code = "malformed"


class DuplicateMember(VerifyError):
    code = "duplicate_member"

    def __init__(self, member: str) -> None:
        super().__init__(f"token JSON repeats the member {cut(member, 32)!r}")
        self.member = cut(member, 32)


class ForbiddenHeader(VerifyError):
    code = "forbidden_header"

    def __init__(self, name: str) -> None:
        super().__init__(f"token header member `{name}` is not accepted")
        self.name = name


class UnknownCritical(VerifyError):
    code = "unknown_crit"

    def __init__(self) -> None:
        super().__init__("token header has an unsupported critical extension")


class WrongType(VerifyError):
    code = "wrong_typ"

    def __init__(self, found: str | None) -> None:
        super().__init__(f"token `typ` is {None if found is None else cut(found)!r}, `at+jwt` expected")
        self.found = None if found is None else cut(found)


class MissingKid(VerifyError):
    code = "missing_kid"

    def __init__(self) -> None:
        super().__init__("token header has no `kid`")


class UnknownKid(VerifyError):
    code = "unknown_kid"

    def __init__(self, kid: str) -> None:
        super().__init__(f"no key with kid {cut(kid)!r}")
        self.kid = cut(kid)


class UnsupportedAlgorithm(VerifyError):
    code = "unsupported_alg"

    def __init__(self, alg: str) -> None:
        super().__init__(f"token `alg` {cut(alg)!r} is not accepted")
        self.alg = cut(alg)


class AlgorithmMismatch(VerifyError):
    code = "alg_mismatch"

    def __init__(self, alg: str, expected: str) -> None:
        super().__init__(f"token `alg` {cut(alg)!r} does not match its key ({expected})")
        self.alg, self.expected = cut(alg), expected


class BadSignature(VerifyError):
    code = "bad_signature"

    def __init__(self) -> None:
        super().__init__("token signature does not verify")


class MissingClaim(VerifyError):
    code = "missing_claim"

    def __init__(self, claim: str) -> None:
        super().__init__(f"token claim `{claim}` is missing")
        self.claim = claim


class InvalidClaim(VerifyError):
    code = "invalid_claim"

    def __init__(self, claim: str, reason: str) -> None:
        super().__init__(f"token claim `{claim}` is invalid: {reason}")
        self.claim, self.reason = claim, reason


class WrongIssuer(VerifyError):
    code = "wrong_issuer"

    def __init__(self) -> None:
        super().__init__("token issuer is not the expected issuer")


class WrongAudience(VerifyError):
    code = "wrong_audience"

    def __init__(self) -> None:
        super().__init__("token audience is not accepted here")


class Expired(VerifyError):
    code = "expired"

    def __init__(self, exp: int, now: int) -> None:
        super().__init__(f"token expired at {exp} (now {now})")
        self.exp, self.now = exp, now


class NotYetValid(VerifyError):
    code = "not_yet_valid"

    def __init__(self, nbf: int, now: int) -> None:
        super().__init__(f"token is not valid before {nbf} (now {now})")
        self.nbf, self.now = nbf, now


class IssuedInFuture(VerifyError):
    code = "iat_in_future"

    def __init__(self, iat: int, now: int) -> None:
        super().__init__(f"token claims to be issued at {iat}, in the future (now {now})")
        self.iat, self.now = iat, now


class SenderConstrained(VerifyError):
    """The token is bound to a DPoP key (``cnf.jkt``) and came without a proof (RFC 9449 §7.1)."""

    code = "dpop_bound"

    def __init__(self) -> None:
        super().__init__("token is bound to a DPoP key and was presented without a proof")


class InvalidDpopProof(VerifyError):
    code = "invalid_dpop_proof"


class UseDpopNonce(VerifyError):
    code = "use_dpop_nonce"

    def __init__(self, nonce: str) -> None:
        super().__init__("a DPoP nonce is required")
        self.nonce = nonce


class DpopProofQuota(VerifyError):
    """The token's key or DPoP key holds its whole share of the replay cache (HTTP 429)."""

    code = "dpop_proof_quota"

    def __init__(self, retry_after_secs: int) -> None:
        super().__init__(f"too many live DPoP proofs for this key; retry in {retry_after_secs} s")
        self.retry_after_secs = retry_after_secs


class DpopReplayCacheFull(VerifyError):
    code = "dpop_replay_cache_full"
    unavailable = True

    def __init__(self) -> None:
        super().__init__("DPoP replay cache is full")


class Revoked(VerifyError):
    code = "revoked"

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"token is revoked ({kind} {cut(ident)})")
        self.kind, self.ident = kind, ident


class NoRevocationList(VerifyError):
    code = "no_revocation_list"
    unavailable = True

    def __init__(self) -> None:
        super().__init__("no revocation list is loaded; refusing every token")


class RevocationListExpired(VerifyError):
    code = "revocation_list_expired"
    unavailable = True

    def __init__(self, exp: int, now: int) -> None:
        super().__init__(f"the revocation list expired at {exp} (now {now}); refusing every token")
        self.exp, self.now = exp, now


class SourcesUnavailable(VerifyError):
    code = "sources_unavailable"
    unavailable = True

    def __init__(self, last_refresh: int | None) -> None:
        super().__init__("the key set could not be refreshed for too long; refusing every token")
        self.last_refresh = last_refresh


# --- Access policy ---------------------------------------------------------------------------


class AccessError(KeymintError):
    """A verified token lacks what a route requires (HTTP 403, not 401)."""


class InsufficientScope(AccessError):
    code = "insufficient_scope"

    def __init__(self, missing: list[str]) -> None:
        super().__init__("token lacks the scope(s): " + " ".join(missing))
        self.missing = missing


class WrongTenant(AccessError):
    code = "wrong_tenant"

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(f"token belongs to tenant {found}, not {expected}")
        self.expected, self.found = expected, found


# --- Revocation list updates -----------------------------------------------------------------


class UpdateError(KeymintError):
    """A revocation list was not installed; the list in force stays in force."""

    code = "list_malformed"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- Key sets and configuration --------------------------------------------------------------


class KeySetError(KeymintError):
    """A key set (JWKS) was refused; the one in force stays in force."""

    code = "jwks_invalid"


class BuildError(KeymintError):
    """A verifier could not be built from its configuration."""

    code = "build"


class SourceError(KeymintError):
    """A source could not be fetched or read (HTTP status, transport, size, encoding)."""

    code = "source"
