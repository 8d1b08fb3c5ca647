"""Server nonces (RFC 9449 §8) that every replica given the same secret accepts: an HMAC-SHA256
(the standard library's) of the time window, valid for the current and the previous window."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from . import base64url


class NonceSource:
    def __init__(self, secret: bytes, window_secs: int = 300) -> None:
        if len(secret) < 32:
            raise ValueError(f"the DPoP nonce secret has {len(secret)} bytes; at least 32 are needed")
        self._key = bytes(secret)
        self._window = max(window_secs, 1)

    @staticmethod
    def random(window_secs: int = 300) -> NonceSource:
        return NonceSource(secrets.token_bytes(32), window_secs)

    def _for_window(self, w: int) -> str:
        counter = w.to_bytes(8, "big")
        tag = hmac.new(self._key, counter, hashlib.sha256).digest()[:16]
        return base64url.encode(counter + tag)

    def current(self, now: int) -> str:
        return self._for_window(now // self._window)

    def accepts(self, nonce: str, now: int) -> bool:
        w = now // self._window
        given = nonce.encode("utf-8", "surrogatepass")
        return any(hmac.compare_digest(self._for_window(x).encode(), given) for x in (w, max(w - 1, 0)))
