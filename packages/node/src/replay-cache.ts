/**
 * The bounded replay cache of DPoP proof IDs (the Rust `dpop/replay.rs`).
 *
 * A proof ID must be remembered for as long as the proof could be accepted, so a holder who sends
 * proofs as fast as it can fills memory with live entries. The cache is bounded three ways: in
 * total, per holder (the token's `sub`, the API key) and per DPoP key (`jkt`). Each holder may hold
 * at most 1 % of the capacity and each `jkt` half of that, so one flooder is refused
 * (`dpop_proof_quota`) while everyone else goes on: rotating `jkt` per proof does not help, the
 * holder's share still binds, and one browser flooding under a key many browsers use takes half
 * of that key's share, not all of it.
 * When the whole cache is full of live proofs, new proofs are refused (`dpop_replay_cache_full`)
 * rather than live ones forgotten (a forgotten live ID would allow a replay). Entries expire from a
 * time-ordered heap, a few at a time as they fall due: never a scan.
 */

import { createHash } from 'node:crypto';

import { DueHeap } from './due-heap.js';
import { VerifyError } from './errors.js';

export const DEFAULT_REPLAY_CAPACITY = 100_000;
export const DEFAULT_REPLAY_SHARE_PERCENT = 1;
/** One DPoP key may hold this fraction (1/n) of its holder's share (500 live proofs at 100,000). */
export const DEFAULT_JKT_SHARE_DIVISOR = 2;

/** Until when a proof's ID must be kept: while `|iat - now| <= window` it could pass. */
export function replayUntil(iat: bigint, now: bigint, windowSecs: number): bigint {
  return (now > iat ? now : iat) + BigInt(windowSecs) + 1n;
}

interface Entry {
  readonly until: bigint;
  readonly holder: string;
  readonly jkt: string;
}

export interface ReplayLimits {
  readonly capacity: number;
  readonly perHolder: number;
  readonly perJkt: number;
}

export function limitsFor(capacity: number): ReplayLimits {
  const share = Math.max(1, Math.ceil((capacity * DEFAULT_REPLAY_SHARE_PERCENT) / 100));
  return { capacity, perHolder: share, perJkt: Math.ceil(share / DEFAULT_JKT_SHARE_DIVISOR) };
}

export class ReplayCache {
  private readonly seen = new Map<string, Entry>();
  private readonly due = new DueHeap<{ readonly until: bigint; readonly id: string }>();
  private readonly perHolder = new Map<string, number>();
  private readonly perJkt = new Map<string, number>();

  constructor(readonly limits: ReplayLimits = limitsFor(DEFAULT_REPLAY_CAPACITY)) {}

  get size(): number {
    return this.seen.size;
  }

  /**
   * Records `jkt`/`jti` for `holder` until `until`; refuses a replay, or a new ID once the holder,
   * the DPoP key or the whole cache is at its bound. Call it last, so refused requests take no room.
   */
  record(holder: string, jkt: string, jti: string, until: bigint, now: bigint): void {
    // A fixed-size ID: no attacker-sized strings kept, and the digest the issuer's table stores.
    const id = createHash('sha256').update(`${jkt}:${jti}`, 'utf8').digest('base64url');
    this.expire(now);
    if (this.seen.has(id)) throw new VerifyError('invalid_dpop_proof', 'DPoP proof replayed (jti seen before)');
    if ((this.perHolder.get(holder) ?? 0) >= this.limits.perHolder) {
      throw new VerifyError('dpop_proof_quota', 'too many live DPoP proofs for this key', { retryAfterSecs: this.retryAfter(now) });
    }
    if ((this.perJkt.get(jkt) ?? 0) >= this.limits.perJkt) {
      throw new VerifyError('dpop_proof_quota', 'too many live DPoP proofs for this DPoP key', { retryAfterSecs: this.retryAfter(now) });
    }
    if (this.seen.size >= this.limits.capacity) throw new VerifyError('dpop_replay_cache_full', 'DPoP replay cache is full');
    this.perHolder.set(holder, (this.perHolder.get(holder) ?? 0) + 1);
    this.perJkt.set(jkt, (this.perJkt.get(jkt) ?? 0) + 1);
    this.due.push({ until, id });
    this.seen.set(id, { until, holder, jkt });
  }

  private expire(now: bigint): void {
    for (let top = this.due.peek(); top !== undefined && top.until <= now; top = this.due.peek()) {
      this.due.pop();
      const e = this.seen.get(top.id);
      if (e !== undefined && e.until === top.until) {
        this.seen.delete(top.id);
        release(this.perHolder, e.holder);
        release(this.perJkt, e.jkt);
      }
    }
  }

  private retryAfter(now: bigint): number {
    const top = this.due.peek();
    if (top === undefined) return 1;
    const left = Number(top.until - now);
    return Math.max(1, left);
  }
}

function release(counts: Map<string, number>, name: string): void {
  const n = (counts.get(name) ?? 0) - 1;
  if (n <= 0) counts.delete(name);
  else counts.set(name, n);
}
