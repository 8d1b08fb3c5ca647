"""DPoP: bound tokens need a proof of their key for this very request (RFC 9449)."""

from __future__ import annotations

import pytest

from keymint_verifier import NonceSource, Verifier, VerifyError
from keymint_verifier.dpop_key import DpopKey
from keymint_verifier.dpop_replay import ReplayCache, ReplayLimits
from support import AUD, ISS, NOW, Signer, jwks_of

URL = "https://api.example/orders"


def setup(**kw: object) -> tuple[Verifier, Signer, DpopKey, str]:
    s = Signer.ed25519()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), now=lambda: NOW, **kw)  # type: ignore[arg-type]
    v.update_revocations(s.list(1))
    k = DpopKey.generate()
    return v, s, k, s.token(cnf={"jkt": k.jkt})


def code(fn: object, *a: object, **kw: object) -> str:
    with pytest.raises(VerifyError) as e:
        fn(*a, **kw)  # type: ignore[operator]
    return e.value.code


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_a_bound_token_with_a_good_proof_verifies(alg: str) -> None:
    v, s, _, _ = setup()
    k = DpopKey.generate(alg)
    t = s.token(cnf={"jkt": k.jkt})
    v.verify_dpop(t, k.proof("GET", URL, NOW, access_token=t), "GET", URL)
    # Query and case of scheme/host do not matter (RFC 9449 §4.3).
    v.verify_dpop(t, k.proof("GET", "HTTPS://API.example/orders?x=1", NOW, access_token=t), "GET", URL)


def test_a_bound_token_without_a_proof_is_dpop_bound() -> None:
    v, _, _, t = setup()
    assert code(v.verify, t) == "dpop_bound"


def test_proofs_that_do_not_fit_are_refused() -> None:
    v, s, k, t = setup()
    other = DpopKey.generate()
    cases = [
        k.proof("POST", URL, NOW, access_token=t),
        k.proof("GET", "https://api.example/other", NOW, access_token=t),
        k.proof("GET", URL, NOW + 6, access_token=t),
        k.proof("GET", URL, NOW - 61, access_token=t),
        k.proof("GET", URL, NOW, access_token=t + "x"),
        k.proof("GET", URL, NOW),
        other.proof("GET", URL, NOW, access_token=t),
        "not.a.proof",
        s.token(),
    ]
    for proof in cases:
        assert code(v.verify_dpop, t, proof, "GET", URL) == "invalid_dpop_proof"
    assert code(v.verify_dpop, s.token(), k.proof("GET", URL, NOW, access_token=s.token()), "GET", URL) == "invalid_dpop_proof"


def test_a_proof_is_accepted_once() -> None:
    v, _, k, t = setup()
    p = k.proof("GET", URL, NOW, access_token=t)
    v.verify_dpop(t, p, "GET", URL)
    assert code(v.verify_dpop, t, p, "GET", URL) == "invalid_dpop_proof"


def test_one_holder_over_its_share_is_refused_alone() -> None:
    v, s, k, t = setup(dpop_replay_capacity=100)  # a share of 1 % = 1 live proof per key
    v.verify_dpop(t, k.proof("GET", URL, NOW, access_token=t), "GET", URL)
    with pytest.raises(VerifyError) as e:
        v.verify_dpop(t, k.proof("GET", URL, NOW, access_token=t), "GET", URL)
    assert e.value.code == "dpop_proof_quota" and getattr(e.value, "retry_after_secs") >= 1
    k2 = DpopKey.generate()
    t2 = s.token(sub="K2", cnf={"jkt": k2.jkt})
    v.verify_dpop(t2, k2.proof("GET", URL, NOW, access_token=t2), "GET", URL)


def test_one_dpop_key_gets_half_of_its_keys_share_so_one_flooding_browser_leaves_room() -> None:
    from keymint_verifier.dpop_replay import OverQuota

    limits = ReplayLimits.with_capacity(10_000)
    assert (limits.per_holder, limits.per_jkt) == (100, 50)
    c = ReplayCache(10_000)
    refused = 0
    for n in range(1_000):
        try:
            c.check_and_record("pk", "flooding-browser", str(n), NOW + 66, NOW)
        except OverQuota as e:
            assert e.who == "jkt"
            refused += 1
    assert refused == 1_000 - 50
    # The key's other browsers still have half of its share.
    for browser in range(2):
        for n in range(25):
            c.check_and_record("pk", f"browser{browser}", str(n), NOW + 66, NOW)
    # Only then is the key's own share full, for every DPoP key under it.
    with pytest.raises(OverQuota) as e:
        c.check_and_record("pk", "browser-late", "1", NOW + 66, NOW)
    assert e.value.who == "key"


def test_replay_cache_refuses_when_full_and_expires_entries() -> None:
    c = ReplayCache(limits=ReplayLimits(capacity=2, per_holder=2, per_jkt=2))
    c.check_and_record("a", "j1", "1", NOW + 61, NOW)
    c.check_and_record("b", "j2", "2", NOW + 61, NOW)
    from keymint_verifier.dpop_replay import CacheFull

    with pytest.raises(CacheFull):
        c.check_and_record("c", "j3", "3", NOW + 61, NOW)
    c.check_and_record("c", "j3", "3", NOW + 122, NOW + 61)
    assert len(c) == 1


def test_nonces_when_required() -> None:
    nonces = NonceSource.random()
    v, _, k, t = setup(dpop_nonces=nonces)
    with pytest.raises(VerifyError) as e:
        v.verify_dpop(t, k.proof("GET", URL, NOW, access_token=t), "GET", URL)
    assert e.value.code == "use_dpop_nonce"
    nonce = getattr(e.value, "nonce")
    v.verify_dpop(t, k.proof("GET", URL, NOW, access_token=t, nonce=nonce), "GET", URL)
