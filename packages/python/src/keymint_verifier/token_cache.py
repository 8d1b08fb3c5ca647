"""The verified-token cache: a token seen before skips parsing and the signature check.

Keyed by the SHA-256 of the whole token (never a short hash, so two tokens never share an
entry), bounded in entries with least-recently-used eviction. Expiry, revocation and the key's
presence in the key set are still checked by the verifier on every hit, and for a bound token the
DPoP proof too; entries whose key left the key set are purged when the set is replaced.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from .keys import PublicKey
from .verified_token import VerifiedToken

DEFAULT_CACHE_ENTRIES = 32_768


@dataclass(slots=True)
class Entry:
    token: VerifiedToken
    key: PublicKey
    #: The generation of the revocation list this token was last found unrevoked in.
    unrevoked_in: int = field(default=0)


def cache_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenCache:
    def __init__(self, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()

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

    def insert(self, key: bytes, entry: Entry) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def remove(self, key: bytes) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def retain(self, keep: Callable[[Entry], bool]) -> None:
        with self._lock:
            for k in [k for k, e in self._entries.items() if not keep(e)]:
                del self._entries[k]
