/**
 * Signature checks, all through jose: the key (and so the algorithm) comes from our key set, the
 * token only has to agree with it. jose re-reads the header itself; our own strict reading has
 * already refused everything jose would be lenient about (duplicates, `crit`, stray base64).
 */

import { compactVerify, errors } from 'jose';

import type { Algorithm } from './key-set.js';

/**
 * Whether the compact JWS `jws` carries a valid signature by `key`. `headerAlg` is the token's own
 * `alg`, already checked to name `alg`.
 */
export async function signatureValid(jws: string, key: CryptoKey, alg: Algorithm, headerAlg: string): Promise<boolean> {
  // `Ed25519` is the fully specified name of EdDSA over Ed25519 (RFC 9864); both are allowed only
  // when the key is an Ed25519 key.
  const algorithms = alg === 'EdDSA' ? ['EdDSA', 'Ed25519'] : ['ES256'];
  if (!algorithms.includes(headerAlg)) return false;
  try {
    await compactVerify(jws, key, { algorithms });
    return true;
  } catch (e) {
    if (e instanceof errors.JWSSignatureVerificationFailed) return false;
    // Anything else jose refuses after our checks passed is a malformed signature in effect
    // (e.g. a payload segment it cannot decode): refused either way, never accepted.
    return false;
  }
}
