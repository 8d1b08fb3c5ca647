/**
 * The package's errors: one class per question ("is this token acceptable?", "does it grant this?",
 * "may this list replace the one in force?", "is this configuration usable?"), each with a stable
 * `code` equal to the Rust verifier's `code()` so that logs, metrics and the shared conformance
 * corpus agree across languages.
 *
 * Messages never contain a token, a key or a list; values read from a token (an `alg`, a `typ`, a
 * `kid`) are cut short by {@link cut}.
 */

/** Every reason a token is refused; the Rust verifier's `VerifyError::code()`. */
export type VerifyErrorCode =
  | 'oversize'
  | 'malformed'
  | 'duplicate_member'
  | 'forbidden_header'
  | 'unknown_crit'
  | 'wrong_typ'
  | 'missing_kid'
  | 'unknown_kid'
  | 'unsupported_alg'
  | 'alg_mismatch'
  | 'bad_signature'
  | 'missing_claim'
  | 'invalid_claim'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'expired'
  | 'not_yet_valid'
  | 'iat_in_future'
  | 'dpop_bound'
  | 'invalid_dpop_proof'
  | 'dpop_proof_quota'
  | 'dpop_replay_cache_full'
  | 'revoked'
  | 'no_revocation_list'
  | 'revocation_list_expired'
  | 'sources_unavailable';

/** Codes for which the verifier, not the token, is at fault: HTTP 503 rather than 401. */
const UNAVAILABLE: ReadonlySet<VerifyErrorCode> = new Set<VerifyErrorCode>([
  'no_revocation_list',
  'revocation_list_expired',
  'sources_unavailable',
  'dpop_replay_cache_full',
]);

/** A token was not accepted. */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  /** Seconds to wait, for `dpop_proof_quota`. */
  readonly retryAfterSecs: number | undefined;

  constructor(
    readonly code: VerifyErrorCode,
    detail?: string,
    options?: { retryAfterSecs?: number },
  ) {
    super(detail === undefined ? code : `${code}: ${detail}`);
    this.retryAfterSecs = options?.retryAfterSecs;
  }

  /**
   * True when the verifier cannot vouch for anything right now (no fresh revocation list, stale key
   * set, a full DPoP replay cache): the client's token is not at fault (HTTP 503).
   */
  get unavailable(): boolean {
    return UNAVAILABLE.has(this.code);
  }
}

/** Access policy codes, the Rust verifier's `AccessError::code()`. */
export type AccessErrorCode = 'insufficient_scope' | 'wrong_tenant';

/** A verified token lacks what a route requires (HTTP 403). */
export class AccessError extends Error {
  override readonly name = 'AccessError';
  constructor(
    readonly code: AccessErrorCode,
    /** For `insufficient_scope`: the scopes the token lacks. */
    readonly missingScopes: readonly string[] = [],
  ) {
    super(
      code === 'insufficient_scope' ? `token lacks the scope(s): ${missingScopes.join(' ')}` : 'token belongs to another tenant',
    );
  }
}

/** Why a revocation list was not installed; the list in force stays in force. */
export type UpdateErrorCode =
  | 'list_malformed'
  | 'list_duplicate_member'
  | 'list_forbidden_header'
  | 'list_wrong_typ'
  | 'list_unknown_kid'
  | 'list_alg_mismatch'
  | 'list_bad_signature'
  | 'list_unsupported_version'
  | 'list_wrong_issuer'
  | 'list_bad_validity'
  | 'list_expired'
  | 'list_iat_in_future'
  | 'list_validity_too_long'
  | 'list_rollback'
  | 'list_serial_conflict'
  | 'list_replayed'
  | 'list_signed_by_revoked_key';

/** A revocation list (or key set) offered to the verifier was refused. */
export class UpdateError extends Error {
  override readonly name = 'UpdateError';
  constructor(
    readonly code: UpdateErrorCode,
    detail?: string,
  ) {
    super(detail === undefined ? code : `${code}: ${detail}`);
  }
}

/** A key set was refused (the whole set: a set half understood is a set to play games with). */
export class KeySetError extends Error {
  override readonly name = 'KeySetError';
}

/** The verifier's configuration is not usable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** A value taken from untrusted input, cut short for a message. */
export function cut(s: string, max = 64): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
