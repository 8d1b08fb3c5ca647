"""A token that passed verification, and the access checks made on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .claims import Claims
from .errors import InsufficientScope, WrongTenant


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    claims: Claims
    #: The ``kid`` of the key that signed the token.
    kid: str
    #: That key's algorithm (``EdDSA`` or ``ES256``).
    algorithm: str

    def require_scopes(self, required: Iterable[str]) -> None:
        """Requires every scope in ``required``; the error lists the ones missing."""
        missing = [s for s in required if s not in self.claims.scope]
        if missing:
            raise InsufficientScope(missing)

    def require_tenant(self, tenant: str) -> None:
        if self.claims.tenant != tenant:
            raise WrongTenant(tenant, self.claims.tenant)
