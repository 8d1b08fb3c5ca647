/**
 * A test double of the issuer's signing side: keys, tokens, revocation lists and DPoP proofs, with
 * any header or payload bytes (so tests can forge duplicates, stray members and bad shapes).
 * Signing uses node:crypto; the package under test only ever verifies, through jose.
 */

import { generateKeyPairSync, randomUUID, sign, createHash, type KeyObject } from 'node:crypto';

export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'https://api.test';
export const NOW = 1_800_000_000;

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64url');

export class TestKey {
  readonly privateKey: KeyObject;
  readonly publicJwk: Record<string, string>;
  readonly kid: string;

  constructor(readonly alg: 'EdDSA' | 'ES256' = 'EdDSA', kid?: string) {
    const pair = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = pair.privateKey;
    const jwk = pair.publicKey.export({ format: 'jwk' }) as Record<string, string>;
    this.publicJwk = alg === 'EdDSA' ? { kty: 'OKP', crv: 'Ed25519', x: jwk.x as string } : { kty: 'EC', crv: 'P-256', x: jwk.x as string, y: jwk.y as string };
    this.kid = kid ?? thumbprint(this.publicJwk);
  }

  jwk(): Record<string, string> {
    return { ...this.publicJwk, kid: this.kid, alg: this.alg, use: 'sig' };
  }

  /** Signs raw header and payload text. */
  signRaw(header: string, payload: string): string {
    const input = `${b64(header)}.${b64(payload)}`;
    const sig = this.alg === 'EdDSA' ? sign(null, Buffer.from(input), this.privateKey) : sign('sha256', Buffer.from(input), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64(sig)}`;
  }

  sign(header: object, payload: object): string {
    return this.signRaw(JSON.stringify(header), JSON.stringify(payload));
  }

  token(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
    return this.sign({ typ: 'at+jwt', alg: this.alg, kid: this.kid, ...header }, { ...baseClaims(), ...claims });
  }

  list(payload: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
    return this.sign({ typ: 'keymint-revocations+jwt', alg: this.alg, kid: this.kid, ...header }, listPayload(payload));
  }
}

export function thumbprint(jwk: Record<string, string>): string {
  const canonical = jwk.kty === 'OKP' ? `{"crv":"${jwk.crv}","kty":"OKP","x":"${jwk.x}"}` : `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

export function jwks(...keys: TestKey[]): string {
  return JSON.stringify({ keys: keys.map((k) => k.jwk()) });
}

export function baseClaims(): Record<string, unknown> {
  return {
    iss: ISSUER,
    sub: 'k7Gx2',
    aud: AUDIENCE,
    exp: NOW + 600,
    iat: NOW,
    nbf: NOW,
    jti: `t-${randomUUID()}`,
    client_id: 'k7Gx2',
    scope: 'orders:read orders:write',
    tenant: 'acme',
  };
}

export function listPayload(p: Record<string, unknown> = {}): Record<string, unknown> {
  return { v: 1, iss: ISSUER, serial: 1, iat: NOW, exp: NOW + 86_400, entries: [], ...p };
}

export function entry(kind: string, id: string, revokedAt = NOW): Record<string, unknown> {
  return { kind, id, revoked_at: revokedAt, drop_after: revokedAt + 3600 };
}

/** A DPoP proof made with `key` (its public JWK embedded). */
export function proof(key: TestKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  return key.sign({ typ: 'dpop+jwt', alg: key.alg, jwk: key.publicJwk, ...header }, { jti: randomUUID(), htm: 'GET', htu: `${AUDIENCE}/orders`, iat: NOW, ...claims });
}

export function ath(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
