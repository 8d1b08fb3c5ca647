"""Whether an offered revocation list may replace the one in force: the rules that depend on the
verifier's clock, its settings, its key set and the list it holds (docs/revocation-list.md,
rules 2-4). The format checks are ``revocation_list.verify_list``'s.

In order: not signed by a key the list in force revokes; ``iat`` not later than now plus the
leeway; ``exp - iat`` at most the cap; not expired; not backwards. While the key that signed the
list in force is in the key set and revoked by neither list, its serial is a floor (lower is a
rollback, equal needs the very same bytes). Once that key is gone the serial no longer binds —
whoever held the key may have signed serial 2⁶⁴−1 — and only the signed ``iat`` keeps replays out.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UpdateError
from .keys import Jwks
from .revocation_list import RevocationState, SignedRevocationList


@dataclass(frozen=True, slots=True)
class ListPolicy:
    leeway: int
    max_validity: int


def admit(
    current: RevocationState | None,
    offered: SignedRevocationList,
    keys: Jwks,
    now: int,
    policy: ListPolicy,
) -> None:
    # A revoked key may still be in the key set, but it no longer speaks for the issuer:
    # otherwise its holder could sign a list that lifts its own revocation.
    if current is not None and current.index.kid_revoked(offered.kid):
        raise UpdateError(
            "list_signed_by_revoked_key",
            f"revocation list is signed by {offered.kid}, a key the list in force revokes",
        )
    lst = offered.list
    if lst.iat > now + policy.leeway:
        raise UpdateError(
            "list_iat_in_future",
            f"revocation list claims to be issued at {lst.iat}, later than now ({now}) plus the leeway",
        )
    if max(lst.exp - lst.iat, 0) > policy.max_validity:
        raise UpdateError(
            "list_validity_too_long",
            f"revocation list is valid from {lst.iat} to {lst.exp}, longer than the cap of {policy.max_validity}s",
        )
    if now >= lst.exp:
        raise UpdateError("list_expired", f"revocation list expired at {lst.exp} (now {now})")
    if current is None:
        return
    in_force = current.signed.list
    if _serial_binds(current, offered, keys):
        if lst.serial < in_force.serial:
            raise UpdateError(
                "list_rollback",
                f"revocation list serial {lst.serial} is lower than the current {in_force.serial}: refusing a rollback",
            )
        if lst.serial == in_force.serial:
            # The very same bytes were answered "unchanged" before the signature was checked.
            raise UpdateError(
                "list_serial_conflict",
                f"revocation list serial {lst.serial} is already in force with different content",
            )
    elif lst.iat + policy.leeway < in_force.iat:
        raise UpdateError(
            "list_replayed",
            f"revocation list issued at {lst.iat} is older than the list in force (issued at {in_force.iat})",
        )


def _serial_binds(cur: RevocationState, offered: SignedRevocationList, keys: Jwks) -> bool:
    signer = cur.signed.kid
    return (
        keys.get(signer) is not None
        and not cur.index.kid_revoked(signer)
        and not any(e.kind == "kid" and e.id == signer for e in offered.list.entries)
    )
