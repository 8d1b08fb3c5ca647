"""The verified-token cache: a hit still checks expiry, revocation and the key's presence."""

from __future__ import annotations

from typing import NoReturn

import pytest

from keymint_verifier import Verifier, VerifyError
from keymint_verifier.token_cache import DEFAULT_CACHE_SHARE_PERCENT, HEAP_SLACK, CacheShares
from support import AUD, ISS, NOW, Signer, entry, jwks_of


def test_cache_hits_still_check_expiry_revocation_and_keys() -> None:
    s, other = Signer.ed25519(), Signer.ed25519()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s, other), now=lambda: NOW)
    v.update_revocations(s.list(1))
    t = s.token(exp=NOW + 100)
    v.verify(t)
    assert v.cached_tokens == 1
    with pytest.raises(VerifyError) as e:
        v.verify(t, now=NOW + 160)
    assert e.value.code == "expired"
    v.update_revocations(s.list(2, [entry("jti", "t-1")]))
    with pytest.raises(VerifyError) as e:
        v.verify(t)
    assert e.value.code == "revoked"
    v.update_revocations(s.list(3))
    v.verify(t)
    v.set_keys(jwks_of(other))
    assert v.cached_tokens == 0
    with pytest.raises(VerifyError) as e:
        v.verify(t)
    assert e.value.code == "unknown_kid"


def test_cache_is_bounded() -> None:
    s = Signer.ed25519()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), now=lambda: NOW, cache_entries=3)
    v.update_revocations(s.list(1))
    # One key may hold only its share (one of three entries), so ten keys fill it.
    for i in range(10):
        v.verify(s.token(jti=f"j{i}", sub=f"K{i}", client_id=f"K{i}"))
    assert v.cached_tokens == 3


def test_a_cached_bound_token_still_needs_its_proof() -> None:
    from keymint_verifier.dpop_key import DpopKey

    s = Signer.ed25519()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), now=lambda: NOW)
    v.update_revocations(s.list(1))
    k = DpopKey.generate()
    t = s.token(cnf={"jkt": k.jkt})
    url = "https://api.example/x"
    v.verify_dpop(t, k.proof("GET", url, NOW, access_token=t), "GET", url)
    with pytest.raises(VerifyError) as e:
        v.verify(t)
    assert e.value.code == "dpop_bound"
    with pytest.raises(VerifyError) as e:
        v.verify_dpop(t, k.proof("GET", url, NOW - 100, access_token=t), "GET", url)
    assert e.value.code == "invalid_dpop_proof"


# --- each API key's share of the cache -------------------------------------------------------

# A cache of 20 entries gives each key room for 2.
CACHE_ENTRIES = 20
PER_KEY = 2


def _shared_verifier(s: Signer, **opts: int) -> Verifier:
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), now=lambda: NOW, cache_entries=CACHE_ENTRIES, **opts)
    v.update_revocations(s.list(1))
    return v


