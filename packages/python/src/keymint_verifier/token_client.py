"""A token client: trades an API key for a token at the issuer's ``POST /v1/token``, caches it,
and fetches a new one before it expires; optionally sender-constrained with DPoP.

Sync ``httpx``; thread-safe (one exchange at a time). The key is sent only in the
``Authorization`` header and never appears in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import httpx

from .dpop_key import DpopKey
from .errors import KeymintError


class TokenClientError(KeymintError):
    """The issuer refused the key or the request. ``code`` is the OAuth2 error (RFC 6749 §5.2)."""

    def __init__(self, code: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(f"the issuer answered {status} {code}")
        self.code, self.status, self.retry_after = code, status, retry_after


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    token_type: str
    expires_at: int
    scope: str

    def __repr__(self) -> str:  # never the token itself
        return f"IssuedToken(type={self.token_type}, expires_at={self.expires_at}, scope={self.scope!r})"


class TokenClient:
    """``issuer``: the issuer's base URL. ``refresh_margin``: a token is replaced when it has
    less than this many seconds (or a fifth of its life, whichever is less) left."""

    def __init__(
        self,
        issuer: str,
        api_key: str,
        *,
        scope: str | None = None,
        audience: str | None = None,
        ttl: int | None = None,
        dpop_key: DpopKey | None = None,
        refresh_margin: int = 30,
        http: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = issuer.rstrip("/") + "/v1/token"
        self._key = api_key
        self._body: dict[str, object] = {k: v for k, v in (("scope", scope), ("audience", audience), ("ttl", ttl)) if v is not None}
        self.dpop_key = dpop_key
        if dpop_key is not None:
            self._body["dpop_jkt"] = dpop_key.jkt
        self._margin = refresh_margin
        self._http = http or httpx.Client(timeout=10.0, follow_redirects=False)
        self._now = now
        self._lock = threading.Lock()
        self._cached: IssuedToken | None = None
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"TokenClient({self._endpoint})"

    def token(self) -> IssuedToken:
        """The cached token, or a new one when it is close to expiry."""
        with self._lock:
            if self._cached is None or self._now() >= self._refresh_at:
                self._cached = self._exchange()
            return self._cached

    def invalidate(self) -> None:
        """Forget the cached token (say, after an API answered 401 invalid_token)."""
        with self._lock:
            self._cached = None

    def authorization(self, method: str, url: str) -> dict[str, str]:
        """The headers for one API request: ``Authorization`` and, with DPoP, a fresh proof."""
        t = self.token()
        if self.dpop_key is None:
            return {"Authorization": f"Bearer {t.access_token}"}
        proof = self.dpop_key.proof(method, url, int(self._now()), access_token=t.access_token)
        return {"Authorization": f"DPoP {t.access_token}", "DPoP": proof}

    def _exchange(self) -> IssuedToken:
        headers = {"Authorization": f"Bearer {self._key}"}
        if self.dpop_key is not None:
            headers["DPoP"] = self.dpop_key.proof("POST", self._endpoint, int(self._now()))
        started = self._now()
        try:
            res = self._http.post(self._endpoint, headers=headers, json=self._body or None)
        except httpx.HTTPError as e:
            raise TokenClientError("temporarily_unavailable", 0) from e
        if res.status_code != 200:
            code = "server_error"
            try:
                code = str(res.json().get("error", code))[:64]
            except ValueError:
                pass
            retry = res.headers.get("retry-after", "")
            raise TokenClientError(code, res.status_code, int(retry) if retry.isdigit() else None)
        body = res.json()
        expires_in = int(body["expires_in"])
        # Refresh ahead of expiry: measured from when we asked, so slow answers do not eat it.
        self._refresh_at = started + expires_in - min(self._margin, expires_in / 5)
        return IssuedToken(str(body["access_token"]), str(body.get("token_type", "Bearer")), int(started) + expires_in, str(body.get("scope", "")))
