/**
 * `@keymint/verifier`: verify keymint access tokens offline in Node, with every promise of the Rust
 * `keymint-verifier` (see docs/verifier-node.md).
 */

export { AccessError, ConfigError, KeySetError, UpdateError, VerifyError } from './errors.js';
export type { AccessErrorCode, UpdateErrorCode, VerifyErrorCode } from './errors.js';
export type { Claims } from './claims.js';
export { KeySet, type Algorithm, type VerificationKey } from './key-set.js';
export { VerifiedToken } from './verified-token.js';
export {
  DEFAULT_LEEWAY_SECS,
  DEFAULT_MAX_TOKEN_BYTES,
  MAX_LEEWAY_SECS,
  Verifier,
  systemClock,
  type Clock,
  type RevocationUpdate,
  type VerifierOptions,
} from './verifier.js';
export { MAX_LIST_VALIDITY_SECS, PROPAGATION_BOUND } from './revocation-list.js';
export { accessTokenHash, normalizeHtu } from './dpop-proof.js';
export { LiveSources, discoverSources, type LiveSourcesOptions, type Source } from './sources/live-sources.js';
