/**
 * Key sets (RFC 7517 JWKS) read as the Rust verifier reads them: strict JSON, public Ed25519
 * (`OKP`) and P-256 (`EC`) keys only, and the whole set refused if any key in it is unusable. Each
 * key pins its algorithm: a token's `alg` can only agree with it, never choose.
 */

import { calculateJwkThumbprint, importJWK, type JWK } from 'jose';

import { decodeBase64Url } from './base64url.js';
import { KeySetError } from './errors.js';
import { Ids } from './identifiers.js';
import { isObject, parseStrict, type Json } from './strict-json.js';

/** The algorithms keymint signs with. */
export type Algorithm = 'EdDSA' | 'ES256';

/** Whether a JWS `alg` header names `alg` (exact and case-sensitive; `Ed25519` is EdDSA). */
export function algMatches(alg: Algorithm, header: string): boolean {
  return alg === 'EdDSA' ? header === 'EdDSA' || header === 'Ed25519' : header === 'ES256';
}

/** The algorithm an `alg` name stands for, if keymint knows it. */
export function algFromName(name: string): Algorithm | undefined {
  if (name === 'EdDSA' || name === 'Ed25519') return 'EdDSA';
  if (name === 'ES256') return 'ES256';
  return undefined;
}

/** One usable public key. */
export interface VerificationKey {
  readonly kid: string;
  readonly alg: Algorithm;
  /** The imported, non-extractable WebCrypto key. */
  readonly key: CryptoKey;
  /** The public members only: `kty`, `crv`, `x` (and `y`). */
  readonly jwk: Readonly<JWK>;
  /** The key material as one string: two entries are the same key iff this is equal. */
  readonly material: string;
}

/** The most keys a set may hold; a rotation needs three (next, active, retired). */
export const MAX_KEYS = 64;

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'] as const;

/**
 * The `y` coordinates (little-endian, sign bit cleared) of Ed25519 points of small order, as in
 * libsodium's `ge25519_has_small_order` and the Rust `weak_points` module: a "valid" signature
 * under such a key proves nothing about who made it. A public list compared in plain code, not
 * cryptography.
 */
