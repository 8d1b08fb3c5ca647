/**
 * The verified-token cache: a token seen before skips parsing and the signature check.
 *
 * Keyed by the SHA-256 of the whole token (never a short hash, so two tokens never share an entry,
 * and no token text is kept as a key). Bounded by bytes, not entries, so large tokens cannot blow
 * the budget: each entry is charged its token's length plus {@link ENTRY_OVERHEAD}. The least
 * recently used entries go first. Expiry, revocation, the key's continued presence and, for bound
 * tokens, the DPoP proof are checked by the verifier on every hit.
 *
 * The cache is shared by every API key whose tokens the verifier sees, so each key (the token's
 * `sub`) gets its own bounded share of it ({@link CacheShares}): one key may hold at most
 * {@link DEFAULT_CACHE_SHARE_PERCENT} % of the budget in live tokens. Past that, its further tokens
 * are verified exactly as before but not cached, so a holder presenting many valid tokens can never
 * flush the cache for other keys; only that key pays the signature checks.
 */

import { createHash } from 'node:crypto';

import { DueHeap } from './due-heap.js';
import type { VerifiedToken } from './verified-token.js';

/** Bookkeeping charged per entry on top of the token's own length. */
export const ENTRY_OVERHEAD = 512;
/** Default budget: 16 MiB, about 16,000 typical tokens. */
export const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;
/** The share of the cache's budget that one API key's live tokens may take, in percent. */
export const DEFAULT_CACHE_SHARE_PERCENT = 10;

/** What an entry for a token of `tokenLength` is charged, in bytes. */
export function entryWeight(tokenLength: number): number {
  return tokenLength + ENTRY_OVERHEAD;
}

export interface CacheEntry {
  readonly token: VerifiedToken;
  /** The key material that verified the signature; a hit counts only while the `kid` still maps to it. */
  readonly keyMaterial: string;
  /** The revocation list generation this token was last found unrevoked in (0: none). */
  unrevokedIn: number;
  readonly weight: number;
}

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

/** One admitted token's weight, held against its key until `until`. */
interface Held {
  readonly until: bigint;
  readonly weight: number;
  readonly sub: string;
}

/**
 * Each API key's share of the verified-token cache.
 *
 * Per key (`sub`), the weight of its cached tokens that are still live. A token counts against its
 * key until it could no longer pass (`exp` plus the leeway), whether or not the cache still holds
 * it: the weight is released from a heap in due order, without scans. That is conservative (an
 * evicted token still counts until then), needs no hook into the cache's eviction, and means
 * expired tokens stop counting even while they still sit in the cache. The tracker itself is
 * bounded: it counts at most twice the cache's budget, past which nothing new is cached until
 * tokens expire.
 */
export class CacheShares {
  /** The most one key may hold. */
  readonly share: number;
  /** The most the tracker counts, all keys together. */
  readonly trackedMax: number;
  /** Live weight per key; a key with none has no record. */
  private readonly perKey = new Map<string, number>();
  /** (until, weight, sub), soonest first. */
  private readonly due = new DueHeap<Held>();
  private total = 0;

  /** Shares of a cache of `capacity` (bytes). */
  constructor(capacity: number) {
    this.share = Math.max(1, Math.ceil((capacity * DEFAULT_CACHE_SHARE_PERCENT) / 100));
    this.trackedMax = capacity * 2;
  }

  /**
   * Whether a token of `sub` weighing `weight`, live until `until`, may be cached at `now`; if so,
   * it is counted against `sub` until then.
   */
  admit(sub: string, until: bigint, weight: number, now: bigint): boolean {
    this.releaseDue(now);
    if (this.total + weight > this.trackedMax) return false;
    const held = this.perKey.get(sub) ?? 0;
    if (held + weight > this.share) return false;
    this.perKey.set(sub, held + weight);
    this.due.push({ until, weight, sub });
    this.total += weight;
    return true;
  }

  /** The live weight counted against `sub`. */
  held(sub: string): number {
    return this.perKey.get(sub) ?? 0;
  }

  /** The live weight counted, all keys together; keys with live weight; tokens counted. */
  get tracked(): { readonly total: number; readonly keys: number; readonly tokens: number } {
    return { total: this.total, keys: this.perKey.size, tokens: this.due.size };
  }

  /** Releases every token whose time has passed. */
  private releaseDue(now: bigint): void {
    for (let top = this.due.peek(); top !== undefined && top.until <= now; top = this.due.peek()) {
      this.due.pop();
      this.total -= top.weight;
      const held = (this.perKey.get(top.sub) ?? 0) - top.weight;
      if (held <= 0) this.perKey.delete(top.sub);
      else this.perKey.set(top.sub, held);
    }
  }
}

export class TokenCache {
  private readonly entries = new Map<string, CacheEntry>();
  private used = 0;
  /** Each API key's share; none when the cache is off. */
  private readonly shares: CacheShares | undefined;

  constructor(private readonly capacityBytes: number = DEFAULT_CACHE_BYTES) {
    this.shares = capacityBytes > 0 ? new CacheShares(capacityBytes) : undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  get(digest: string): CacheEntry | undefined {
    const e = this.entries.get(digest);
    if (e !== undefined) {
      // Move to the most recently used end.
      this.entries.delete(digest);
      this.entries.set(digest, e);
    }
    return e;
  }

  /**
   * Caches `entry` unless its key (`sub`) already holds its share of the budget in tokens live
   * after `now`; the entry counts against the key until `until` (the token's `exp` plus the
   * leeway). Returns whether it was cached.
   */
  insert(digest: string, tokenLength: number, entry: Omit<CacheEntry, 'weight'>, until: bigint, now: bigint): boolean {
    const weight = entryWeight(tokenLength);
    const shares = this.shares;
    if (shares === undefined || weight > this.capacityBytes) return false;
    if (!shares.admit(entry.token.claims.sub, until, weight, now)) return false;
    this.remove(digest);
    this.entries.set(digest, { ...entry, weight });
    this.used += weight;
    for (const [k, e] of this.entries) {
      if (this.used <= this.capacityBytes) break;
      this.entries.delete(k);
      this.used -= e.weight;
    }
    return true;
  }

  remove(digest: string): void {
    const e = this.entries.get(digest);
    if (e !== undefined) {
      this.entries.delete(digest);
      this.used -= e.weight;
    }
  }

  retain(keep: (e: CacheEntry) => boolean): void {
    for (const [k, e] of this.entries) {
      if (!keep(e)) this.remove(k);
    }
  }
}
