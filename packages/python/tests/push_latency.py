"""Revocation-to-refusal latency through the push channel, measured on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keymint_verifier import Verifier, VerifyError
from keymint_verifier.sources import LiveConfig, LiveSources
from keymint_verifier.token_client import TokenClient

from issuer_process import REPO, Issuer

AUDIENCE = "https://api.example"

# The test scanner (secret-scanning reports): its public-key document, for
# ``keymint serve --secret-scanning-keys``, and the private half of its current key.
SCANNER = REPO / "issuer" / "tests" / "fixtures" / "secret-scanning"
SCANNER_KEYS: Path = SCANNER / "public-keys.json"
SCANNER_KEY_ID = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c"


def scanner_key() -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((SCANNER / "scanner-key.pk8.pem").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey), type(key)
    return key


def report_leak(http: httpx.Client, issuer: Issuer, api_key: str, signer: ec.EllipticCurvePrivateKey) -> None:
    """POSTs a secret-scanning report naming ``api_key``, signed the way the scanner signs (ECDSA
    P-256, SHA-256, DER, base64); fails unless answered 200 with one ``true_positive`` verdict for
    that key."""
    body = json.dumps(
        [{"token": api_key, "type": "keymint_api_key", "url": "https://github.com/o/r/blob/x/f", "source": "content"}]
    ).encode()
    signature = base64.b64encode(signer.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    r = http.post(
        f"{issuer.base}/v1/secret-scanning/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Github-Public-Key-Identifier": SCANNER_KEY_ID,
            "Github-Public-Key-Signature": signature,
        },
    )
    assert r.status_code == 200, f"the report was answered {r.status_code}: {r.text}"
    assert r.json() == [
        {"token_hash": hashlib.sha256(api_key.encode()).hexdigest(), "token_type": "keymint_api_key", "label": "true_positive"}
    ], r.text


def measure(issuer: Issuer, rounds: int = 20, deadline_s: float = 5.0, via: str = "revoke") -> list[float]:
    """Seconds from the moment the key is revoked until the verifier refuses the key's token, for
    each of ``rounds`` keys. Polls with a deadline; never sleeps then asserts.

    ``via="revoke"``: from the moment ``keymint keys revoke`` is started. ``via="report"``: from
    just before a signed secret-scanning report naming the key is POSTed (the issuer must run with
    ``--secret-scanning-keys SCANNER_KEYS``); a new key each round, so no report is a replay."""
    assert via in ("revoke", "report"), via
    signer = scanner_key() if via == "report" else None
    v = Verifier(issuer=issuer.base, audiences=[AUDIENCE])
    # Polling every 5 minutes at most: only the push channel can be this fast.
    cfg = LiveConfig.for_issuer(issuer.base)
    cfg = LiveConfig(cfg.jwks, cfg.revocations, cfg.events, min_refresh=300, max_refresh=300)
    with LiveSources(v, cfg) as live, httpx.Client(timeout=10) as http:
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
            # Conservative: the clock starts before the revoke command runs (its own start-up and
            # database write count against the push channel), or before the report is POSTed (its
            # answer is awaited and checked before polling starts).
            start = time.monotonic()
            if signer is not None:
                report_leak(http, issuer, key, signer)
            else:
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