def _without_miss_path(v: Verifier, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on a token can only pass as a cache hit: the miss path (parsing, signature) fails."""

    def miss(token: str) -> NoReturn:
        raise AssertionError("the miss path ran")

    monkeypatch.setattr(v, "_verify_uncached", miss)


def test_one_key_cannot_flush_another_keys_cached_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_CACHE_SHARE_PERCENT == 10
    assert CacheShares(CACHE_ENTRIES).share == PER_KEY
    s = Signer.ed25519()
    v = _shared_verifier(s)
    b = s.token(sub="B", jti="b-1")
    v.verify(b)
    assert v.cached_tokens == 1
    # Three times as many distinct valid tokens as the whole cache holds.
    for i in range(3 * CACHE_ENTRIES):
        assert v.verify(s.token(sub="A", jti=f"a-{i}")).claims.sub == "A"
    # A holds its share and no more; B's token is still cached ...
    assert v.cached_tokens == 1 + PER_KEY
    _without_miss_path(v, monkeypatch)
    # ... and answered as a hit.
    assert v.verify(b).claims.sub == "B"
    with pytest.raises(AssertionError, match="the miss path ran"):
        v.verify(s.token(sub="A", jti="a-new"))


def test_a_key_past_its_share_is_cached_again_once_its_tokens_until_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Signer.ed25519()
    v = _shared_verifier(s, leeway=60)
    for i in range(PER_KEY):
        v.verify(s.token(sub="A", jti=f"early-{i}", exp=NOW + 100))
    assert v.cached_tokens == PER_KEY
    later = s.token(sub="A", jti="later", exp=NOW + 1000)
    v.verify(later, now=NOW)
    assert v.cached_tokens == PER_KEY  # over its share: verified, not cached
    # The earlier tokens could still pass until NOW + 100 + 60.
    v.verify(later, now=NOW + 159)
    assert v.cached_tokens == PER_KEY
    v.verify(later, now=NOW + 160)
    # Cached, and the earlier ones, which can no longer pass, have left the cache.
    assert v.cached_tokens == 1
    _without_miss_path(v, monkeypatch)
    assert v.verify(later, now=NOW + 160).claims.sub == "A"


def test_a_token_past_its_time_leaves_the_cache_when_the_next_token_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Signer.ed25519()
    v = _shared_verifier(s, leeway=60)
    short = s.token(sub="A", jti="short", exp=NOW + 100)
    v.verify(short, now=NOW)
    v.verify(s.token(sub="B", jti="b1", exp=NOW + 1000), now=NOW + 159)
    assert v.cached_tokens == 2, "still able to pass"
    v.verify(s.token(sub="B", jti="b2", exp=NOW + 1000), now=NOW + 160)
    assert v.cached_tokens == 2, "the short-lived token left, the new one came"
    _without_miss_path(v, monkeypatch)
    with pytest.raises(AssertionError, match="the miss path ran"):
        v.verify(short, now=NOW + 10)


def test_an_expired_token_presented_again_leaves_the_cache() -> None:
    s = Signer.ed25519()
    v = _shared_verifier(s, leeway=60)
    t = s.token(sub="A", jti="soon", exp=NOW + 100)
    v.verify(t, now=NOW)
    assert v.cached_tokens == 1
    with pytest.raises(VerifyError) as e:
        v.verify(t, now=NOW + 160)
    assert e.value.code == "expired"
    assert v.cached_tokens == 0


def test_a_key_past_its_share_whose_tokens_left_the_cache_is_cached_again_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s, other = Signer.ed25519(), Signer.ed25519()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s, other), now=lambda: NOW, cache_entries=CACHE_ENTRIES)
    v.update_revocations(s.list(1))
    for i in range(PER_KEY):
        v.verify(s.token(sub="A", jti=f"a-{i}"))
    assert v.cached_tokens == PER_KEY
    by_other = other.token(sub="A", jti="by-other")
    v.verify(by_other)
    assert v.cached_tokens == PER_KEY  # over its share: verified, not cached
    # s leaves the key set: its tokens leave the cache, and with them A's share, although they
    # could have passed until NOW + 600 + 60.
    v.set_keys(jwks_of(other))
    assert v.cached_tokens == 0
    v.verify(by_other)
    assert v.cached_tokens == 1
    _without_miss_path(v, monkeypatch)
    assert v.verify(by_other).claims.sub == "A"


def test_a_key_whose_tokens_were_evicted_is_cached_again_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Signer.ed25519()
    v = _shared_verifier(s)
    for i in range(PER_KEY):
        v.verify(s.token(sub="A", jti=f"a-{i}"))
    v.verify(s.token(sub="A", jti="a-over"))
    assert v.cached_tokens == PER_KEY  # over its share: verified, not cached
    # Other keys' tokens fill the cache: A's, the least recently used, are evicted.
    for i in range(CACHE_ENTRIES):
        v.verify(s.token(sub=f"other{i}", jti=f"o-{i}"))
    assert v.cached_tokens == CACHE_ENTRIES
    # Eviction released A's share: its next token is cached (answered below as a hit).
    again = s.token(sub="A", jti="a-again")
    v.verify(again)
    _without_miss_path(v, monkeypatch)
    assert v.verify(again).claims.sub == "A"


def test_a_token_refused_a_place_in_the_cache_is_still_verified() -> None:
    s = Signer.ed25519()
    v = _shared_verifier(s)
    for i in range(PER_KEY):
        v.verify(s.token(sub="A", jti=f"a-{i}"))
    refused = s.token(sub="A", jti="refused", tenant="globex", scope="orders:read")
    for _ in range(2):
        t = v.verify(refused)
        assert (t.claims.sub, t.claims.tenant, t.claims.exp) == ("A", "globex", NOW + 600)
        t.require_scopes(["orders:read"])
        assert v.cached_tokens == PER_KEY
    # Still checked in full: expired past exp + leeway, and a forged signature fails.
    with pytest.raises(VerifyError) as e:
        v.verify(refused, now=NOW + 660)
    assert e.value.code == "expired"
    h, p, _ = refused.split(".")
    forged = f"{h}.{p}.{s.token(sub='A', jti='other').split('.')[2]}"
    with pytest.raises(VerifyError) as e:
        v.verify(forged)
    assert e.value.code == "bad_signature"


UNTIL = NOW + 600


def test_shares_refuse_one_key_past_its_share_while_another_is_admitted() -> None:
    shares = CacheShares(100)
    assert shares.share == 10
    for _ in range(10):
        assert shares.admit("a", UNTIL, 1, NOW) is not None
    assert shares.held("a") == 10
    assert shares.admit("a", UNTIL, 1, NOW) is None
    assert shares.admit("b", UNTIL, 1, NOW) is not None
    assert shares.held("b") == 1


def test_shares_give_a_key_its_share_back_at_the_instant_its_tokens_until_passes() -> None:
    shares = CacheShares(100)
    assert shares.admit("a", UNTIL, 10, NOW) is not None
    assert shares.admit("a", UNTIL + 600, 1, UNTIL - 1) is None
    assert shares.admit("a", UNTIL + 600, 10, UNTIL) is not None
    assert shares.held("a") == 10


def test_shares_release_a_token_leaving_the_cache_at_once_and_only_once() -> None:
    shares = CacheShares(100)
    first = shares.admit("a", UNTIL, 10, NOW)
    assert first is not None
    assert shares.admit("a", UNTIL, 10, NOW) is None
    shares.release(first)
    assert shares.held("a") == 0
    shares.release(first)
    assert shares.admit("a", UNTIL + 1, 10, NOW) is not None
    # The first token's time passes: the second still counts.
    assert shares.admit("b", UNTIL, 1, UNTIL) is not None
    assert shares.held("a") == 10
    assert shares.admit("a", UNTIL + 1, 1, UNTIL) is None


def test_shares_keep_the_due_heap_in_proportion_to_the_live_tokens() -> None:
    shares = CacheShares(10_000_000)
    # Admitted and released by the thousand, far from due: nothing is ever popped as due.
    for n in range(20_000):
        ticket = shares.admit(f"k{n % 50}", UNTIL, 100, NOW)
        assert ticket is not None
        shares.release(ticket)
    kept = [shares.admit(f"k{n}", UNTIL, 100, NOW) for n in range(10)]
    keys, live, due = shares.tracked
    assert (live, keys) == (10, 10)
    assert due <= 2 * 10 + HEAP_SLACK + 1, due
    for ticket in kept:
        assert ticket is not None
        shares.release(ticket)
    keys, live, _ = shares.tracked
    assert (live, keys) == (0, 0)


def test_shares_of_a_tiny_cache_are_one_entry() -> None:
    assert CacheShares(1).share == 1
    assert CacheShares(3).share == 1
    assert CacheShares(11).share == 2
