/**
 * The verifier: checks keymint access tokens offline, with the same checks, in the same order and
 * with the same reason codes as the Rust `keymint-verifier`:
 *
 * ```text
 *  token ─► size ─► 3 segments, base64url ─► header (no jku/jwk/x5u/x5c/crit, typ, kid, alg pinned
 *           by the key) ─► signature (jose) ─► claims (strict JSON, iss, aud) ─► exp / nbf / iat
 *           ─► revocation (key, jti, tenant, kid) ─► DPoP proof when bound ─► VerifiedToken
 * ```
 *
 * `verify` does no I/O. Sources (key set and list by URL or file, the push channel) live in
 * `sources/` and feed it through {@link Verifier.setKeys} and {@link Verifier.updateRevocations}.
 */

import { parseClaims, ClaimsError } from './claims.js';
import { decodeHeader, decodePayload, decodeSignature64, EnvelopeError, splitCompact, TYP_ACCESS_TOKEN } from './compact-jws.js';
import { ConfigError, cut, VerifyError } from './errors.js';
import { Ids, typMatches } from './identifiers.js';
import { algFromName, algMatches, KeySet } from './key-set.js';
import { admit, type ListInForce } from './list-rules.js';
import { checkProof, PROOF_WINDOW_SECS } from './dpop-proof.js';
import { limitsFor, ReplayCache, replayUntil, DEFAULT_REPLAY_CAPACITY } from './replay-cache.js';
import { DEFAULT_MAX_LIST_BYTES, MAX_LIST_VALIDITY_SECS, RevocationIndex, verifySignedList, type RevocationKind } from './revocation-list.js';
import { DEFAULT_CACHE_BYTES, TokenCache, tokenDigest } from './token-cache.js';
import { signatureValid } from './signature.js';
import { VerifiedToken } from './verified-token.js';

export const DEFAULT_LEEWAY_SECS = 60;
export const MAX_LEEWAY_SECS = 300;
export const DEFAULT_MAX_TOKEN_BYTES = 8192;

/** A clock: Unix time in seconds (fractions are dropped). */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now() / 1000;

/**
 * Configuration of a {@link Verifier}. `issuer` and `audiences` are required: a verifier that
 * accepted any issuer or any audience would accept tokens meant for someone else.
 *
 * Defaults: leeway 60 s (at most 300), list validity cap 7 days (may only be lowered), token at most
 * 8192 bytes, list at most 64 MiB, verified-token cache 16 MiB, DPoP replay cache 100,000 proofs,
 * the system clock. Revocation is always checked: until a list is installed every token is refused
 * (`no_revocation_list`), and once the newest list expires, too (`revocation_list_expired`).
 *
 * One API key (the token's `sub`) may hold at most 10 % (`DEFAULT_CACHE_SHARE_PERCENT`) of the
 * verified-token cache's budget in cached tokens not yet expired; past that its further tokens are
 * verified as usual but not cached, so no key's tokens can flush another's. Raise `cacheBytes` when one key
 * legitimately has more live tokens than that (many instances sharing one key, each with its own
 * token).
 */
export interface VerifierOptions {
  readonly issuer: string;
  readonly audiences: string | readonly string[];
  /** The initial key set (live sources may bring it instead). */
  readonly keys?: KeySet;
  readonly leewaySecs?: number;
  /** Longest validity (`exp - iat`) of a list accepted, in seconds: (0, 604800]. */
  readonly listValidityCapSecs?: number;
  readonly maxTokenBytes?: number;
  readonly maxListBytes?: number;
  /**
   * Verified-token cache budget in bytes; 0 turns the cache off. One API key may hold at most 10 %
   * of it in live tokens (its further tokens are verified but not cached).
   */
  readonly cacheBytes?: number;
  /** Live DPoP proof IDs remembered (1 % of it per API key, half of that per DPoP key). */
  readonly dpopReplayCapacity?: number;
  /**
   * The external base URL of this API (e.g. `https://api.example`) that DPoP proofs' `htu` must
   * name (plus the request path). Required by the Express middleware for DPoP requests: the `Host`
   * header is the client's to choose.
   */
  readonly dpopBaseUrl?: string;
  readonly now?: Clock;
}

/** What {@link Verifier.updateRevocations} did. */
export interface RevocationUpdate {
  readonly status: 'installed' | 'unchanged';
  readonly serial: bigint;
}

interface ListState extends ListInForce {
  /** Which installation this is (never 0): cached tokens remember the last one they passed. */
  readonly generation: number;
}

/** How live sources tell the verifier how fresh its key set is. @internal */
export interface SourceHealth {
  /** Unix seconds of the last successful key-set refresh; undefined = never. */
  keysOkAt: number | undefined;
  readonly maxStaleSecs: number;
}

