"""The bounded replay cache of DPoP proof IDs.

A proof ID must be remembered for as long as the proof could be accepted, so a holder who sends
proofs as fast as it can fills memory with live entries. The cache is bounded three ways: in
total, per holder (the token's ``sub``) and per DPoP key (``jkt``): each holder gets at most a
share of the capacity (1 % by default) and each ``jkt`` half of that. One flooder is refused
alone: rotating ``jkt`` does not help, and one browser flooding under a key many browsers use
takes half of that key's share, not all of it. Entries expire from a time-ordered heap as they fall due (no
scans); when full, new proofs are refused rather than live ones forgotten.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from dataclasses import dataclass

DEFAULT_REPLAY_CAPACITY = 100_000
DEFAULT_REPLAY_SHARE_PERCENT = 1
# One DPoP key may hold this fraction (1/n) of its holder's share (500 live proofs at 100,000).
DEFAULT_JKT_SHARE_DIVISOR = 2


class Replayed(Exception):
    pass


class OverQuota(Exception):
    def __init__(self, who: str, retry_after_secs: int) -> None:
        super().__init__(f"too many live DPoP proofs for this {who}")
        self.who, self.retry_after_secs = who, retry_after_secs


class CacheFull(Exception):
    pass


def replay_until(iat: int, now: int, window_secs: int) -> int:
    """How long a proof ID must be remembered: as long as the proof could still be accepted."""
    return max(now, iat) + window_secs + 1


def proof_id(jkt: str, jti: str) -> bytes:
    return hashlib.sha256(f"{jkt}:{jti}".encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class ReplayLimits:
    capacity: int
    per_holder: int
    per_jkt: int

    @staticmethod
    def with_capacity(capacity: int) -> ReplayLimits:
        share = max(-(-capacity * DEFAULT_REPLAY_SHARE_PERCENT // 100), 1)
        return ReplayLimits(capacity, share, -(-share // DEFAULT_JKT_SHARE_DIVISOR))


class ReplayCache:
    def __init__(self, capacity: int = DEFAULT_REPLAY_CAPACITY, limits: ReplayLimits | None = None) -> None:
        self.limits = limits or ReplayLimits.with_capacity(capacity)
        self._lock = threading.Lock()
        self._seen: dict[bytes, tuple[int, str, str]] = {}
        self._due: list[tuple[int, bytes]] = []
        self._per_holder: dict[str, int] = {}
        self._per_jkt: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: int) -> None:
        while self._due and self._due[0][0] <= now:
            until, pid = heapq.heappop(self._due)
            entry = self._seen.get(pid)
            if entry is not None and entry[0] == until:
                del self._seen[pid]
                _release(self._per_holder, entry[1])
                _release(self._per_jkt, entry[2])

    def _retry_after(self, now: int) -> int:
        return max(self._due[0][0] - now, 1) if self._due else 1

    def check_and_record(self, holder: str, jkt: str, jti: str, until: int, now: int) -> None:
        pid = proof_id(jkt, jti)
        with self._lock:
            self._expire(now)
            if pid in self._seen:
                raise Replayed("DPoP proof replayed (jti seen before)")
            if self._per_holder.get(holder, 0) >= self.limits.per_holder:
                raise OverQuota("key", self._retry_after(now))
            if self._per_jkt.get(jkt, 0) >= self.limits.per_jkt:
                raise OverQuota("jkt", self._retry_after(now))
            if len(self._seen) >= self.limits.capacity:
                raise CacheFull()
            self._per_holder[holder] = self._per_holder.get(holder, 0) + 1
            self._per_jkt[jkt] = self._per_jkt.get(jkt, 0) + 1
            heapq.heappush(self._due, (until, pid))
            self._seen[pid] = (until, holder, jkt)


def _release(counts: dict[str, int], name: str) -> None:
    n = counts.get(name, 0) - 1
    if n <= 0:
        counts.pop(name, None)
    else:
        counts[name] = n
