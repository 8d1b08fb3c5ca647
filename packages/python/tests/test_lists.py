"""Revocation list installs: every rule of docs/revocation-list.md, with the list_* codes."""

from __future__ import annotations

import pytest

from keymint_verifier import UpdateError, Verifier
from support import AUD, ISS, NOW, Signer, b64, entry, jwks_of


def fresh(*signers: Signer, **kw: object) -> Verifier:
    return Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(*signers), now=lambda: NOW, **kw)  # type: ignore[arg-type]


def refused(v: Verifier, text: str, now: int = NOW) -> str:
    with pytest.raises(UpdateError) as e:
        v.update_revocations(text, now=now)
    return e.value.code


def test_install_and_unchanged() -> None:
    s = Signer.ed25519()
    v = fresh(s)
    one = s.list(1)
    assert v.update_revocations(one).installed
    assert not v.update_revocations(one).installed
    assert v.revocation_serial == 1


def test_envelope_rules() -> None:
    s, stranger = Signer.ed25519(), Signer.ed25519()
    v = fresh(s)
    assert refused(v, "not a list") == "list_malformed"
    assert refused(v, s.list(1, header={"typ": "at+jwt", "alg": "EdDSA", "kid": s.kid})) == "list_wrong_typ"
    assert refused(v, s.list(1, header={"alg": "EdDSA", "kid": s.kid})) == "list_wrong_typ"
    v.update_revocations(s.list(1, header={"typ": "application/Keymint-Revocations+JWT", "alg": "Ed25519", "kid": s.kid}))
    v = fresh(s)
    for name in ("jku", "jwk", "x5u", "x5c", "crit"):
        h = {"typ": "keymint-revocations+jwt", "alg": "EdDSA", "kid": s.kid, name: ["x"]}
        assert refused(v, s.list(1, header=h)) == "list_forbidden_header"
    assert refused(v, s.list(1, header={"typ": "keymint-revocations+jwt", "alg": "EdDSA"})) == "list_malformed"
    assert refused(v, stranger.list(1)) == "list_unknown_kid"
    assert refused(v, s.list(1, header={"typ": "keymint-revocations+jwt", "alg": "ES256", "kid": s.kid})) == "list_alg_mismatch"
    h, p, _ = s.list(1).split(".")
    assert refused(v, f"{h}.{p}.{stranger.list(1).split('.')[2]}") == "list_bad_signature"
    dup = b'{"v":1,"v":1,"iss":"%s","serial":1,"iat":%d,"exp":%d,"entries":[]}' % (ISS.encode(), NOW, NOW + 60)
    assert refused(v, s.sign({"typ": "keymint-revocations+jwt", "alg": "EdDSA", "kid": s.kid}, dup)) == "list_duplicate_member"


def test_payload_rules() -> None:
    s = Signer.ed25519()
    v = fresh(s)
    assert refused(v, s.list(1, v=2)) == "list_unsupported_version"
    assert refused(v, s.list(1, iss="https://other.example")) == "list_wrong_issuer"
    assert refused(v, s.list(1, exp=NOW)) == "list_bad_validity"
    assert refused(v, s.list(1, entries=[{"kind": "ip", "id": "x", "revoked_at": 1, "drop_after": 2}])) == "list_malformed"
    assert refused(v, s.list(1, entries=[entry("key", "not_base62")])) == "list_malformed"
    assert refused(v, s.list(-1)) == "list_malformed"


def test_clock_rules() -> None:
    s = Signer.ed25519()
    v = fresh(s)
    assert refused(v, s.list(1, iat=NOW + 61)) == "list_iat_in_future"
    v.update_revocations(s.list(1, iat=NOW + 60))
    v = fresh(s)
    assert refused(v, s.list(1, iat=NOW - 10, exp=NOW - 10 + 7 * 86400 + 1)) == "list_validity_too_long"
    assert refused(v, s.list(1, iat=NOW - 100, exp=NOW)) == "list_expired"
    tight = fresh(s, list_validity_cap=3600)
    assert refused(tight, s.list(1, exp=NOW + 3601)) == "list_validity_too_long"


def test_serial_never_goes_backwards_and_equal_only_byte_for_byte() -> None:
    s = Signer.es256()  # ES256 signatures differ for the same payload: same serial, other bytes
    v = fresh(s)
    v.update_revocations(s.list(5))
    assert refused(v, s.list(4)) == "list_rollback"
    assert refused(v, s.list(5)) == "list_serial_conflict"
    assert v.update_revocations(s.list(6)).installed


def test_serial_floor_goes_with_its_key() -> None:
    old, new = Signer.ed25519(), Signer.ed25519()
    v = fresh(old, new)
    v.update_revocations(old.list(2**64 - 1))
    # While `old` is in the key set, the huge serial binds.
    assert refused(v, new.list(7)) == "list_rollback"
    # `old` leaves the key set: the floor is dropped, but an old list replayed is still refused.
    v.set_keys(jwks_of(new))
    assert refused(v, new.list(7, iat=NOW - 61)) == "list_replayed"
    assert v.update_revocations(new.list(7, iat=NOW - 60)).installed


def test_floor_dropped_when_the_offered_list_revokes_its_key() -> None:
    old, new = Signer.ed25519(), Signer.ed25519()
    v = fresh(old, new)
    v.update_revocations(old.list(2**64 - 1))
    assert v.update_revocations(new.list(3, [entry("kid", old.kid)])).installed
    # Signed by a key the list in force revokes: refused even with a higher serial.
    assert refused(v, old.list(2**64 - 1, iat=NOW + 1)) == "list_signed_by_revoked_key"


def test_a_refused_list_leaves_the_list_in_force() -> None:
    s = Signer.ed25519()
    v = fresh(s)
    v.update_revocations(s.list(3, [entry("key", "K1")]))
    with pytest.raises(UpdateError):
        v.update_revocations(s.list(2))
    assert v.revocation_serial == 3


def test_bad_base64_list_is_malformed() -> None:
    s = Signer.ed25519()
    assert refused(fresh(s), "e31." + b64(b"{}") + "." + "A" * 86) == "list_malformed"