export class Verifier {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly leewaySecs: number;
  readonly listValidityCapSecs: number;
  readonly maxTokenBytes: number;
  readonly maxListBytes: number;
  readonly dpopBaseUrl: string | undefined;
  private readonly clock: Clock;
  private keySet: KeySet;
  private listState: ListState | undefined;
  private readonly cache: TokenCache;
  private readonly replay: ReplayCache;
  /** Serializes list installs, so that the serial comparison and the swap are one step. */
  private updating: Promise<unknown> = Promise.resolve();
  /** @internal set by live sources. */
  health: SourceHealth | undefined;
  /** @internal called (never awaited) when a token names a `kid` we do not have. */
  onUnknownKid: (() => void) | undefined;

  constructor(opts: VerifierOptions) {
    if (!Ids.issuer(opts.issuer)) throw new ConfigError('issuer is not a valid issuer');
    const audiences = typeof opts.audiences === 'string' ? [opts.audiences] : [...opts.audiences];
    if (audiences.length === 0 || !audiences.every(Ids.audience)) throw new ConfigError('at least one valid audience is required');
    const leeway = opts.leewaySecs ?? DEFAULT_LEEWAY_SECS;
    if (!Number.isInteger(leeway) || leeway < 0 || leeway > MAX_LEEWAY_SECS) {
      throw new ConfigError(`leeway must be a whole number of seconds in [0, ${MAX_LEEWAY_SECS}]`);
    }
    const cap = opts.listValidityCapSecs ?? MAX_LIST_VALIDITY_SECS;
    if (!Number.isInteger(cap) || cap <= 0 || cap > MAX_LIST_VALIDITY_SECS) {
      throw new ConfigError(`a revocation list validity cap must be in (0, ${MAX_LIST_VALIDITY_SECS}] seconds`);
    }
    this.issuer = opts.issuer;
    this.audiences = audiences;
    this.leewaySecs = leeway;
    this.listValidityCapSecs = cap;
    this.maxTokenBytes = opts.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
    this.maxListBytes = opts.maxListBytes ?? DEFAULT_MAX_LIST_BYTES;
    this.dpopBaseUrl = opts.dpopBaseUrl?.replace(/\/+$/, '');
    this.clock = opts.now ?? systemClock;
    this.keySet = opts.keys ?? KeySet.empty;
    this.cache = new TokenCache(opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.replay = new ReplayCache(limitsFor(opts.dpopReplayCapacity ?? DEFAULT_REPLAY_CAPACITY));
  }

  /** The configured clock's time, whole seconds. */
  now(): number {
    return Math.floor(this.clock());
  }

  get keys(): KeySet {
    return this.keySet;
  }

  /** The serial of the revocation list in force. */
  get revocationSerial(): bigint | undefined {
    return this.listState?.signed.list.serial;
  }

  /** When the list in force expires (Unix seconds). */
  get revocationListExpires(): number | undefined {
    const exp = this.listState?.signed.list.exp;
    return exp === undefined ? undefined : Number(exp);
  }

  /** How many verified tokens are cached. */
  get cachedTokens(): number {
    return this.cache.size;
  }

  /**
   * Replaces the key set. Cached tokens whose key left the set are dropped; the list in force stays
   * (but its serial stops binding once its signing key is gone).
   */
  setKeys(keys: KeySet): void {
    this.keySet = keys;
    this.cache.retain((e) => keys.stillHas(e.token.kid, e.keyMaterial));
  }

  /**
   * Verifies a token presented as a bearer token. A DPoP-bound token is refused here
   * (`dpop_bound`): use {@link verifyDpop}. A token verified before is answered from the cache, but
   * its expiry, its revocation and its key's presence are checked on every call.
   */
  async verify(token: string, now: number = this.now()): Promise<VerifiedToken> {
    const verified = await this.verifyAny(token, BigInt(Math.floor(now)));
    if (verified.claims.cnf !== undefined) {
      throw new VerifyError('dpop_bound', 'token is bound to a DPoP key and was presented without a proof');
    }
    return verified;
  }

  /**
   * Verifies a DPoP-bound token with its proof for this very request (RFC 9449 §7): `method` and
   * `url` as the client used them (behind a proxy, the external URL).
   */
  async verifyDpop(token: string, proof: string, method: string, url: string, now: number = this.now()): Promise<VerifiedToken> {
    const at = BigInt(Math.floor(now));
    const verified = await this.verifyAny(token, at);
    const jkt = verified.claims.cnf?.jkt;
    if (jkt === undefined) throw new VerifyError('invalid_dpop_proof', 'the token is not bound to a DPoP key');
    const p = await checkProof(proof, { method, url, accessToken: token, boundJkt: jkt }, at, PROOF_WINDOW_SECS);
    // Last, once everything else passed: only a request that would be served takes room in the
    // replay cache, and each API key (`sub`) only its own share of it.
    this.replay.record(verified.claims.sub, p.jkt, p.jti, replayUntil(p.iat, at, PROOF_WINDOW_SECS), at);
    return verified;
  }

  private async verifyAny(token: string, now: bigint): Promise<VerifiedToken> {
    const len = token.length > this.maxTokenBytes ? token.length : Buffer.byteLength(token, 'utf8');
    if (len > this.maxTokenBytes) throw new VerifyError('oversize', `token is ${len} bytes, the limit is ${this.maxTokenBytes}`);
    const h = this.health;
    if (h !== undefined) {
      if (h.keysOkAt === undefined) throw new VerifyError('sources_unavailable', 'the key set was never loaded');
      if (Number(now) - h.keysOkAt > h.maxStaleSecs) throw new VerifyError('sources_unavailable', 'the key set could not be refreshed for too long');
    }
    const digest = tokenDigest(token);
    const hit = this.cache.get(digest);
    if (hit !== undefined) {
      if (this.keySet.stillHas(hit.token.kid, hit.keyMaterial)) {
        try {
          this.checkTime(hit.token, now);
        } catch (e) {
          // An expired token can never pass again: it leaves the cache now rather than being kept
          // fresh by its holder, uncounted once its time is past.
          if (e instanceof VerifyError && e.code === 'expired') this.cache.remove(digest);
          throw e;
        }
        const generation = this.checkRevocation(hit.token, now, hit.unrevokedIn);
        hit.unrevokedIn = generation;
        return hit.token;
      }
      this.cache.remove(digest);
    }
    let verified: VerifiedToken;
    let material: string;
    try {
      [verified, material] = await this.verifyUncached(token);
    } catch (e) {
      if (e instanceof VerifyError && e.code === 'unknown_kid') this.onUnknownKid?.();
      throw e;
    }
    this.checkTime(verified, now);
    const generation = this.checkRevocation(verified, now, 0);
    // Cached only while its key (`sub`) is within its share of the cache; counted against the key
    // while cached, and at most until the last instant a hit could still pass.
    const until = verified.times.exp + BigInt(this.leewaySecs);
    this.cache.insert(digest, token.length, { token: verified, keyMaterial: material, unrevokedIn: generation }, until, now);
    return verified;
  }

  /** Structure, header, signature, claims, issuer and audience: all that depends on neither time nor list. */
  private async verifyUncached(token: string): Promise<[VerifiedToken, string]> {
    try {
      const c = splitCompact(token, this.maxTokenBytes);
      const header = decodeHeader(c);
      if (header.typ === undefined || !typMatches(header.typ, TYP_ACCESS_TOKEN)) {
        throw new VerifyError('wrong_typ', `token \`typ\` is ${header.typ === undefined ? 'missing' : JSON.stringify(cut(header.typ))}, \`at+jwt\` expected`);
      }
      if (header.kid === undefined) throw new VerifyError('missing_kid', 'token header has no `kid`');
      const keys = this.keySet;
      const key = keys.get(header.kid);
      if (key === undefined) throw new VerifyError('unknown_kid', `no key with kid ${JSON.stringify(cut(header.kid))}`);
      // The key pins the algorithm; the header can only agree with it.
      if (!algMatches(key.alg, header.alg)) {
        throw algFromName(header.alg) !== undefined
          ? new VerifyError('alg_mismatch', `token \`alg\` ${JSON.stringify(cut(header.alg))} does not match its key (${key.alg})`)
          : new VerifyError('unsupported_alg', `token \`alg\` ${JSON.stringify(cut(header.alg))} is not accepted`);
      }
      decodeSignature64(c);
      if (!(await signatureValid(token, key.key, key.alg, header.alg))) throw new VerifyError('bad_signature', 'token signature does not verify');
      const { claims, times } = parseClaims(decodePayload(c));
      if (claims.iss !== this.issuer) throw new VerifyError('wrong_issuer', 'token issuer is not the expected issuer');
      if (!this.audiences.includes(claims.aud)) throw new VerifyError('wrong_audience', 'token audience is not accepted here');
      return [new VerifiedToken(claims, key.kid, key.alg, times), key.material];
    } catch (e) {
      throw toVerifyError(e);
    }
  }

  private checkTime(t: VerifiedToken, now: bigint): void {
    const leeway = BigInt(this.leewaySecs);
    // RFC 7519 §4.1.4: not accepted on or after `exp`.
    if (now >= t.times.exp + leeway) throw new VerifyError('expired', `token expired at ${t.times.exp} (now ${now})`);
    if (t.times.nbf !== undefined && now + leeway < t.times.nbf) throw new VerifyError('not_yet_valid', `token is not valid before ${t.times.nbf} (now ${now})`);
    if (t.times.iat > now + leeway) throw new VerifyError('iat_in_future', `token claims to be issued at ${t.times.iat}, in the future (now ${now})`);
  }

  /**
   * The list in force must exist, must not have expired (fail closed: an expired list no longer
   * proves that nothing new was revoked), and must not revoke the token. `memo` is the generation
   * the token was last found unrevoked in: when that list is still in force the lookups are
   * skipped, since their answer depends only on the token and the list. Returns the generation.
   */
  private checkRevocation(t: VerifiedToken, now: bigint, memo: number): number {
    const state = this.listState;
    if (state === undefined) throw new VerifyError('no_revocation_list', 'no revocation list is loaded; refusing every token');
    const exp = state.signed.list.exp;
    if (now >= exp) throw new VerifyError('revocation_list_expired', `the revocation list expired at ${exp} (now ${now}); refusing every token`);
    if (memo === state.generation) return memo;
    const kind: RevocationKind | undefined = state.index.check({
      sub: t.claims.sub,
      jti: t.claims.jti,
      tenant: t.claims.tenant,
      iat: t.times.iat,
      kid: t.kid,
    });
    if (kind !== undefined) throw new VerifyError('revoked', `token is revoked (${kind} entry)`);
    return state.generation;
  }

  /**
   * Installs a signed revocation list if it is signed by a key of the current set that the list in
   * force does not revoke, names this issuer, was not issued later than now plus the leeway, is
   * valid no longer than the cap, has not expired, and does not go backwards (see
   * `list-rules.ts`). On any error the list in force stays in force.
   */
  updateRevocations(jws: string, now: number = this.now()): Promise<RevocationUpdate> {
    const run = this.updating.then(() => this.install(jws, BigInt(Math.floor(now))));
    this.updating = run.catch(() => undefined);
    return run;
  }

  private async install(jws: string, now: bigint): Promise<RevocationUpdate> {
    const current = this.listState;
    if (current !== undefined && current.signed.jws === jws) {
      return { status: 'unchanged', serial: current.signed.list.serial };
    }
    const keys = this.keySet;
    const signed = await verifySignedList(jws, keys, this.issuer, this.maxListBytes);
    admit(current, signed, keys, now, { leewaySecs: this.leewaySecs, maxValiditySecs: this.listValidityCapSecs });
    const index = new RevocationIndex(signed.list);
    this.listState = { signed, index, generation: (current?.generation ?? 0) + 1 };
    // Tokens signed by a revoked signing key are refused on every call anyway; free their memory now.
    this.cache.retain((e) => !index.kidRevoked(e.token.kid));
    return { status: 'installed', serial: signed.list.serial };
  }
}


function toVerifyError(e: unknown): VerifyError {
  if (e instanceof VerifyError) return e;
  if (e instanceof EnvelopeError) {
    const f = e.fault;
    switch (f.kind) {
      case 'oversize':
        return new VerifyError('oversize', `token is ${f.len} bytes, the limit is ${f.max}`);
      case 'malformed':
        return new VerifyError('malformed', f.detail);
      case 'duplicate_member':
        return new VerifyError('duplicate_member', `token JSON repeats the member ${JSON.stringify(f.member)}`);
      case 'forbidden_header':
        return new VerifyError('forbidden_header', `token header member \`${f.member}\` is not accepted`);
      case 'unknown_crit':
        return new VerifyError('unknown_crit', 'token header has an unsupported critical extension');
      case 'signature_length':
        return new VerifyError('bad_signature', 'token signature has the wrong length');
    }
  }
  if (e instanceof ClaimsError) {
    const f = e.fault;
    switch (f.kind) {
      case 'malformed':
        return new VerifyError('malformed', f.detail);
      case 'duplicate_member':
        return new VerifyError('duplicate_member', `token JSON repeats the member ${JSON.stringify(f.member)}`);
      case 'missing_claim':
        return new VerifyError('missing_claim', `token claim \`${f.claim}\` is missing`);
      case 'invalid_claim':
        return new VerifyError('invalid_claim', `token claim \`${f.claim}\` is invalid: ${f.detail}`);
    }
  }
  // Never let an unexpected failure pass a token: refuse it as malformed.
  return new VerifyError('malformed', 'token could not be read');
}
