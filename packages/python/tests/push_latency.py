"""Revocation-to-refusal latency through the push channel, measured on loopback."""

from __future__ import annotations

import time

from keymint_verifier import Verifier, VerifyError
from keymint_verifier.sources import LiveConfig, LiveSources
from keymint_verifier.token_client import TokenClient

from issuer_process import Issuer

AUDIENCE = "https://api.example"


def measure(issuer: Issuer, rounds: int = 20, deadline_s: float = 5.0) -> list[float]:
    """Seconds from the moment ``keymint keys revoke`` is started until the verifier refuses the
    key's token, for each of ``rounds`` keys. Polls with a deadline; never sleeps then asserts."""
    v = Verifier(issuer=issuer.base, audiences=[AUDIENCE])
    # Polling every 5 minutes at most: only the push channel can be this fast.
    cfg = LiveConfig.for_issuer(issuer.base)
    cfg = LiveConfig(cfg.jwks, cfg.revocations, cfg.events, min_refresh=300, max_refresh=300)
    with LiveSources(v, cfg) as live:
        assert live.wait_ready(10), "the verifier did not get a key set and a list within 10 s"
        push_deadline = time.monotonic() + 10
        while not live.push_connected:
            assert time.monotonic() < push_deadline, "the push channel did not connect within 10 s"
            time.sleep(0.01)
        latencies = []
        for _ in range(rounds):
            key_id, key = issuer.create_key(audience=AUDIENCE)
            token = TokenClient(issuer.base, key).token().access_token
            v.verify(token)
            # Conservative: the clock starts before the revoke command runs, so its own start-up
            # and database write count against the push channel.
            start = time.monotonic()
            issuer.revoke_key(key_id)
            while True:
                try:
                    v.verify(token)
                except VerifyError as e:
                    assert e.code == "revoked", e.code
                    latencies.append(time.monotonic() - start)
                    break
                if time.monotonic() - start > deadline_s:
                    raise AssertionError(f"no refusal within {deadline_s} s of the revocation")
                time.sleep(0.002)
        return latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-99 * len(ordered) // 100) - 1))]
