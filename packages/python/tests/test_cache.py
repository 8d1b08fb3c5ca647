"""The verified-token cache: a hit still checks expiry, revocation and the key's presence."""

from __future__ import annotations

import pytest

from keymint_verifier import Verifier, VerifyError
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
    for i in range(10):
        v.verify(s.token(jti=f"j{i}"))
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
