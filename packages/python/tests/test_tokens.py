"""Token checks, each named after the rule, with the Rust verifier's reason codes."""

from __future__ import annotations

import pytest

from keymint_verifier import Verifier, VerifyError
from keymint_verifier.errors import BuildError
from support import AUD, ISS, NOW, Signer, b64, b64json, default_claims, entry, jwks_of


@pytest.fixture(params=["EdDSA", "ES256"])
def signer(request: pytest.FixtureRequest) -> Signer:
    return Signer.ed25519() if request.param == "EdDSA" else Signer.es256()


def verifier(s: Signer, **kw: object) -> Verifier:
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), now=lambda: NOW, **kw)  # type: ignore[arg-type]
    v.update_revocations(s.list(1))
    return v


def code(v: Verifier, token: str, now: int = NOW) -> str:
    with pytest.raises(VerifyError) as e:
        v.verify(token, now=now)
    return e.value.code


def test_a_good_token_verifies_with_its_claims(signer: Signer) -> None:
    t = verifier(signer).verify(signer.token())
    assert (t.claims.sub, t.claims.tenant, t.claims.aud, t.kid) == ("K1", "acme", AUD, signer.kid)
    assert t.claims.scope == {"orders:read", "orders:write"}


def test_oversize_is_refused_before_parsing(signer: Signer) -> None:
    v = verifier(signer, max_token_bytes=100)
    assert code(v, "!" * 101) == "oversize"
    assert code(v, "!" * 100) == "malformed"


@pytest.mark.parametrize("bad", ["", "a.b", "a.b.c.d", "a=.b.c", "a.b .c", "a.b+.c", "é.b.c"])
def test_not_a_compact_jws_is_malformed(signer: Signer, bad: str) -> None:
    assert code(verifier(signer), bad) == "malformed"


def test_header_and_payload_must_be_json_objects(signer: Signer) -> None:
    v = verifier(signer)
    assert code(v, signer.sign(b64(b"[]"), default_claims())) == "malformed"
    h = {"typ": "at+jwt", "alg": signer.alg, "kid": signer.kid}
    assert code(v, signer.sign(h, b"[1]")) == "malformed"
    assert code(v, signer.sign(h, b'{"exp": NaN}')) == "malformed"


def test_non_canonical_base64_is_malformed(signer: Signer) -> None:
    # "{}" is "e30"; "e31" decodes to the same bytes with non-zero trailing bits.
    h = {"typ": "at+jwt", "alg": signer.alg, "kid": signer.kid}
    t = signer.sign(h, default_claims())
    hh, p, s = t.split(".")
    assert code(verifier(signer), signer.sign("e31", default_claims())) == "malformed"
    assert code(verifier(signer), f"{hh}.{p}.{s[:-1]}B") in ("malformed", "bad_signature")


@pytest.mark.parametrize("where", ["header", "payload", "nested"])
def test_duplicate_members_are_refused(signer: Signer, where: str) -> None:
    v = verifier(signer)
    h = f'{{"typ":"at+jwt","alg":"{signer.alg}","kid":"{signer.kid}"}}'
    claims = '{"iss":"%s","sub":"K1","aud":"%s","exp":%d,"iat":%d,"jti":"j","client_id":"K1","scope":"a","tenant":"acme"%s}'
    if where == "header":
        t = signer.sign(b64(h[:-1].encode() + b',"typ":"at+jwt"}'), (claims % (ISS, AUD, NOW + 60, NOW, "")).encode())
    elif where == "payload":
        t = signer.sign(b64(h.encode()), (claims % (ISS, AUD, NOW + 60, NOW, ',"tenant":"other"')).encode())
    else:
        t = signer.sign(b64(h.encode()), (claims % (ISS, AUD, NOW + 60, NOW, ',"x":{"a":1,"\\u0061":2}')).encode())
    assert code(v, t) == "duplicate_member"


