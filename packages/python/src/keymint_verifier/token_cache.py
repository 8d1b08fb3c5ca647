"""The verified-token cache: a token seen before skips parsing and the signature check.

Keyed by the SHA-256 of the whole token (never a short hash, so two tokens never share an
entry), bounded in entries with least-recently-used eviction. Expiry, revocation and the key's
presence in the key set are still checked by the verifier on every hit, and for a bound token the
DPoP proof too; entries whose key left the key set are purged when the set is replaced.

The cache is shared by every API key whose tokens the verifier sees, so each key (the token's
``sub``) gets its own bounded share of it (``CacheShares``): one key may hold at most
``DEFAULT_CACHE_SHARE_PERCENT`` (10 %) of the entries in live tokens. Past that, its further
tokens are verified exactly as before but not cached, so a holder presenting many valid tokens can
never flush the cache for other keys; only that key pays the signature checks.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from .keys import PublicKey
from .verified_token import VerifiedToken

DEFAULT_CACHE_ENTRIES = 32_768
#: The share of the cache's budget that one API key's live tokens may take, in percent.
DEFAULT_CACHE_SHARE_PERCENT = 10


@dataclass(slots=True)
class Entry:
    token: VerifiedToken
    key: PublicKey
    #: The generation of the revocation list this token was last found unrevoked in.
    unrevoked_in: int = field(default=0)


def cache_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class CacheShares:
    """Each API key's share of the verified-token cache.

    Per key (``sub``), the weight of its cached tokens that are still live. A token counts against
    its key until it could no longer pass (``exp`` plus the leeway), whether or not the cache still
    holds it: the weight is released from a heap in due order, without scans. That is conservative
    (an evicted token still counts until then), needs no hook into the cache's eviction, and means
    expired tokens stop counting even while they still sit in the cache. The tracker itself is
    bounded: it counts at most twice the cache's budget, past which nothing new is cached until
    tokens expire.
    """

    def __init__(self, capacity: int) -> None:
        #: The most one key may hold.
        self.share = max(-(-capacity * DEFAULT_CACHE_SHARE_PERCENT // 100), 1)
        #: The most the tracker counts, all keys together.
        self.tracked_max = 2 * capacity
        self._lock = threading.Lock()
        # Live weight per key; a key with none has no record.
        self._per_key: dict[str, int] = {}
        # (until, weight, sub), soonest first.
        self._due: list[tuple[int, int, str]] = []
        self._total = 0

    def admit(self, sub: str, until: int, weight: int, now: int) -> bool:
        """Whether a token of ``sub`` weighing ``weight``, live until ``until``, may be cached at
        ``now``; if so, it is counted against ``sub`` until then."""
        with self._lock:
            self._release_due(now)
            if self._total + weight > self.tracked_max:
                return False
            held = self._per_key.get(sub, 0)
            if held + weight > self.share:
                return False
            self._per_key[sub] = held + weight
            heapq.heappush(self._due, (until, weight, sub))
            self._total += weight
            return True

    def held(self, sub: str) -> int:
        """The live weight counted against ``sub``."""
        return self._per_key.get(sub, 0)

    @property
    def tracked(self) -> tuple[int, int, int]:
        """The live weight counted in total, the keys holding some, the tokens counted."""
        with self._lock:
            return self._total, len(self._per_key), len(self._due)

    def _release_due(self, now: int) -> None:
        due = self._due
        while due and due[0][0] <= now:
            _, weight, sub = heapq.heappop(due)
            self._total -= weight
            held = self._per_key.get(sub, 0) - weight
            if held <= 0:
                self._per_key.pop(sub, None)
            else:
                self._per_key[sub] = held


class TokenCache:
    def __init__(self, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        # Each API key's share; none when the cache is off.
        self._shares = CacheShares(max_entries) if max_entries > 0 else None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Entry | None:
        if self._max <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def insert(self, key: bytes, entry: Entry, until: int, now: int) -> bool:
        """Caches ``entry`` unless its key (``sub``) already holds its share of the cache in tokens
        live after ``now``; the entry counts against the key until ``until`` (the token's ``exp``
        plus the leeway). Every entry weighs 1. Returns whether it was cached."""
        shares = self._shares
        if shares is None or not shares.admit(entry.token.claims.sub, until, 1, now):
            return False
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return True

    def remove(self, key: bytes) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def retain(self, keep: Callable[[Entry], bool]) -> None:
        with self._lock:
            for k in [k for k, e in self._entries.items() if not keep(e)]:
                del self._entries[k]
