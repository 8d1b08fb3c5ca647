/**
 * Whether an offered revocation list may replace the one in force: the rules that depend on the
 * clock, the settings, the key set and the list held (docs/revocation-list.md, rules 2-4; the
 * Rust `list_rules.rs`). In order:
 *
 * 1. not signed by a key the list in force revokes (its holder could otherwise lift its own
 *    revocation);
 * 2. `iat` not later than now plus the leeway;
 * 3. `exp - iat` at most the cap;
 * 4. not expired;
 * 5. not backwards. While the key that signed the list in force is in the key set and revoked
 *    neither by that list nor by the offered one, its serial is a floor: lower is a rollback, equal
 *    needs the very same bytes. Once that key is gone the serial no longer binds (whoever held the
 *    key could have signed serial 2^64-1, making every genuine list a "rollback" until a restart);
 *    then only the signed `iat` keeps replays out: the offered list may not be older than the one
 *    in force by more than the leeway.
 */

import { UpdateError } from './errors.js';
import type { KeySet } from './key-set.js';
import type { RevocationIndex, SignedList } from './revocation-list.js';

/** The list in force and its index. */
export interface ListInForce {
  readonly signed: SignedList;
  readonly index: RevocationIndex;
}

export interface ListPolicy {
  readonly leewaySecs: number;
  readonly maxValiditySecs: number;
}

/** Throws the reason `offered` may not replace `current` as of `now`. */
export function admit(current: ListInForce | undefined, offered: SignedList, keys: KeySet, now: bigint, policy: ListPolicy): void {
  if (current?.index.kidRevoked(offered.kid)) {
    throw new UpdateError('list_signed_by_revoked_key', 'signed by a key the list in force revokes');
  }
  const list = offered.list;
  const leeway = BigInt(policy.leewaySecs);
  if (list.iat > now + leeway) {
    throw new UpdateError('list_iat_in_future', `issued at ${list.iat}, later than now (${now}) plus the leeway`);
  }
  if (list.exp - list.iat > BigInt(policy.maxValiditySecs)) {
    throw new UpdateError('list_validity_too_long', `valid from ${list.iat} to ${list.exp}, longer than the cap of ${policy.maxValiditySecs}s`);
  }
  if (now >= list.exp) throw new UpdateError('list_expired', `expired at ${list.exp} (now ${now})`);
  if (current === undefined) return;
  const inForce = current.signed.list;
  if (serialBinds(current, offered, keys)) {
    if (list.serial < inForce.serial) {
      throw new UpdateError('list_rollback', `serial ${list.serial} is lower than the current ${inForce.serial}`);
    }
    if (list.serial === inForce.serial) {
      // The very same bytes were answered "unchanged" before the signature was checked.
      throw new UpdateError('list_serial_conflict', `serial ${list.serial} is already in force with different content`);
    }
  } else if (list.iat + leeway < inForce.iat) {
    throw new UpdateError('list_replayed', `issued at ${list.iat}, before the list in force (issued at ${inForce.iat})`);
  }
}

/** Whether the serial of the list in force still binds (see the module comment, rule 5). */
function serialBinds(current: ListInForce, offered: SignedList, keys: KeySet): boolean {
  const signer = current.signed.kid;
  return (
    keys.get(signer) !== undefined &&
    !current.index.kidRevoked(signer) &&
    !offered.list.entries.some((e) => e.kind === 'kid' && e.id === signer)
  );
}