const SMALL_ORDER_Y: readonly string[] = (() => {
  const pMinus1 = Buffer.alloc(32, 0xff);
  pMinus1[0] = 0xec;
  pMinus1[31] = 0x7f;
  const p = Buffer.from(pMinus1);
  p[0] = 0xed;
  const pPlus1 = Buffer.from(pMinus1);
  pPlus1[0] = 0xee;
  const one = Buffer.alloc(32);
  one[0] = 1;
  return [
    Buffer.alloc(32),
    one,
    Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex'),
    Buffer.from('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'hex'),
    pMinus1,
    p,
    pPlus1,
  ].map((b) => b.toString('hex'));
})();

function smallOrder(x: Uint8Array): boolean {
  const y = Buffer.from(x);
  y[31] = (y[31] ?? 0) & 0x7f;
  return SMALL_ORDER_Y.includes(y.toString('hex'));
}

/** An immutable set of keys with distinct `kid`s. */
export class KeySet {
  private readonly byKid: ReadonlyMap<string, VerificationKey>;

  private constructor(readonly keys: readonly VerificationKey[]) {
    this.byKid = new Map(keys.map((k) => [k.kid, k]));
  }

  static readonly empty = new KeySet([]);

  /** Parses `{"keys": [...]}` (bytes or text), refusing the whole set if any key is unusable. */
  static async parse(json: Uint8Array | string): Promise<KeySet> {
    const bytes = typeof json === 'string' ? new TextEncoder().encode(json) : json;
    let doc: Json;
    try {
      doc = parseStrict(bytes);
    } catch (e) {
      throw new KeySetError(`JWKS is not valid: ${(e as Error).message}`);
    }
    const raw = isObject(doc) ? doc.get('keys') : undefined;
    if (!Array.isArray(raw)) throw new KeySetError('JWKS is not valid: no `keys` array');
    if (raw.length > MAX_KEYS) throw new KeySetError(`JWKS has ${raw.length} keys, the maximum is ${MAX_KEYS}`);
    const keys: VerificationKey[] = [];
    for (const [index, k] of raw.entries()) {
      try {
        keys.push(await readKey(k));
      } catch (e) {
        throw new KeySetError(`JWKS key #${index}: ${(e as Error).message}`);
      }
    }
    const seen = new Set<string>();
    for (const k of keys) {
      if (seen.has(k.kid)) throw new KeySetError(`JWKS has two keys with kid ${k.kid.slice(0, 64)}`);
      seen.add(k.kid);
    }
    return new KeySet(keys);
  }

  /** The key with this `kid`. */
  get(kid: string): VerificationKey | undefined {
    return this.byKid.get(kid);
  }

  /** Whether `kid` still names exactly this key material. */
  stillHas(kid: string, material: string): boolean {
    return this.byKid.get(kid)?.material === material;
  }
}

/** A string member, `undefined` when absent or null (serde's `Option<String>`). */
function str(obj: Map<string, Json>, name: string): string | undefined {
  const v = obj.get(name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`JWK member \`${name}\` is not a string`);
  return v;
}

function coordinate(obj: Map<string, Json>, name: string): Uint8Array {
  const v = str(obj, name);
  if (v === undefined) throw new Error(`JWK member \`${name}\` is missing`);
  const bytes = decodeBase64Url(v);
  if (bytes === undefined) throw new Error(`JWK member \`${name}\` is not valid base64url`);
  if (bytes.length !== 32) throw new Error(`JWK member \`${name}\` is ${bytes.length} bytes, 32 expected`);
  return bytes;
}

/** Reads one public JWK as Rust's `RawJwk::into_jwk` does, in the same order of checks. */
export async function readKey(k: Json | undefined): Promise<VerificationKey> {
  if (k === undefined || !isObject(k)) throw new Error('JWK is not an object');
  for (const name of ['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use']) str(k, name);
  for (const name of PRIVATE_MEMBERS) {
    const v = k.get(name);
    if (v !== undefined && v !== null) {
      throw new Error(`JWK contains the private member \`${name}\`; a public key set must never carry private keys`);
    }
  }
  const use = str(k, 'use');
  if (use !== undefined && use !== 'sig') throw new Error('JWK `use` is not "sig"');
  const kty = str(k, 'kty');
  if (kty === undefined) throw new Error('JWK member `kty` is missing');
  const crv = str(k, 'crv');
  let jwk: JWK;
  let alg: Algorithm;
  if (kty === 'OKP') {
    if (crv === undefined) throw new Error('JWK member `crv` is missing');
    if (crv !== 'Ed25519') throw new Error('unsupported JWK curve');
    const x = coordinate(k, 'x');
    if (smallOrder(x)) throw new Error('JWK Ed25519 point has small order: it would verify forged signatures');
    jwk = { kty, crv, x: str(k, 'x') as string };
    alg = 'EdDSA';
  } else if (kty === 'EC') {
    if (crv === undefined) throw new Error('JWK member `crv` is missing');
    if (crv !== 'P-256') throw new Error('unsupported JWK curve');
    coordinate(k, 'x');
    coordinate(k, 'y');
    jwk = { kty, crv, x: str(k, 'x') as string, y: str(k, 'y') as string };
    alg = 'ES256';
  } else {
    throw new Error('unsupported JWK key type');
  }
  const declared = str(k, 'alg');
  if (declared !== undefined && algFromName(declared) !== alg) throw new Error('JWK `alg` does not fit its key type');
  const kidMember = str(k, 'kid');
  if (kidMember !== undefined && !Ids.kid(kidMember)) throw new Error('JWK kid is not a valid key ID');
  let key: CryptoKey;
  try {
    // WebCrypto checks that a P-256 point is on the curve.
    key = (await importJWK(jwk, alg === 'EdDSA' ? 'Ed25519' : 'ES256', { extractable: false })) as CryptoKey;
  } catch {
    throw new Error(kty === 'EC' ? 'JWK point is not on the curve' : 'JWK key cannot be imported');
  }
  const kid = kidMember ?? (await calculateJwkThumbprint(jwk, 'sha256'));
  return { kid, alg, key, jwk, material: `${alg}:${jwk.x}:${jwk.y ?? ''}` };
}

