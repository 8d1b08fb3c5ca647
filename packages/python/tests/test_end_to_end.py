"""End to end against the real keymint binary on loopback: key → token (token client) → verify
(URL sources) → revoke → refused through the push channel, each in under a second.

The binary is ``KEYMINT_BIN`` (default ``$CARGO_TARGET_DIR/release/keymint`` or
``target/release/keymint``); when it is missing these tests FAIL, they never skip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from issuer_process import Issuer
from keymint_verifier import Verifier, VerifyError
from keymint_verifier.dpop_key import DpopKey
from keymint_verifier.sources import LiveConfig, LiveSources
from keymint_verifier.token_client import TokenClient, TokenClientError
from push_latency import AUDIENCE, measure, p99


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as i:
        yield i


def test_token_client_and_url_sources(issuer: Issuer) -> None:
    key_id, key = issuer.create_key(audience=AUDIENCE)
    v = Verifier(issuer=issuer.base, audiences=[AUDIENCE])
    with LiveSources(v, LiveConfig.for_issuer(issuer.base)) as live:
        assert live.wait_ready(10)
        client = TokenClient(issuer.base, key)
        first = client.token()
        assert client.token() is first  # cached
        assert v.verify(first.access_token).claims.sub == key_id
        assert key not in repr(client) and first.access_token not in repr(first)
        dk = DpopKey.generate("ES256")
        bound = TokenClient(issuer.base, key, dpop_key=dk)
        headers = bound.authorization("GET", "https://api.example/orders")
        assert headers["Authorization"].startswith("DPoP ")
        token = headers["Authorization"].split(" ", 1)[1]
        assert v.verify_dpop(token, headers["DPoP"], "GET", "https://api.example/orders").claims.cnf_jkt == dk.jkt
        with pytest.raises(VerifyError) as e:
            v.verify(token)
        assert e.value.code == "dpop_bound"


def test_token_client_refreshes_before_expiry(issuer: Issuer) -> None:
    _, key = issuer.create_key(audience=AUDIENCE)
    clock = [time.time()]
    client = TokenClient(issuer.base, key, now=lambda: clock[0])
    first = client.token()
    clock[0] += 600 - 29  # inside the 30 s refresh margin of a 10-minute token
    assert client.token() is not first


def test_a_wrong_key_is_invalid_client(issuer: Issuer) -> None:
    with pytest.raises(TokenClientError) as e:
        TokenClient(issuer.base, "km_sk_live_nope").token()
    assert e.value.status in (400, 401) and e.value.code in ("invalid_client", "invalid_request")


def test_push_channel_latency_under_a_second(issuer: Issuer) -> None:
    latencies = measure(issuer, rounds=20)
    print(f"revocation to refusal over {len(latencies)} revocations: p99 {p99(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    assert all(x < 1.0 for x in latencies), latencies
