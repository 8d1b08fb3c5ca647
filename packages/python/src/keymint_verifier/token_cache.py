"""The verified-token cache: a token seen before skips parsing and the signature check.

Keyed by the SHA-256 of the whole token (never a short hash, so two tokens never share an
entry), bounded in entries with least-recently-used eviction. Expiry, revocation and the key's
presence in the key set are still checked by the verifier on every hit, and for a bound token the
DPoP proof too; entries whose key left the key set are purged when the set is replaced.

The cache is shared by every API key whose tokens the verifier sees, so each key (the token's
``sub``) gets its own bounded share of it (``CacheShares``): one key may hold at most
``DEFAULT_CACHE_SHARE_PERCENT`` (10 %) of the entries in cached tokens not yet expired. Past
that, its further tokens are verified exactly as before but not cached, so a holder presenting many
valid tokens cannot crowd out other keys' cached tokens; only that key pays the signature checks.

A cached token counts against its key until it leaves the cache (eviction, removal, purge or
replacement) or can no longer pass (``exp`` plus the leeway), whichever comes first; a token whose
time has passed then leaves the cache at the next insertion: so expired tokens neither hold the
share nor linger in the cache (uncounted, a key minting short-lived tokens could fill it with
them), and a token pushed out stops counting at once. The heap of due times is compacted whenever it holds twice as many tickets as are live.

Locks: ``TokenCache`` and ``CacheShares`` each have their own, and neither is ever taken while the
other is held: the cache admits a token before taking its lock, and releases the tickets of the
entries that left only after dropping it.
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
#: Released tokens the due heap may carry beyond twice the live ones before it is compacted.
HEAP_SLACK = 1024


@dataclass(slots=True)
class Entry:
    token: VerifiedToken
    key: PublicKey
    #: The generation of the revocation list this token was last found unrevoked in.
    unrevoked_in: int = field(default=0)
    #: This token's weight held against its key while it is cached (set on insertion).
    ticket: int | None = field(default=None)


def cache_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class CacheShares:
    """Each API key's share of the verified-token cache.

    Per key (``sub``), the weight of its tokens that count. A cached token counts against its key
    until it leaves the cache (``TokenCache`` releases its ticket on eviction, removal, purge or
    replacement) or until it could no longer pass (``exp`` plus the leeway; released from a heap in
    due order, without scans), whichever comes first: so an expired token lingering in the cache
    does not hold its key's share, and a token pushed out stops counting at once. The heap may
    still hold tickets already released by the cache; it drops them whenever it holds twice as many
    as are live (plus ``HEAP_SLACK``), so it stays in proportion to the cache.

    Thread-safe: every method takes this object's own lock, and calls nothing outside it.
    """

    def __init__(self, capacity: int) -> None:
        #: The most one key may hold.
        self.share = max(-(-capacity * DEFAULT_CACHE_SHARE_PERCENT // 100), 1)
        self._lock = threading.Lock()
        # Counted weight per key; a key with none has no record.
        self._per_key: dict[str, int] = {}
        # Tokens counted and not yet released: ticket -> (key, weight, the token's cache key).
        self._live: dict[int, tuple[str, int, bytes]] = {}
        # Tokens released at their time since ``take_expired``: (cache key, ticket).
        self._expired: list[tuple[bytes, int]] = []
        # (until, ticket), soonest first; may still hold tickets released by the cache.
        self._due: list[tuple[int, int]] = []
        self._next_ticket = 0

    def admit(self, sub: str, until: int, weight: int, now: int, key: bytes = b"") -> int | None:
        """A ticket counting a token of ``sub`` weighing ``weight``, live until ``until``, against
        ``sub``, if the key's counted tokens leave room for it at ``now``; ``None`` if not (the
        token is then not cached). The token counts until ``release(ticket)`` or ``until``."""
        with self._lock:
            self._release_due(now)
            held = self._per_key.get(sub, 0)
            if held + weight > self.share:
                return None
            self._per_key[sub] = held + weight
            ticket = self._next_ticket
            self._next_ticket += 1
            self._live[ticket] = (sub, weight, key)
            heapq.heappush(self._due, (until, ticket))
            if len(self._due) > 2 * len(self._live) + HEAP_SLACK:
                live = self._live
                self._due = [d for d in self._due if d[1] in live]
                heapq.heapify(self._due)
            return ticket

    def release(self, ticket: int) -> None:
        """Stops counting ``ticket``, if it still counts (releasing twice is harmless)."""
        with self._lock:
            self._release(ticket)

    def take_expired(self) -> list[tuple[bytes, int]]:
        """The tokens (cache key, ticket) released at their time since the last call, for the cache
        to remove."""
        with self._lock:
            expired, self._expired = self._expired, []
            return expired

    def held(self, sub: str) -> int:
        """The weight counted against ``sub``."""
        with self._lock:
            return self._per_key.get(sub, 0)

    @property
    def tracked(self) -> tuple[int, int, int]:
        """The keys with weight counted, the tickets still counting, the items in the due heap
        (released or not)."""
        with self._lock:
            return len(self._per_key), len(self._live), len(self._due)

    def _release(self, ticket: int) -> None:
        counted = self._live.pop(ticket, None)
        if counted is None:
            return
        sub, weight, _ = counted
        held = self._per_key.get(sub, 0) - weight
        if held <= 0:
            self._per_key.pop(sub, None)
        else:
            self._per_key[sub] = held

    def _release_due(self, now: int) -> None:
        due = self._due
        while due and due[0][0] <= now:
            _, ticket = heapq.heappop(due)
            counted = self._live.get(ticket)
            if counted is not None:
                self._expired.append((counted[2], ticket))
            self._release(ticket)


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
        counted at ``now``; the entry counts against the key while it is cached and at most until
        ``until`` (the token's ``exp`` plus the leeway). Every entry weighs 1. Returns whether it
        was cached."""
        shares = self._shares
        if shares is None:
            return False
        # A token in its last second is not cached: another thread's insertion could hand it back
        # for removal before this one has put it in the cache, and it would stay, counted by no key.
        if until <= now + 1:
            return False
        # Admitted before the cache's lock is taken, never under it (see the module's docs).
        ticket = shares.admit(entry.token.claims.sub, until, 1, now, key)
        # Tokens that can no longer pass leave the cache, an insertion at a time (no scans); their
        # shares were released already.
        expired = shares.take_expired()
        if expired:
            with self._lock:
                for k, t in expired:
                    e = self._entries.get(k)
                    if e is not None and e.ticket == t:
                        del self._entries[k]
        if ticket is None:
            return False
        with self._lock:
            # An entry already cached under this key is replaced: it leaves, and releases its share.
            old = self._entries.pop(key, None)
            left = [] if old is None or old.ticket is None else [old.ticket]
            entry.ticket = ticket
            self._entries[key] = entry
            while len(self._entries) > self._max:
                _, e = self._entries.popitem(last=False)
                if e.ticket is not None:
                    left.append(e.ticket)
        self._release(left)
        return True

    def remove(self, key: bytes) -> None:
        """Drops the entry for ``key``, if any, and releases its share."""
        with self._lock:
            e = self._entries.pop(key, None)
        if e is not None and e.ticket is not None:
            self._release([e.ticket])

    def retain(self, keep: Callable[[Entry], bool]) -> None:
        """Drops every entry ``keep`` refuses, releasing their shares."""
        with self._lock:
            gone = [k for k, e in self._entries.items() if not keep(e)]
            left = [t for t in (self._entries.pop(k).ticket for k in gone) if t is not None]
        self._release(left)

    def _release(self, tickets: list[int]) -> None:
        """Releases the shares of entries that left the cache; called without the cache's lock."""
        shares = self._shares
        if shares is not None:
            for t in tickets:
                shares.release(t)
