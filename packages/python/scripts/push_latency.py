#!/usr/bin/env python3
"""Prints the p99 revocation-to-refusal latency of the Python verifier over 20 revocations,
against the real keymint binary (``KEYMINT_BIN``) on loopback, through the push channel.

    packages/python/.venv/bin/python packages/python/scripts/push_latency.py [rounds] [--via revoke|report]

``--via report``: each key is revoked by a secret-scanning report (POST /v1/secret-scanning/github,
signed with the test scanner key of issuer/tests/fixtures/secret-scanning/, the issuer started with
``--secret-scanning-keys`` on its public-key document) instead of ``keymint keys revoke``; latency
runs from just before the POST. Either way, exits 1 when the p99 is a second or more.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from issuer_process import Issuer  # noqa: E402
from push_latency import SCANNER_KEYS, measure, p99  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rounds", nargs="?", type=int, default=20)
    parser.add_argument("--via", choices=("revoke", "report"), default="revoke")
    args = parser.parse_args()
    serve_args = ["--secret-scanning-keys", str(SCANNER_KEYS)] if args.via == "report" else []
    with Issuer(serve_args=serve_args) as issuer:
        latencies = measure(issuer, rounds=args.rounds, via=args.via)
    ms = sorted(round(x * 1000, 1) for x in latencies)
    what = "revocations" if args.via == "revoke" else "reports"
    print(f"{what}: {len(ms)}  p50: {ms[len(ms) // 2]} ms  p99: {p99(latencies) * 1000:.1f} ms  max: {ms[-1]} ms")
    return 0 if p99(latencies) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
