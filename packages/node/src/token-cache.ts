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
 * {@link DEFAULT_CACHE_SHARE_PERCENT} % of the budget in cached tokens not yet expired. Past that,
 * its further tokens are verified exactly as before but not cached, so a holder presenting many
 * valid tokens cannot crowd out other keys' cached tokens; only that key pays the signature checks.
 *
 * A cached token counts against its key until it leaves the cache (eviction, removal, purge or
 * replacement) or can no longer pass (`exp` plus the leeway), whichever comes first; a token whose
 * time has passed then leaves the cache at the next insertion: so expired tokens neither hold the
 * share nor linger in the cache (uncounted, a key minting short-lived tokens could fill the budget
 * with them), and a token pushed out stops counting at once. The heap of due times is compacted whenever it holds twice as many tickets as are live.
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

/**
 * The least a key's share is, budget permitting: room for a token or two, so that a small cache
 * (where 10 % would not hold one entry) still caches.
 */
export const MIN_SHARE = 2048;

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
  /** This token's weight held against its key while it is cached ({@link CacheShares.admit}). */
  readonly ticket: number;
}

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

/** An admitted token awaiting its time: `until`, and the ticket that counts it. */
interface Due {
  readonly until: bigint;
  readonly ticket: number;
}

/** Released tokens the due heap may carry beyond twice the live ones before it is compacted. */
export const HEAP_SLACK = 1024;

/**
 * Each API key's share of the verified-token cache.
 *
 * Per key (`sub`), the weight of its tokens that count. A cached token counts against its key
 * until it leaves the cache ({@link TokenCache} releases its ticket on eviction, removal, purge or
 * replacement) or until it could no longer pass (`exp` plus the leeway; released from a heap in due
 * order, without scans), whichever comes first: so an expired token lingering in the cache does
 * not hold its key's share, and a token pushed out stops counting at once. The heap may still
 * hold tickets already released by the cache; it drops them whenever it holds twice as many as are
 * live (plus {@link HEAP_SLACK}), so it stays in proportion to the cache.
 */
export class CacheShares {
  /** The most one key may hold. */
  readonly share: number;
  /** Counted weight per key; a key with none has no record. */
  private readonly perKey = new Map<string, number>();
  /** Tokens counted and not yet released: ticket → key, weight and the token's cache digest. */
  private readonly live = new Map<number, { readonly sub: string; readonly weight: number; readonly digest: string }>();
  /** Tokens released at their time since {@link takeExpired} was last called. */
  private expired: { readonly digest: string; readonly ticket: number }[] = [];
  /** (until, ticket), soonest first; may still hold tickets released by the cache. */
  private readonly due = new DueHeap<Due>();
  private nextTicket = 0;

  /** Shares of a cache of `capacity` (bytes). */
  constructor(capacity: number) {
    this.share = Math.max(Math.min(MIN_SHARE, capacity), Math.ceil((capacity * DEFAULT_CACHE_SHARE_PERCENT) / 100));
  }

  /**
   * A ticket counting a token of `sub` weighing `weight`, live until `until`, against `sub`, if the
   * key's counted tokens leave room for it at `now`; undefined if not (the token is then not
   * cached). The token counts until {@link release} is called with the ticket or `until` passes.
   */
  admit(sub: string, until: bigint, weight: number, now: bigint, digest = ''): number | undefined {
    this.releaseDue(now);
    const held = this.perKey.get(sub) ?? 0;
    if (held + weight > this.share) return undefined;
    this.perKey.set(sub, held + weight);
    const ticket = this.nextTicket++;
    this.live.set(ticket, { sub, weight, digest });
    this.due.push({ until, ticket });
    if (this.due.size > 2 * this.live.size + HEAP_SLACK) this.due.retain((d) => this.live.has(d.ticket));
    return ticket;
  }

  /** Stops counting `ticket`, if it still counts (releasing twice is harmless). */
  release(ticket: number): void {
    const t = this.live.get(ticket);
    if (t === undefined) return;
    this.live.delete(ticket);
    const held = (this.perKey.get(t.sub) ?? 0) - t.weight;
    if (held <= 0) this.perKey.delete(t.sub);
    else this.perKey.set(t.sub, held);
  }

  /** The weight counted against `sub`. */
  held(sub: string): number {
    return this.perKey.get(sub) ?? 0;
  }

  /** Keys with weight counted; tickets still counting; items in the due heap (released or not). */
  get tracked(): { readonly keys: number; readonly live: number; readonly due: number } {
    return { keys: this.perKey.size, live: this.live.size, due: this.due.size };
  }

  /** The tokens (digest and ticket) released at their time since the last call, for removal. */
  takeExpired(): readonly { readonly digest: string; readonly ticket: number }[] {
    const expired = this.expired;
    this.expired = [];
    return expired;
  }

  /** Releases every token whose time has passed, keeping those that still counted for {@link takeExpired}. */
  private releaseDue(now: bigint): void {
    for (let top = this.due.peek(); top !== undefined && top.until <= now; top = this.due.peek()) {
      this.due.pop();
      const t = this.live.get(top.ticket);
      if (t !== undefined) this.expired.push({ digest: t.digest, ticket: top.ticket });
      this.release(top.ticket);
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
   * Caches `entry` unless its key (`sub`) already holds its share of the budget in tokens counted
   * at `now`; the entry counts against the key while it is cached and at most until `until` (the
   * token's `exp` plus the leeway). Returns whether it was cached.
   */
  insert(digest: string, tokenLength: number, entry: Omit<CacheEntry, 'weight' | 'ticket'>, until: bigint, now: bigint): boolean {
    const weight = entryWeight(tokenLength);
    const shares = this.shares;
    if (shares === undefined || weight > this.capacityBytes) return false;
    const ticket = shares.admit(entry.token.claims.sub, until, weight, now, digest);
    // Tokens that can no longer pass leave the cache, an insertion at a time (no scans).
    for (const gone of shares.takeExpired()) {
      if (this.entries.get(gone.digest)?.ticket === gone.ticket) this.remove(gone.digest);
    }
    if (ticket === undefined) return false;
    // An entry already cached under this digest is replaced: it leaves, and releases its share.
    this.remove(digest);
    this.entries.set(digest, { ...entry, weight, ticket });
    this.used += weight;
    for (const k of this.entries.keys()) {
      if (this.used <= this.capacityBytes) break;
      this.remove(k);
    }
    return true;
  }

  /** Drops the entry for `digest`, if any, and releases its share. */
  remove(digest: string): void {
    const e = this.entries.get(digest);
    if (e !== undefined) {
      this.entries.delete(digest);
      this.used -= e.weight;
      this.shares?.release(e.ticket);
    }
  }

  /** Drops every entry `keep` refuses, releasing their shares. */
  retain(keep: (e: CacheEntry) => boolean): void {
    for (const [k, e] of this.entries) {
      if (!keep(e)) this.remove(k);
    }
  }
}
