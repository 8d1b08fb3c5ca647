/**
 * The signed revocation list (docs/revocation-list.md): reading and checking one list against a
 * key set and an issuer (envelope, `typ`, key, signature, payload, version, issuer, `exp > iat`),
 * and the O(1) index that answers "is this token revoked?".
 *
 * Freshness, serial order and the serial floor depend on the list in force and the clock: they are
 * in `list-rules.ts`.
 */

import { decodeHeader, decodePayload, decodeSignature64, EnvelopeError, splitCompact, TYP_REVOCATION_LIST } from './compact-jws.js';
import { cut, UpdateError } from './errors.js';
import { Ids, typMatches } from './identifiers.js';
import { algMatches, type KeySet } from './key-set.js';
import { signatureValid } from './signature.js';
import { isObject, JsonError, JsonNumber, parseStrict, u64Of, type Json } from './strict-json.js';

/** How long an issuer replica may mint after a revocation before it learns of it (format v1). */
export const PROPAGATION_BOUND = 5n;
/** The longest validity (`exp - iat`) a list may have: 7 days (format v1). */
export const MAX_LIST_VALIDITY_SECS = 7 * 24 * 3600;
/** Default largest signed list accepted, in bytes. */
export const DEFAULT_MAX_LIST_BYTES = 64 * 1024 * 1024;

export type RevocationKind = 'key' | 'jti' | 'tenant' | 'kid';

export interface RevocationEntry {
  readonly kind: RevocationKind;
  readonly id: string;
  readonly revokedAt: bigint;
  readonly dropAfter: bigint;
}

export interface RevocationList {
  readonly v: number;
  readonly iss: string;
  readonly serial: bigint;
  readonly iat: bigint;
  readonly exp: bigint;
  readonly entries: readonly RevocationEntry[];
}

/** A list whose signature checked out, with the exact text it came in (equal serials must be equal bytes). */
export interface SignedList {
  readonly jws: string;
  readonly list: RevocationList;
  /** The `kid` of the key that signed it. */
  readonly kid: string;
}

const ID_RULES: Record<RevocationKind, (s: string) => boolean> = {
  key: Ids.apiKeyId,
  jti: Ids.jti,
  tenant: Ids.tenant,
  kid: Ids.kid,
};

function envelopeFault(e: unknown): UpdateError {
  if (!(e instanceof EnvelopeError)) throw e;
  const f = e.fault;
  switch (f.kind) {
    case 'duplicate_member':
      return new UpdateError('list_duplicate_member', `repeats the member ${JSON.stringify(f.member)}`);
    case 'forbidden_header':
      return new UpdateError('list_forbidden_header', `header member \`${f.member}\` is not accepted`);
    case 'unknown_crit':
      return new UpdateError('list_forbidden_header', 'header has a `crit` extension');
    case 'signature_length':
      // As for tokens: a signature of the wrong length is a signature that does not verify.
      return new UpdateError('list_bad_signature', 'signature has the wrong length');
    case 'oversize':
      return new UpdateError('list_malformed', `list is ${f.len} bytes, the limit is ${f.max}`);
    case 'malformed':
      return new UpdateError('list_malformed', f.detail);
  }
}

/** Checks a signed list's envelope, signature and payload (not its freshness or order). */
export async function verifySignedList(jws: string, keys: KeySet, issuer: string, maxBytes: number): Promise<SignedList> {
  let kid: string;
  let key;
  let headerAlg: string;
  let payloadBytes: Uint8Array;
  try {
    const c = splitCompact(jws, maxBytes);
    const header = decodeHeader(c);
    if (header.typ === undefined || !typMatches(header.typ, TYP_REVOCATION_LIST)) {
      throw new UpdateError('list_wrong_typ', 'typ is not keymint-revocations+jwt');
    }
    if (header.kid === undefined) throw new UpdateError('list_malformed', 'header has no `kid`');
    kid = header.kid;
    key = keys.get(kid);
    if (key === undefined) throw new UpdateError('list_unknown_kid', `signed by unknown key ${cut(kid)}`);
    if (!algMatches(key.alg, header.alg)) throw new UpdateError('list_alg_mismatch', '`alg` does not match its key');
    headerAlg = header.alg;
    decodeSignature64(c);
    if (!(await signatureValid(jws, key.key, key.alg, headerAlg))) {
      throw new UpdateError('list_bad_signature', 'signature does not verify');
    }
    payloadBytes = decodePayload(c);
  } catch (e) {
    if (e instanceof UpdateError) throw e;
    throw envelopeFault(e);
  }
  const list = parseListPayload(payloadBytes);
  if (list.v !== 1) throw new UpdateError('list_unsupported_version', `version ${list.v} is not supported`);
  if (list.iss !== issuer) throw new UpdateError('list_wrong_issuer', 'issuer is not the expected issuer');
  if (list.exp <= list.iat) throw new UpdateError('list_bad_validity', `expires (${list.exp}) before it was issued (${list.iat})`);
  return { jws, list, kid: key.kid };
}

