/**
 * A token client: exchanges an API key for a short-lived token at the issuer's `POST /v1/token`
 * (`Authorization: Bearer <key>`, optional JSON body `{scope, audience, ttl, dpop_jkt}`), caches
 * it, and gets the next one before it expires. Concurrent callers share one request.
 *
 * With `dpop: true` the client holds a non-extractable WebCrypto Ed25519 key: the token is bound to
 * its thumbprint (`dpop_jkt`, plus a `DPoP` proof on the token request, RFC 9449 §5), and
 * {@link TokenClient.authorize} makes the proof each resource request needs, so a copied token is
 * useless without the key.
 */

import { randomUUID } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

import { accessTokenHash } from './dpop-proof.js';

export interface TokenClientOptions {
  /** The issuer's base URL, e.g. `https://issuer.example`. */
  readonly issuer: string;
  /** The API key. Kept in memory only; never logged or put in an error. */
  readonly apiKey: string;
  readonly scope?: string;
  readonly audience?: string;
  readonly ttlSecs?: number;
  /** Bind tokens to a DPoP key held by this client. */
  readonly dpop?: boolean;
  /** Get a new token this long before the current one expires (default: 60 s, at most half its life). */
  readonly refreshBeforeSecs?: number;
  readonly fetch?: typeof fetch;
  /** Milliseconds since the epoch (default Date.now). */
  readonly now?: () => number;
}

/** A token from the issuer. */
export interface IssuedToken {
  readonly accessToken: string;
  /** `Bearer` or `DPoP`. */
  readonly tokenType: string;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  readonly scope: string | undefined;
}

/** The issuer refused: its RFC 6749 §5.2 `error` code, the HTTP status, and `Retry-After` on 429. */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError';
  constructor(
    readonly status: number,
    readonly error: string,
    readonly retryAfterSecs: number | undefined,
  ) {
    super(`token request refused: HTTP ${status} ${error}`);
  }
}

interface DpopKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly jkt: string;
}

export class TokenClient {
  private current: { readonly token: IssuedToken; readonly refreshAt: number } | undefined;
  private inflight: Promise<IssuedToken> | undefined;
  private dpopKey: Promise<DpopKey> | undefined;
  private readonly f: typeof fetch;
  private readonly now: () => number;
  private readonly tokenUrl: string;

  constructor(private readonly opts: TokenClientOptions) {
    this.f = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
    this.tokenUrl = `${opts.issuer.replace(/\/+$/, '')}/v1/token`;
  }

  /** A valid token: the cached one, or a new one when it is close to expiry. */
  async token(): Promise<IssuedToken> {
    const c = this.current;
    if (c !== undefined && this.now() < c.refreshAt) return c.token;
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Forgets the cached token (e.g. after the API answered 401). */
  invalidate(): void {
    this.current = undefined;
  }

  /**
   * The headers for a request to an API: `Authorization` and, for a DPoP-bound token, a fresh
   * `DPoP` proof for this method and URL carrying the token's hash.
   */
  async authorize(method: string, url: string): Promise<Record<string, string>> {
    const t = await this.token();
    if (t.tokenType.toLowerCase() !== 'dpop') return { authorization: `Bearer ${t.accessToken}` };
    const proof = await this.proof(method, url, accessTokenHash(t.accessToken));
    return { authorization: `DPoP ${t.accessToken}`, dpop: proof };
  }

  private key(): Promise<DpopKey> {
    this.dpopKey ??= (async () => {
      // The private key cannot be exported, so a script that reads this process's objects still
      // cannot carry it elsewhere.
      const { privateKey, publicKey } = await generateKeyPair('Ed25519', { extractable: false });
      const publicJwk = await exportJWK(publicKey);
      return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
    })();
    return this.dpopKey;
  }

  private async proof(method: string, url: string, ath?: string): Promise<string> {
    const k = await this.key();
    const claims: Record<string, string> = { jti: randomUUID(), htm: method, htu: url.split(/[?#]/, 1)[0] ?? url };
    if (ath !== undefined) claims.ath = ath;
    return new SignJWT(claims)
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: k.publicJwk })
      .setIssuedAt(Math.floor(this.now() / 1000))
      .sign(k.privateKey);
  }

  private async fetchToken(): Promise<IssuedToken> {
    const body: Record<string, string | number> = {};
    if (this.opts.scope !== undefined) body.scope = this.opts.scope;
    if (this.opts.audience !== undefined) body.audience = this.opts.audience;
    if (this.opts.ttlSecs !== undefined) body.ttl = this.opts.ttlSecs;
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.apiKey}`, accept: 'application/json' };
    if (this.opts.dpop === true) {
      body.dpop_jkt = (await this.key()).jkt;
      headers.dpop = await this.proof('POST', this.tokenUrl);
    }
    const hasBody = Object.keys(body).length > 0;
    if (hasBody) headers['content-type'] = 'application/json';
    const sentAt = this.now();
    const res = await this.f(this.tokenUrl, {
      method: 'POST',
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
      ...(hasBody ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status !== 200) {
      const retry = res.headers.get('retry-after');
      throw new TokenRequestError(res.status, typeof json.error === 'string' ? json.error : 'unknown_error', retry === null ? undefined : Number(retry));
    }
    const accessToken = json.access_token;
    const expiresIn = json.expires_in;
    if (typeof accessToken !== 'string' || typeof expiresIn !== 'number' || expiresIn <= 0) {
      throw new TokenRequestError(res.status, 'invalid_response', undefined);
    }
    // Measured from when the request was sent, so the cached token never outlives the real one.
    const lifeMs = expiresIn * 1000;
    const before = Math.min((this.opts.refreshBeforeSecs ?? 60) * 1000, lifeMs / 2);
    const token: IssuedToken = {
      accessToken,
      tokenType: typeof json.token_type === 'string' ? json.token_type : 'Bearer',
      expiresAt: sentAt + lifeMs,
      scope: typeof json.scope === 'string' ? json.scope : undefined,
    };
    this.current = { token, refreshAt: sentAt + lifeMs - before };
    return token;
  }
}
