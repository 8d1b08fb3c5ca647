/**
 * The verified-token cache: a token seen before skips parsing and the signature check.
 *
 * Keyed by the SHA-256 of the whole token (never a short hash, so two tokens never share an entry,
 * and no token text is kept as a key). Bounded by bytes, not entries, so large tokens cannot blow
 * the budget: each entry is charged its token's length plus {@link ENTRY_OVERHEAD}. The least
 * recently used entries go first. Expiry, revocation, the key's continued presence and, for bound
 * tokens, the DPoP proof are checked by the verifier on every hit.
 */

import { createHash } from 'node:crypto';

import type { VerifiedToken } from './verified-token.js';

/** Bookkeeping charged per entry on top of the token's own length. */
export const ENTRY_OVERHEAD = 512;
/** Default budget: 16 MiB, about 16,000 typical tokens. */
export const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;

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

export class TokenCache {
  private readonly entries = new Map<string, CacheEntry>();
  private used = 0;

  constructor(private readonly capacityBytes: number = DEFAULT_CACHE_BYTES) {}

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

  insert(digest: string, tokenLength: number, entry: Omit<CacheEntry, 'weight'>): void {
    const weight = tokenLength + ENTRY_OVERHEAD;
    if (this.capacityBytes <= 0 || weight > this.capacityBytes) return;
    this.remove(digest);
    this.entries.set(digest, { ...entry, weight });
    this.used += weight;
    for (const [k, e] of this.entries) {
      if (this.used <= this.capacityBytes) break;
      this.entries.delete(k);
      this.used -= e.weight;
    }
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
