/**
 * The compact JWS envelope (RFC 7515 §7.1) and its protected header, read the way the Rust
 * verifier reads them: size first, then the alphabet and the segment count, then the header as
 * strict JSON. Header members that would point a verifier at a key (`jku`, `jwk`, `x5u`, `x5c`)
 * are refused, never followed, and so is any `crit`: keymint understands no critical extension.
 */

import { decodeBase64Url } from './base64url.js';
import { JsonError, parseStrict, type Shape } from './strict-json.js';

export const TYP_ACCESS_TOKEN = 'at+jwt';
export const TYP_REVOCATION_LIST = 'keymint-revocations+jwt';

/** Why an envelope was refused. */
export type EnvelopeFault =
  | { kind: 'oversize'; len: number; max: number }
  | { kind: 'malformed'; detail: string }
  | { kind: 'duplicate_member'; member: string }
  | { kind: 'forbidden_header'; member: string }
  | { kind: 'unknown_crit' }
  | { kind: 'signature_length' };

export class EnvelopeError extends Error {
  constructor(readonly fault: EnvelopeFault) {
    super(fault.kind);
  }
}

/** The three segments of a compact JWS, undecoded. */
export interface Compact {
  readonly header: string;
  readonly payload: string;
  readonly signature: string;
}

/** The protected header members keymint reads. */
export interface Header {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly typ: string | undefined;
}

const FORBIDDEN = new Set(['jku', 'jwk', 'x5u', 'x5c']);

const HEADER_SHAPE: Shape = {
  kind: 'object',
  members: { alg: { kind: 'string' }, kid: { kind: 'string' }, typ: { kind: 'string' } },
};

/** Splits a compact JWS. The length is checked before anything else is looked at. */
export function splitCompact(jws: string, maxBytes: number): Compact {
  // The limit is in UTF-8 bytes, as in Rust. A string is never fewer UTF-8 bytes than UTF-16
  // units, so a string already too long in units is not measured again.
  const len = jws.length > maxBytes ? jws.length : Buffer.byteLength(jws, 'utf8');
  if (len > maxBytes) throw new EnvelopeError({ kind: 'oversize', len, max: maxBytes });
  if (!/^[A-Za-z0-9_.-]*$/.test(jws)) {
    throw new EnvelopeError({ kind: 'malformed', detail: 'JWS is not unpadded base64url' });
  }
  const parts = jws.split('.');
  if (parts.length !== 3) {
    throw new EnvelopeError({ kind: 'malformed', detail: `JWS has ${parts.length} segments, 3 expected` });
  }
  const [header = '', payload = '', signature = ''] = parts;
  return { header, payload, signature };
}

/** Decodes and checks the protected header. */
export function decodeHeader(c: Compact): Header {
  const bytes = decodeBase64Url(c.header);
  if (bytes === undefined) throw new EnvelopeError({ kind: 'malformed', detail: 'JWS header is not unpadded base64url' });
  let obj;
  try {
    obj = parseStrict(bytes, HEADER_SHAPE);
  } catch (e) {
    throw jsonFault(e, 'header');
  }
  if (!(obj instanceof Map)) throw new EnvelopeError({ kind: 'malformed', detail: 'JWS header is not an object' });
  // The first forbidden member in document order, as Rust reports it.
  for (const name of obj.keys()) {
    if (FORBIDDEN.has(name)) throw new EnvelopeError({ kind: 'forbidden_header', member: name });
  }
  if (obj.has('crit')) throw new EnvelopeError({ kind: 'unknown_crit' });
  const alg = obj.get('alg');
  if (typeof alg !== 'string') throw new EnvelopeError({ kind: 'malformed', detail: 'JWS header has no `alg`' });
  const kid = obj.get('kid');
  const typ = obj.get('typ');
  return { alg, kid: typeof kid === 'string' ? kid : undefined, typ: typeof typ === 'string' ? typ : undefined };
}

/** The signature segment: exactly 64 bytes (Ed25519, and ES256's fixed `r || s`). */
export function decodeSignature64(c: Compact): Uint8Array {
  if (c.signature.length !== 86) throw new EnvelopeError({ kind: 'signature_length' });
  const bytes = decodeBase64Url(c.signature);
  if (bytes === undefined) throw new EnvelopeError({ kind: 'malformed', detail: 'JWS signature is not unpadded base64url' });
  return bytes;
}

export function decodePayload(c: Compact): Uint8Array {
  const bytes = decodeBase64Url(c.payload);
  if (bytes === undefined) throw new EnvelopeError({ kind: 'malformed', detail: 'JWS payload is not unpadded base64url' });
  return bytes;
}

export function jsonFault(e: unknown, where: string): EnvelopeError {
  if (e instanceof JsonError && e.kind === 'duplicate') {
    return new EnvelopeError({ kind: 'duplicate_member', member: e.member ?? '' });
  }
  const detail = e instanceof Error ? e.message : 'invalid JSON';
  return new EnvelopeError({ kind: 'malformed', detail: `${where}: ${detail}` });
}
