/**
 * DPoP proofs (RFC 9449 §4.3): reading a proof, checking its signature against the key in its own
 * header (the algorithm pinned by that key), and comparing it with the request: method, URL, time
 * window, access-token hash and the token's key binding. The replay cache is `replay-cache.ts`;
 * it is consulted last, by the verifier, once everything else has passed.
 */

import { createHash } from 'node:crypto';

import { calculateJwkThumbprint } from 'jose';

import { decodePayload, decodeSignature64, splitCompact } from './compact-jws.js';
import { decodeBase64Url, encodeBase64Url } from './base64url.js';
import { VerifyError } from './errors.js';
import { algMatches, readKey } from './key-set.js';
import { signatureValid } from './signature.js';
import { isObject, JsonNumber, parseStrict, u64Of, type Json } from './strict-json.js';


/** Largest proof accepted, in bytes. */
export const MAX_PROOF_BYTES = 4096;
/** How far in the past a proof's `iat` may be. */
export const PROOF_WINDOW_SECS = 60;
/**
 * How far ahead of our clock a proof's `iat` may be: a few seconds of client skew, no more (a proof
 * dated far ahead would have to be remembered that much longer).
 */
export const MAX_PROOF_FUTURE_SECS = 5;

/** A proof whose signature checked out against its own embedded key. */
export interface DpopProof {
  /** RFC 7638 thumbprint of the proof's key: what `cnf.jkt` binds a token to. */
  readonly jkt: string;
  readonly jti: string;
  readonly htm: string;
  readonly htu: string;
  readonly iat: bigint;
  readonly ath: string | undefined;
  readonly nonce: string | undefined;
}

const invalid = (detail: string) => new VerifyError('invalid_dpop_proof', detail);

function optionalText(o: Map<string, Json>, name: string): string | undefined {
  const v = o.get(name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`DPoP proof \`${name}\` is not a string`);
  return v;
}

/** Reads a proof and checks its signature. Nothing about the request is checked here. */
export async function parseProof(proof: string): Promise<DpopProof> {
  let c;
  let header: Json;
  try {
    c = splitCompact(proof, MAX_PROOF_BYTES);
    const bytes = decodeBase64Url(c.header);
    if (bytes === undefined) throw new Error('bad base64url');
    header = parseStrict(bytes);
  } catch {
    throw invalid('DPoP proof is not a compact JWS of strict JSON');
  }
  if (!isObject(header)) throw invalid('DPoP proof header is not an object');
  if (optionalText(header, 'typ') !== 'dpop+jwt') throw invalid('DPoP proof `typ` must be dpop+jwt');
  if (header.has('crit')) throw invalid('DPoP proof has a `crit` extension');
  const jwk = header.get('jwk');
  if (jwk === undefined || jwk === null) throw invalid('DPoP proof has no `jwk`');
  let key;
  try {
    key = await readKey(jwk);
  } catch (e) {
    throw invalid(`DPoP proof \`jwk\`: ${(e as Error).message}`);
  }
  const alg = optionalText(header, 'alg');
  if (alg === undefined || !algMatches(key.alg, alg)) throw invalid('DPoP proof `alg` is not EdDSA/ES256 matching its jwk');
  let payload: Json;
  try {
    decodeSignature64(c);
  } catch {
    throw invalid('DPoP proof signature does not verify');
  }
  if (!(await signatureValid(proof, key.key, key.alg, alg))) throw invalid('DPoP proof signature does not verify');
  try {
    payload = parseStrict(decodePayload(c));
  } catch {
    throw invalid('DPoP proof claims are not strict JSON');
  }
  if (!isObject(payload)) throw invalid('DPoP proof claims are not an object');
  const short = (name: string, max: number): string => {
    const v = optionalText(payload as Map<string, Json>, name);
    if (v === undefined || v.length === 0 || Buffer.byteLength(v) > max) throw invalid(`DPoP proof claim \`${name}\` is missing or invalid`);
    return v;
  };
  const jti = short('jti', 256);
  const htm = short('htm', 16);
  const htu = short('htu', 2048);
  const iatRaw = payload.get('iat');
  const iat = iatRaw instanceof JsonNumber ? u64Of(iatRaw) : undefined;
  if (iat === undefined) throw invalid('DPoP proof claim `iat` is missing or invalid');
  return {
    // The thumbprint of the key as presented, whatever `kid` it may carry.
    jkt: await calculateJwkThumbprint(key.jwk, 'sha256'),
    jti,
    htm,
    htu,
    iat,
    ath: optionalText(payload, 'ath'),
    nonce: optionalText(payload, 'nonce'),
  };
}

/** base64url(SHA-256(access token)): the `ath` a proof for a resource request carries. */
export function accessTokenHash(token: string): string {
  return encodeBase64Url(createHash('sha256').update(token, 'utf8').digest());
}

/** A URL for `htu` comparison (RFC 9449 §4.3): scheme and host lowercase, no query, no fragment. */
export function normalizeHtu(url: string): string {
  const bare = url.split(/[?#]/, 1)[0] ?? '';
  const sep = bare.indexOf('://');
  if (sep < 0) return bare;
  const scheme = bare.slice(0, sep);
  const rest = bare.slice(sep + 3);
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const lower = (s: string) => s.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
  return `${lower(scheme)}://${lower(authority)}${path === '' ? '/' : path}`;
}

/** What a proof must match. */
export interface ProofRequirements {
  readonly method: string;
  readonly url: string;
  readonly accessToken: string;
  readonly boundJkt: string;
}

/** Checks a proof against the request, in the Rust verifier's order. Records nothing. */
export async function checkProof(proof: string, req: ProofRequirements, now: bigint, windowSecs = PROOF_WINDOW_SECS): Promise<DpopProof> {
  const p = await parseProof(proof);
  if (p.htm !== req.method) throw invalid('DPoP proof htm does not match the request method');
  if (normalizeHtu(p.htu) !== normalizeHtu(req.url)) throw invalid('DPoP proof htu does not match the request URL');
  if (p.iat > now + BigInt(MAX_PROOF_FUTURE_SECS)) throw invalid('DPoP proof iat is too far in the future');
  if (now > p.iat && now - p.iat > BigInt(windowSecs)) throw invalid('DPoP proof iat is outside the accepted window');
  if (p.ath !== accessTokenHash(req.accessToken)) throw invalid('DPoP proof ath does not match the access token');
  if (p.jkt !== req.boundJkt) throw invalid('DPoP proof key is not the key the token is bound to');
  return p;
}
