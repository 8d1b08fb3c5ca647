/**
 * Access-token claims (RFC 9068 profile) read as the Rust `Claims::from_json` reads them: in one
 * strict pass, then each required claim checked in the same order, so that a token with two faults
 * gets the same reason code in every language.
 */

import { Ids, parseScopeSet } from './identifiers.js';
import { JsonError, JsonNumber, isObject, parseStrict, u64Of, type Json, type Shape } from './strict-json.js';

/** The claims of a verified keymint access token. Times are Unix seconds. */
export interface Claims {
  readonly iss: string;
  /** The API key ID the token was minted with. */
  readonly sub: string;
  /** The one audience. */
  readonly aud: string;
  readonly exp: number;
  readonly iat: number;
  readonly nbf: number | undefined;
  readonly jti: string;
  readonly client_id: string;
  /** The granted scopes, as in the token (space separated). */
  readonly scope: string;
  readonly tenant: string;
  /** DPoP binding (RFC 9449 §6.1), when the token is sender-constrained. */
  readonly cnf: { readonly jkt: string } | undefined;
}

/** Exact (u64) times, for comparisons that must not round. */
export interface ExactTimes {
  readonly exp: bigint;
  readonly iat: bigint;
  readonly nbf: bigint | undefined;
}

export type ClaimsFault =
  | { kind: 'malformed'; detail: string }
  | { kind: 'duplicate_member'; member: string }
  | { kind: 'missing_claim'; claim: string }
  | { kind: 'invalid_claim'; claim: string; detail: string };

export class ClaimsError extends Error {
  constructor(readonly fault: ClaimsFault) {
    super(fault.kind);
  }
}

const TEXT: Shape = { kind: 'string' };
const U64: Shape = { kind: 'u64' };

const CLAIMS_SHAPE: Shape = {
  kind: 'object',
  members: {
    iss: TEXT,
    sub: TEXT,
    jti: TEXT,
    client_id: TEXT,
    scope: TEXT,
    tenant: TEXT,
    exp: U64,
    iat: U64,
    nbf: U64,
    // Bounded, as in Rust: an attacker-chosen array costs at most 16 elements.
    aud: { kind: 'stringOrStrings', max: 16 },
    cnf: { kind: 'object', members: { jkt: TEXT } },
  },
};

const missing = (claim: string) => new ClaimsError({ kind: 'missing_claim', claim });
const invalid = (claim: string, detail: string) => new ClaimsError({ kind: 'invalid_claim', claim, detail });

/** Unix seconds as a number; beyond 2^53 it saturates (only the exact bigint is compared). */
export function secondsOf(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Parses and checks a claims set. */
export function parseClaims(bytes: Uint8Array): { claims: Claims; times: ExactTimes } {
  let doc: Json;
  try {
    doc = parseStrict(bytes, CLAIMS_SHAPE);
  } catch (e) {
    if (e instanceof JsonError && e.kind === 'duplicate') {
      throw new ClaimsError({ kind: 'duplicate_member', member: e.member ?? '' });
    }
    throw new ClaimsError({ kind: 'malformed', detail: `payload: ${(e as Error).message}` });
  }
  if (!isObject(doc)) throw new ClaimsError({ kind: 'malformed', detail: 'payload is not a JSON object' });
  const text = (name: string): string | undefined => doc.get(name) as string | undefined;
  const time = (name: string): bigint | undefined => {
    const v = doc.get(name);
    return v instanceof JsonNumber ? u64Of(v) : undefined;
  };
  const id = (name: string, valid: (s: string) => boolean): string => {
    const v = text(name);
    if (v === undefined) throw missing(name);
    if (!valid(v)) throw invalid(name, `not a valid ${name}`);
    return v;
  };

  // The order of Rust's `Claims::from_json`: aud, scope, cnf, then the others.
  const audRaw = doc.get('aud');
  if (audRaw === undefined) throw missing('aud');
  const auds = Array.isArray(audRaw) ? (audRaw as string[]) : [audRaw as string];
  if (auds.length !== 1) throw invalid('aud', `${auds.length} audiences, exactly one is allowed`);
  const aud = auds[0] as string;
  if (!Ids.audience(aud)) throw invalid('aud', 'not a valid audience');
  const scope = text('scope');
  if (scope === undefined) throw missing('scope');
  if (parseScopeSet(scope) === undefined) throw invalid('scope', 'not a valid scope list');
  const cnfRaw = doc.get('cnf');
  let cnf: { jkt: string } | undefined;
  if (cnfRaw !== undefined) {
    const jkt = isObject(cnfRaw) ? cnfRaw.get('jkt') : undefined;
    if (typeof jkt !== 'string' || !Ids.jkt(jkt)) throw invalid('cnf', '`cnf.jkt` must be a base64url SHA-256 thumbprint');
    cnf = { jkt };
  }
  const iss = id('iss', Ids.issuer);
  const sub = id('sub', Ids.apiKeyId);
  const exp = time('exp');
  if (exp === undefined) throw missing('exp');
  const iat = time('iat');
  if (iat === undefined) throw missing('iat');
  const nbf = time('nbf');
  const jti = id('jti', Ids.jti);
  const client_id = id('client_id', Ids.clientId);
  const tenant = id('tenant', Ids.tenant);
  return {
    claims: {
      iss,
      sub,
      aud,
      exp: secondsOf(exp),
      iat: secondsOf(iat),
      nbf: nbf === undefined ? undefined : secondsOf(nbf),
      jti,
      client_id,
      scope,
      tenant,
      cnf,
    },
    times: { exp, iat, nbf },
  };
}
