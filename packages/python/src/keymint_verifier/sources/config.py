"""What to fetch, from where, and how often."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import BuildError


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def secure_or_loopback(uri: str) -> bool:
    """https anywhere; plain http only to a loopback host (key material must not travel in the
    clear across a network)."""
    parts = urlsplit(uri)
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or parts.hostname is None:
        return False
    host = parts.hostname
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class LiveConfig:
    """``jwks`` and ``revocations`` are each a URL or a file path; ``events`` the push channel's
    URL (``/v1/revocations/events``), if any. Times in seconds."""

    jwks: str
    revocations: str
    events: str | None = None
    #: Shortest time between two polls, and the retry period after a failure.
    min_refresh: float = 5.0
    #: Longest time between two polls (a ``Cache-Control: max-age`` is clamped to this).
    max_refresh: float = 300.0
    #: Stale-if-error: how long the key set may go without a successful refresh before every
    #: token is refused (503).
    max_stale: int = 3600
    #: At most one key-set refetch per this period for tokens with an unknown ``kid``.
    kid_cooldown: float = 30.0
    timeout: float = 10.0
    max_jwks_bytes: int = 1024 * 1024
    max_list_bytes: int = 64 * 1024 * 1024

    def check_uris(self) -> None:
        for name, uri in (
            ("jwks_uri", self.jwks),
            ("keymint_revocation_list_uri", self.revocations),
            ("keymint_revocation_events_uri", self.events),
        ):
            if uri is not None and is_url(uri) and not secure_or_loopback(uri):
                raise BuildError(f"{name} {uri!r} must be https (plain http only to a loopback host)")
        if self.events is not None and not is_url(self.events):
            raise BuildError("the events source must be a URL")

    @staticmethod
    def for_issuer(base_url: str) -> LiveConfig:
        """The keymint issuer's own endpoints under ``base_url``."""
        base = base_url.rstrip("/")
        return LiveConfig(
            jwks=f"{base}/.well-known/jwks.json",
            revocations=f"{base}/v1/revocations",
            events=f"{base}/v1/revocations/events",
        )
