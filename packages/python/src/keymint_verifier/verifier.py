"""The verifier: a sync core whose ``verify`` does no I/O.

``verify`` reads the key set and the list in force once per call (plain attribute reads, atomic
under the GIL); updates build new values and swap them in under a lock, so a concurrent ``verify``
sees the old value or the new one, never a mix.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from . import dpop_proof, dpop_replay, jws
from .claims import Claims, parse_claims
from .dpop_nonce import NonceSource
from .errors import (
    AlgorithmMismatch,
    BadSignature,
    BuildError,
    DpopProofQuota,
    DpopReplayCacheFull,
    DuplicateMember,
    Expired,
    ForbiddenHeader,
    InvalidDpopProof,
    IssuedInFuture,
    Malformed,
    MissingKid,
    NoRevocationList,
    NotYetValid,
    Oversize,
    RevocationListExpired,
    SenderConstrained,
    SourcesUnavailable,
    UnknownCritical,
    UnknownKid,
    UnsupportedAlgorithm,
    UseDpopNonce,
    VerifyError,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from .keys import Jwks, PublicKey, algorithm_from_name
from .list_rules import ListPolicy, admit
from .revocation_list import (
    DEFAULT_MAX_LIST_LEN,
    MAX_LIST_VALIDITY,
    RevocationIndex,
    RevocationState,
    verify_list,
)
from .token_cache import DEFAULT_CACHE_ENTRIES, Entry, TokenCache, cache_key
from .verified_token import VerifiedToken

DEFAULT_LEEWAY = 60
MAX_LEEWAY = 300
DEFAULT_MAX_TOKEN_BYTES = 8 * 1024


def system_clock() -> int:
    return int(time.time())


@dataclass(frozen=True, slots=True)
class RevocationUpdate:
    """What ``update_revocations`` did: ``installed`` a newer list, or found the very same one."""

    serial: int
    installed: bool


@dataclass(slots=True)
class LiveHooks:
    """What live sources share with the verify path: a doorbell for unknown ``kid``s and the time
    of the last successful key-set refresh (0 = never)."""

    wake: Callable[[], None]
    max_stale: int
    keys_ok_at: int = field(default=0)


class Verifier:
    """Verifies keymint access tokens offline. Thread-safe; build one and share it.

    ``issuer`` and at least one audience are required. Defaults: leeway 60 s (at most 300), list
    validity cap 7 days (the format's cap; tighter is allowed, looser is not), tokens up to 8192
    bytes, a verified-token cache of 32768 entries (0 turns it off), a DPoP replay cache of 100000
    proofs, no DPoP nonces. ``now`` is the clock (Unix seconds); tests pin it.

    One API key (the token's ``sub``) may hold at most 10 % (``DEFAULT_CACHE_SHARE_PERCENT``) of
    the verified-token cache's entries in cached tokens not yet expired; past that its further
    tokens are verified as usual but not cached, so no key's tokens can flush another's. Raise ``cache_entries`` when
    one key legitimately has more live tokens than that (many instances sharing one key, each with
    its own token).
    """

    def __init__(
        self,
        *,
        issuer: str,
        audiences: Iterable[str],
        jwks: Jwks | None = None,
        leeway: int = DEFAULT_LEEWAY,
        list_validity_cap: int = MAX_LIST_VALIDITY,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        max_list_bytes: int = DEFAULT_MAX_LIST_LEN,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
        now: Callable[[], int] = system_clock,
        dpop_base_url: str | None = None,
        dpop_replay_capacity: int = dpop_replay.DEFAULT_REPLAY_CAPACITY,
        dpop_nonces: NonceSource | None = None,
        revocation_list: str | None = None,
    ) -> None:
        auds = list(dict.fromkeys(audiences))
        if not issuer:
            raise BuildError("an issuer is required")
        if not auds:
            raise BuildError("at least one audience is required")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise BuildError(f"leeway of {leeway} s is outside [0, {MAX_LEEWAY}]")
        if not 0 < list_validity_cap <= MAX_LIST_VALIDITY:
            raise BuildError(f"a revocation list validity cap of {list_validity_cap} s is outside (0, 7 days]")
        self.issuer = issuer
        self.audiences = frozenset(auds)
        self.leeway = leeway
        self.list_validity_cap = list_validity_cap
        self.max_token_bytes = max_token_bytes
        self.max_list_bytes = max_list_bytes
        self.now = now
        self.dpop_base_url = dpop_base_url.rstrip("/") if dpop_base_url else None
        self.dpop_window_secs = dpop_proof.DEFAULT_PROOF_WINDOW_SECS
        self._replay = dpop_replay.ReplayCache(dpop_replay_capacity)
        self._nonces = dpop_nonces
        self._keys = jwks if jwks is not None else Jwks.empty()
        self._revocations: RevocationState | None = None
        self._update_lock = threading.Lock()
        self._cache = TokenCache(cache_entries)
        self._live: LiveHooks | None = None
        if revocation_list is not None:
            self.update_revocations(revocation_list)

    # --- state -------------------------------------------------------------------------------

    @property
    def jwks(self) -> Jwks:
        return self._keys

    @property
    def revocation_serial(self) -> int | None:
        state = self._revocations
        return None if state is None else state.signed.list.serial

    @property
    def revocation_list_expires(self) -> int | None:
        state = self._revocations
        return None if state is None else state.signed.list.exp

    @property
    def cached_tokens(self) -> int:
        return len(self._cache)

    def attach_live(self, hooks: LiveHooks) -> None:
        """Used by live sources: from now on, ``verify`` refuses every token (503) until the key
        set has been fetched, and once it is older than ``hooks.max_stale``."""
        self._live = hooks

    def dpop_nonce(self) -> str | None:
        return None if self._nonces is None else self._nonces.current(self.now())

    # --- verification ------------------------------------------------------------------------

    def verify(self, token: str, *, now: int | None = None) -> VerifiedToken:
        """Verifies ``token`` presented as a bearer token. No I/O. A DPoP-bound token is refused
        (``dpop_bound``): use ``verify_dpop``."""
        verified = self._verify_any(token, self.now() if now is None else now)
        if verified.claims.cnf_jkt is not None:
            # The bearer path; a sender-constrained token needs its key's proof.
            raise SenderConstrained()
        return verified

    def verify_dpop(self, token: str, proof: str, method: str, url: str, *, now: int | None = None) -> VerifiedToken:
        """Verifies a DPoP-bound token with its proof for this very request (RFC 9449 §7):
        ``method`` and ``url`` as the client used them (behind a proxy, the external URL)."""
        at = self.now() if now is None else now
        verified = self._verify_any(token, at)
        jkt = verified.claims.cnf_jkt
        if jkt is None:
            raise InvalidDpopProof("the token is not bound to a DPoP key")
        req = dpop_proof.ProofRequirements(method, url, token, jkt)
        try:
            p = dpop_proof.check_proof(proof, req, self._nonces, self.dpop_window_secs, at)
            # Last, once everything else passed: only a request that would be served takes room
            # in the replay cache, and each key (`sub`) only its own share of it.
            until = dpop_replay.replay_until(p.iat, at, self.dpop_window_secs)
            self._replay.check_and_record(verified.claims.sub, p.jkt, p.jti, until, at)
        except (dpop_proof.ProofInvalid, dpop_replay.Replayed) as e:
            raise InvalidDpopProof(str(e)) from None
        except dpop_proof.ProofNeedsNonce as e:
            raise UseDpopNonce(e.nonce) from None
        except dpop_replay.OverQuota as e:
            raise DpopProofQuota(e.retry_after_secs) from None
        except dpop_replay.CacheFull:
            raise DpopReplayCacheFull() from None
        return verified

    def _verify_any(self, token: str, now: int) -> VerifiedToken:
        length = jws.byte_length(token)
        if length > self.max_token_bytes:
            raise Oversize(length, self.max_token_bytes)
        live = self._live
        if live is not None:
            ok_at = live.keys_ok_at
            if ok_at == 0:
                raise SourcesUnavailable(None)
            if now - ok_at > live.max_stale:
                raise SourcesUnavailable(ok_at)
        key_id = cache_key(token)
        hit = self._cache.get(key_id)
        if hit is not None:
            if self._keys.still_has(hit.token.kid, hit.key):
                try:
                    self._check_time(hit.token.claims, now)
                except Expired:
                    # An expired token can never pass again: it leaves the cache now rather than
                    # being kept fresh by its holder, uncounted once its time is past.
                    self._cache.remove(key_id)
                    raise
                self._check_revocation(hit.token, now, hit)
                return hit.token
            self._cache.remove(key_id)
        try:
            verified, key = self._verify_uncached(token)
        except UnknownKid:
            if live is not None:
                live.wake()
            raise
        self._check_time(verified.claims, now)
        generation = self._check_revocation(verified, now, None)
        # Cached only while its key (`sub`) is within its share of the cache; counted against the
        # key while cached, and at most until the last instant a hit could still pass.
        until = verified.claims.exp + self.leeway
        self._cache.insert(key_id, Entry(verified, key, generation), until, now)
        return verified

    def _verify_uncached(self, token: str) -> tuple[VerifiedToken, PublicKey]:
        try:
            compact = jws.Compact.split(token, self.max_token_bytes)
            header = jws.parse_header(compact.decode_header_bytes())
        except jws.JwsError as e:
            raise _from_jws(e) from None
        if header.typ is None or not jws.typ_matches(header.typ, jws.TYP_ACCESS_TOKEN):
            raise WrongType(header.typ)
        if header.kid is None:
            raise MissingKid()
        keys = self._keys
        jwk = keys.get(header.kid)
        if jwk is None:
            raise UnknownKid(header.kid)
        # The key pins the algorithm; the header can only agree with it.
        if not jwk.key.matches_header(header.alg):
            if algorithm_from_name(header.alg) is not None:
                raise AlgorithmMismatch(header.alg, jwk.key.algorithm)
            raise UnsupportedAlgorithm(header.alg)
        try:
            signature = compact.decode_signature64()
        except jws.JwsError as e:
            raise _from_jws(e) from None
        if not jwk.key.verify(compact.signing_input.encode("ascii"), signature):
            raise BadSignature()
        try:
            payload = compact.decode_payload()
        except jws.JwsError as e:
            raise _from_jws(e) from None
        claims = parse_claims(payload)
        if claims.iss != self.issuer:
            raise WrongIssuer()
        if claims.aud not in self.audiences:
            raise WrongAudience()
        return VerifiedToken(claims, jwk.kid, jwk.key.algorithm), jwk.key

    def _check_time(self, claims: Claims, now: int) -> None:
        # RFC 7519 §4.1.4: not accepted on or after `exp` (plus the leeway).
        if now >= claims.exp + self.leeway:
            raise Expired(claims.exp, now)
        if claims.nbf is not None and now + self.leeway < claims.nbf:
            raise NotYetValid(claims.nbf, now)
        if claims.iat > now + self.leeway:
            raise IssuedInFuture(claims.iat, now)

    def _check_revocation(self, token: VerifiedToken, now: int, memo: Entry | None) -> int:
        state = self._revocations
        if state is None:
            raise NoRevocationList()
        exp = state.signed.list.exp
        # Fail closed: an expired list no longer proves that nothing new was revoked.
        if now >= exp:
            raise RevocationListExpired(exp, now)
        if memo is not None and memo.unrevoked_in == state.generation:
            return state.generation
        state.index.check(token.claims, token.kid)
        if memo is not None:
            memo.unrevoked_in = state.generation
        return state.generation

    # --- updates -----------------------------------------------------------------------------

    def set_keys(self, jwks: Jwks) -> None:
        """Replaces the key set. Cached tokens whose key left the set are dropped."""
        self._keys = jwks
        self._cache.retain(lambda e: jwks.still_has(e.token.kid, e.key))

    def update_revocations(self, text: str, *, now: int | None = None) -> RevocationUpdate:
        """Installs a signed revocation list if every rule of docs/revocation-list.md allows it;
        raises ``UpdateError`` (with a ``list_*`` code) otherwise, leaving the list in force."""
        at = self.now() if now is None else now
        with self._update_lock:
            current = self._revocations
            if current is not None and current.signed.jws == text:
                return RevocationUpdate(current.signed.list.serial, installed=False)
            keys = self._keys
            signed = verify_list(text, keys, self.issuer, self.max_list_bytes)
            admit(current, signed, keys, at, ListPolicy(self.leeway, self.list_validity_cap))
            # Generations only grow, so a cached token's memo never names a later list.
            generation = 1 if current is None else current.generation + 1
            state = RevocationState(signed, RevocationIndex(signed.list), generation)
            self._revocations = state
            # Tokens signed by a revoked signing key are refused on every call anyway; this frees
            # their memory now.
            self._cache.retain(lambda e: not state.index.kid_revoked(e.token.kid))
            return RevocationUpdate(signed.list.serial, installed=True)


def _from_jws(e: jws.JwsError) -> VerifyError:
    if e.kind == "oversize":
        return Malformed(str(e))
    if e.kind == "duplicate_member":
        return DuplicateMember(e.detail)
    if e.kind == "forbidden_header":
        return ForbiddenHeader(e.detail)
    if e.kind == "unknown_crit":
        return UnknownCritical()
    if e.kind == "signature_length":
        return BadSignature()
    return Malformed(str(e))
