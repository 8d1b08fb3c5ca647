#!/usr/bin/env python3
"""Prints the p99 revocation-to-refusal latency of the Python verifier over 20 revocations,
against the real keymint binary (``KEYMINT_BIN``) on loopback, through the push channel.

    packages/python/.venv/bin/python packages/python/scripts/push_latency.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from issuer_process import Issuer  # noqa: E402
from push_latency import measure, p99  # noqa: E402


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with Issuer() as issuer:
        latencies = measure(issuer, rounds=rounds)
    ms = sorted(round(x * 1000, 1) for x in latencies)
    print(f"revocations: {len(ms)}  p50: {ms[len(ms) // 2]} ms  p99: {p99(latencies) * 1000:.1f} ms  max: {ms[-1]} ms")
    return 0 if p99(latencies) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
