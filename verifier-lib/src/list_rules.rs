//! Whether an offered revocation list may replace the one in force: the rules that depend on the
//! verifier's clock, its settings, its key set and the list it holds. The format checks (size,
//! `typ`, signature, version, issuer, `exp > iat`) are `SignedRevocationList::verify`'s.
//!
//! In order:
//!
//! 1. not signed by a key the list in force revokes;
//! 2. `iat` not later than now plus the leeway;
//! 3. `exp - iat` at most the cap (7 days by default);
//! 4. not expired;
//! 5. not backwards. While the key that signed the list in force is still in the key set and not
//!    revoked, the serial is a floor: lower is a rollback, equal needs the very same bytes. Once
//!    that key is gone (it left the key set, or the list in force or the offered one revokes it),
//!    the serial no longer binds: whoever held the key may have signed a serial of 2⁶⁴−1 that would
//!    make every genuine list a "rollback" until a restart. Then only the signed `iat` keeps
//!    replays out: the offered list may not be older than the one in force by more than the leeway.

use std::time::Duration;

use keymint_jwks::{Jwks, RevocationTarget, SignedRevocationList, UnixTime};

use crate::UpdateError;
use crate::revocation::RevocationState;

/// The settings the rules depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListPolicy {
    pub(crate) leeway_secs: u64,
    pub(crate) max_validity: Duration,
}

/// Checks `offered` against `current` (the list in force, if any) as of `now`, with `keys` the key
/// set in force. `Ok` means it may be installed.
pub(crate) fn admit(
    current: Option<&RevocationState>,
    offered: &SignedRevocationList,
    keys: &Jwks,
    now: UnixTime,
    policy: ListPolicy,
) -> Result<(), UpdateError> {
    // A revoked key may still be in the key set (until the issuer drops it), but it no longer
    // speaks for the issuer: otherwise its holder could sign a list that lifts its revocation.
    if let Some(cur) = current
        && cur.index.kid_revoked(offered.kid().as_str())
    {
        return Err(UpdateError::SignedByRevokedKey {
            kid: offered.kid().clone(),
        });
    }
    let list = offered.list();
    if list.iat.0 > now.0.saturating_add(policy.leeway_secs) {
        return Err(UpdateError::IssuedInFuture { iat: list.iat, now });
    }
    if list.exp.0.saturating_sub(list.iat.0) > policy.max_validity.as_secs() {
        return Err(UpdateError::ValidityTooLong {
            iat: list.iat,
            exp: list.exp,
            max: policy.max_validity,
        });
    }
    if now >= list.exp {
        return Err(UpdateError::Expired { exp: list.exp, now });
    }
    let Some(cur) = current else {
        return Ok(());
    };
    let in_force = cur.signed.list();
    if serial_binds(cur, offered, keys) {
        if list.serial < in_force.serial {
            return Err(UpdateError::Rollback {
                current: in_force.serial,
                offered: list.serial,
            });
        }
        if list.serial == in_force.serial {
            // The very same bytes were answered `Unchanged` before the signature was checked.
            return Err(UpdateError::SerialConflict {
                serial: in_force.serial,
            });
        }
    } else if list.iat.0.saturating_add(policy.leeway_secs) < in_force.iat.0 {
        return Err(UpdateError::IssuedBeforeInForce {
            offered_iat: list.iat,
            current_iat: in_force.iat,
        });
    }
    Ok(())
}

/// Whether the serial of the list in force still binds: its signing key is in the key set and
/// neither the list in force nor the offered one revokes it.
fn serial_binds(cur: &RevocationState, offered: &SignedRevocationList, keys: &Jwks) -> bool {
    let signer = cur.signed.kid();
    keys.get(signer.as_str()).is_some()
        && !cur.index.kid_revoked(signer.as_str())
        && !offered
            .list()
            .entries
            .iter()
            .any(|e| matches!(&e.target, RevocationTarget::Kid(k) if k == signer))
}

#[cfg(test)]
mod tests;
