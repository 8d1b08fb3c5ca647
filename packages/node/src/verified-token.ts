/** A token that passed verification, and the cheap access checks made on it. */

import type { Claims, ExactTimes } from './claims.js';
import { AccessError } from './errors.js';
import { parseScopeSet } from './identifiers.js';
import type { Algorithm } from './key-set.js';

export class VerifiedToken {
  private readonly scopes: ReadonlySet<string>;

  /** @internal */
  constructor(
    readonly claims: Claims,
    /** The `kid` of the key that signed the token. */
    readonly kid: string,
    /** That key's algorithm. */
    readonly alg: Algorithm,
    /** @internal exact times for the checks made on every call. */
    readonly times: ExactTimes,
  ) {
    this.scopes = parseScopeSet(claims.scope) ?? new Set();
  }

  /** Whether the token grants `scope`. */
  hasScope(scope: string): boolean {
    return this.scopes.has(scope);
  }

  /** Requires every scope in `required`; the error lists the ones missing (`insufficient_scope`). */
  requireScopes(...required: string[]): void {
    const missing = required.filter((s) => !this.scopes.has(s));
    if (missing.length > 0) throw new AccessError('insufficient_scope', missing);
  }

  /** Requires the token to belong to `tenant` (`wrong_tenant`). */
  requireTenant(tenant: string): void {
    if (this.claims.tenant !== tenant) throw new AccessError('wrong_tenant');
  }
}