@pytest.mark.parametrize("name", ["jku", "jwk", "x5u", "x5c"])
def test_key_pointing_headers_are_refused(signer: Signer, name: str) -> None:
    h = {"typ": "at+jwt", "alg": signer.alg, "kid": signer.kid, name: "https://evil.example"}
    assert code(verifier(signer), signer.token(header=h)) == "forbidden_header"


def test_crit_is_refused(signer: Signer) -> None:
    h = {"typ": "at+jwt", "alg": signer.alg, "kid": signer.kid, "crit": ["exp"], "exp": 1}
    assert code(verifier(signer), signer.token(header=h)) == "unknown_crit"


@pytest.mark.parametrize("typ,ok", [("at+jwt", True), ("AT+JWT", True), ("application/at+jwt", True), ("Application/At+Jwt", True), ("JWT", False), ("keymint-revocations+jwt", False), (None, False)])
def test_typ_follows_rfc9068(signer: Signer, typ: str | None, ok: bool) -> None:
    h = {"alg": signer.alg, "kid": signer.kid}
    if typ is not None:
        h["typ"] = typ
    v = verifier(signer)
    if ok:
        v.verify(signer.token(header=h))
    else:
        assert code(v, signer.token(header=h)) == "wrong_typ"


def test_kid_missing_and_unknown(signer: Signer) -> None:
    v = verifier(signer)
    assert code(v, signer.token(header={"typ": "at+jwt", "alg": signer.alg})) == "missing_kid"
    assert code(v, signer.token(header={"typ": "at+jwt", "alg": signer.alg, "kid": "nope"})) == "unknown_kid"


def test_the_key_pins_the_algorithm() -> None:
    ed, es = Signer.ed25519(), Signer.es256()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(ed, es), now=lambda: NOW)
    v.update_revocations(ed.list(1))
    v.verify(ed.token(header={"typ": "at+jwt", "alg": "Ed25519", "kid": ed.kid}))
    assert code(v, ed.token(header={"typ": "at+jwt", "alg": "ES256", "kid": ed.kid})) == "alg_mismatch"
    assert code(v, es.token(header={"typ": "at+jwt", "alg": "EdDSA", "kid": es.kid})) == "alg_mismatch"
    for alg in ("none", "HS256", "RS256"):
        assert code(v, ed.token(header={"typ": "at+jwt", "alg": alg, "kid": ed.kid})) == "unsupported_alg"


def test_signature_by_another_key_or_tampered_is_refused(signer: Signer) -> None:
    v = verifier(signer)
    h, _, s = signer.token().split(".")
    other = b64json(default_claims(tenant="evil"))
    assert code(v, f"{h}.{other}.{s}") == "bad_signature"
    assert code(v, f"{h}.{other}.{s[:-2]}") == "bad_signature"


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "tenant"])
def test_each_required_claim_missing_is_its_own_error(signer: Signer, claim: str) -> None:
    with pytest.raises(VerifyError) as e:
        verifier(signer).verify(signer.token(**{claim: None}))
    assert e.value.code == "missing_claim" and getattr(e.value, "claim") == claim


def test_nbf_and_cnf_are_optional(signer: Signer) -> None:
    verifier(signer).verify(signer.token(nbf=None))


@pytest.mark.parametrize(
    "over,expected",
    [
        ({"aud": [AUD, "https://other"]}, "invalid_claim"),
        ({"aud": []}, "invalid_claim"),
        ({"sub": "a_b"}, "invalid_claim"),
        ({"scope": "a  b"}, "invalid_claim"),
        ({"cnf": {}}, "invalid_claim"),
        ({"exp": "1800000600"}, "malformed"),
        ({"exp": 1800000600.5}, "malformed"),
        ({"exp": -1}, "malformed"),
        ({"exp": True}, "malformed"),
        ({"iss": 1}, "malformed"),
        ({"iss": "https://other.example"}, "wrong_issuer"),
        ({"aud": "https://other.example"}, "wrong_audience"),
    ],
)
def test_claim_values(signer: Signer, over: dict[str, object], expected: str) -> None:
    assert code(verifier(signer), signer.token(**over)) == expected