/**
 * Reads a list payload. As in Rust (serde, two passes): duplicates anywhere first, then the shape;
 * unknown members are ignored, an unknown entry `kind` refuses the whole list (an old verifier must
 * not silently skip a revocation it cannot enforce).
 */
export function parseListPayload(bytes: Uint8Array): RevocationList {
  let doc: Json;
  try {
    doc = parseStrict(bytes);
  } catch (e) {
    if (e instanceof JsonError && e.kind === 'duplicate') {
      throw new UpdateError('list_duplicate_member', `payload repeats the member ${JSON.stringify(e.member ?? '')}`);
    }
    throw new UpdateError('list_malformed', `payload: ${(e as Error).message}`);
  }
  const bad = (what: string) => new UpdateError('list_malformed', `payload: ${what}`);
  if (!isObject(doc)) throw bad('not an object');
  const u64 = (o: Map<string, Json>, name: string): bigint => {
    const v = o.get(name);
    const n = v instanceof JsonNumber ? u64Of(v) : undefined;
    if (n === undefined) throw bad(`\`${name}\` is missing or not an unsigned integer`);
    return n;
  };
  const text = (o: Map<string, Json>, name: string): string => {
    const v = o.get(name);
    if (typeof v !== 'string') throw bad(`\`${name}\` is missing or not a string`);
    return v;
  };
  const v = u64(doc, 'v');
  if (v > 0xffffffffn) throw bad('`v` is out of range');
  const iss = text(doc, 'iss');
  if (!Ids.issuer(iss)) throw bad('`iss` is not a valid issuer');
  const serial = u64(doc, 'serial');
  const iat = u64(doc, 'iat');
  const exp = u64(doc, 'exp');
  const raw = doc.get('entries');
  if (!Array.isArray(raw)) throw bad('`entries` is missing or not an array');
  const entries = raw.map((e): RevocationEntry => {
    if (!isObject(e)) throw bad('an entry is not an object');
    const kind = text(e, 'kind');
    const id = text(e, 'id');
    const revokedAt = u64(e, 'revoked_at');
    const dropAfter = u64(e, 'drop_after');
    // Own keys only: `in` would also take `toString`, `constructor` and the rest of the prototype.
    if (!Object.hasOwn(ID_RULES, kind)) throw bad('unknown revocation kind');
    const k = kind as RevocationKind;
    if (!ID_RULES[k](id)) throw bad(`an entry has an invalid ${k} id`);
    return { kind: k, id, revokedAt, dropAfter };
  });
  return { v: Number(v), iss, serial, iat, exp, entries };
}

/** The token facts a revocation lookup needs. */
export interface RevocationSubject {
  readonly sub: string;
  readonly jti: string;
  readonly tenant: string;
  readonly iat: bigint;
  /** The header `kid` of the token. */
  readonly kid: string;
}

/** Hash indexes over a list's entries, one per kind: four lookups whatever the list's size. */
export class RevocationIndex {
  private readonly keys = new Set<string>();
  private readonly jtis = new Set<string>();
  /** Tenant → tokens issued strictly before this instant are revoked. */
  private readonly tenants = new Map<string, bigint>();
  private readonly kids = new Set<string>();

  constructor(list: RevocationList) {
    for (const e of list.entries) {
      switch (e.kind) {
        case 'key':
          this.keys.add(e.id);
          break;
        case 'jti':
          this.jtis.add(e.id);
          break;
        case 'tenant': {
          const cutoff = e.revokedAt + PROPAGATION_BOUND;
          const prev = this.tenants.get(e.id);
          // A tenant listed twice: the later cutoff covers more.
          this.tenants.set(e.id, prev === undefined || cutoff > prev ? cutoff : prev);
          break;
        }
        case 'kid':
          this.kids.add(e.id);
          break;
      }
    }
  }

  /** The entry kind that revokes this token, if any; checked in Rust's order. */
  check(t: RevocationSubject): RevocationKind | undefined {
    if (this.keys.has(t.sub)) return 'key';
    if (this.jtis.has(t.jti)) return 'jti';
    const cutoff = this.tenants.get(t.tenant);
    if (cutoff !== undefined && t.iat < cutoff) return 'tenant';
    if (this.kids.has(t.kid)) return 'kid';
    return undefined;
  }

  kidRevoked(kid: string): boolean {
    return this.kids.has(kid);
  }
}

/**
 * The `serial` a list claims, read without checking anything, for rationing key-set refetches
 * only (never trusted).
 */
export function unverifiedSerial(jws: string, maxBytes: number): bigint | undefined {
  try {
    const c = splitCompact(jws, maxBytes);
    const doc = parseStrict(decodePayload(c));
    const s = isObject(doc) ? doc.get('serial') : undefined;
    return s instanceof JsonNumber ? u64Of(s) : undefined;
  } catch {
    return undefined;
  }
}