def test_aud_as_a_one_element_array_is_accepted(signer: Signer) -> None:
    verifier(signer).verify(signer.token(aud=[AUD]))


def test_time_checks_with_leeway(signer: Signer) -> None:
    v = verifier(signer)
    t = signer.token(exp=NOW + 100, nbf=NOW, iat=NOW)
    v.verify(t, now=NOW + 159)
    assert code(v, t, NOW + 160) == "expired"
    early = signer.token(nbf=NOW + 61, iat=NOW)
    assert code(v, early) == "not_yet_valid"
    v.verify(signer.token(nbf=NOW + 60, iat=NOW))
    assert code(v, signer.token(iat=NOW + 61, nbf=None)) == "iat_in_future"
    v.verify(signer.token(iat=NOW + 60, nbf=None))


def test_leeway_and_cap_limits() -> None:
    s = Signer.ed25519()
    with pytest.raises(BuildError):
        Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), leeway=301)
    with pytest.raises(BuildError):
        Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), list_validity_cap=7 * 86400 + 1)
    with pytest.raises(BuildError):
        Verifier(issuer=ISS, audiences=[], jwks=jwks_of(s))


def test_several_accepted_audiences(signer: Signer) -> None:
    v = Verifier(issuer=ISS, audiences=[AUD, "https://b.example"], jwks=jwks_of(signer), now=lambda: NOW)
    v.update_revocations(signer.list(1))
    v.verify(signer.token(aud="https://b.example"))


def test_without_a_list_every_token_is_refused(signer: Signer) -> None:
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(signer), now=lambda: NOW)
    with pytest.raises(VerifyError) as e:
        v.verify(signer.token())
    assert e.value.code == "no_revocation_list" and e.value.unavailable


def test_an_expired_list_fails_closed(signer: Signer) -> None:
    v = verifier(signer)
    assert code(v, signer.token(exp=NOW + 90000), NOW + 86400) == "revocation_list_expired"


@pytest.mark.parametrize(
    "kind,ident,over,revoked",
    [
        ("key", "K1", {}, True),
        ("key", "K1", {"iat": NOW + 50}, True),
        ("jti", "t-1", {}, True),
        ("jti", "t-2", {}, False),
        ("tenant", "acme", {"iat": NOW - 100 + 4}, True),
        ("tenant", "acme", {"iat": NOW - 100 + 5}, False),
    ],
)
def test_revocation_entries(signer: Signer, kind: str, ident: str, over: dict[str, object], revoked: bool) -> None:
    v = verifier(signer)
    v.update_revocations(signer.list(2, [entry(kind, ident)]))
    t = signer.token(nbf=None, **over)
    if revoked:
        assert code(v, t) == "revoked"
    else:
        v.verify(t)


def test_a_kid_entry_revokes_every_token_of_that_key() -> None:
    a, b = Signer.ed25519(), Signer.ed25519()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(a, b), now=lambda: NOW)
    v.update_revocations(b.list(1, [entry("kid", a.kid)]))
    assert code(v, a.token()) == "revoked"
    v.verify(b.token())


def test_access_policy() -> None:
    s = Signer.ed25519()
    t = verifier(s).verify(s.token())
    t.require_scopes(["orders:read"])
    t.require_tenant("acme")
    from keymint_verifier import AccessError

    with pytest.raises(AccessError) as e:
        t.require_scopes(["orders:read", "admin"])
    assert e.value.code == "insufficient_scope"
    with pytest.raises(AccessError) as e:
        t.require_tenant("other")
    assert e.value.code == "wrong_tenant"


def test_errors_never_carry_the_token() -> None:
    s = Signer.ed25519()
    v = verifier(s)
    t = s.token(iss="https://other.example")
    with pytest.raises(VerifyError) as e:
        v.verify(t)
    assert t not in str(e.value) and t.split(".")[2] not in repr(e.value)
