/**
 * Express glue, answering exactly like the Rust axum layer (`verifier-lib/src/layer.rs`; RFC 6750
 * §3, RFC 9449 §7.1):
 *
 * - no token → 401 `WWW-Authenticate: Bearer realm="api"`, no error code (RFC 6750 §3.1);
 * - a bearer token refused → 401 `Bearer realm="api", error="invalid_token", error_description="<code>"`;
 * - a DPoP token or proof refused → 401 `DPoP realm="api", error="invalid_dpop_proof"` (or
 *   `invalid_token` when the token itself failed), `algs="EdDSA ES256"`;
 * - a genuine token without a required scope → 403 `error="insufficient_scope"` and the `scope` needed;
 * - an API key over its share of the DPoP replay cache → 429 with `Retry-After`, for that key alone;
 * - sources too stale to vouch for anything → 503 with `Retry-After: 5`.
 *
 * Bodies are small JSON; the token is never logged or echoed. Tokens come only from the
 * `Authorization` header: tokens in query strings end up in logs.
 */

import type { NextFunction, Request, RequestHandler, Response } from 'express';

import { AccessError, VerifyError } from './errors.js';
import type { VerifiedToken } from './verified-token.js';
import type { Verifier } from './verifier.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified token, set by {@link keymintAuth}. */
      keymint?: VerifiedToken;
    }
  }
}

function answer(res: Response, status: number, body: object, challenge?: string): void {
  if (challenge !== undefined) res.setHeader('WWW-Authenticate', challenge);
  if (status === 503) res.setHeader('Retry-After', '5');
  res.status(status).json(body);
}

function refuse(res: Response, e: unknown, dpop: boolean): void {
  if (!(e instanceof VerifyError)) {
    // Not the client's fault and nothing to tell it: a generic 500, as the Rust layer does.
    answer(res, 500, { error: 'server_error' });
    return;
  }
  if (e.unavailable) {
    answer(res, 503, { error: 'temporarily_unavailable', error_description: e.code });
    return;
  }
  if (dpop && e.code === 'dpop_proof_quota') {
    res.setHeader('Retry-After', String(e.retryAfterSecs ?? 1));
    answer(res, 429, { error: 'too_many_requests', error_description: 'dpop_proof_quota' });
    return;
  }
  if (dpop) {
    const code = e.code === 'invalid_dpop_proof' ? 'invalid_dpop_proof' : 'invalid_token';
    answer(res, 401, { error: code, error_description: e.code }, `DPoP realm="api", error="${code}", algs="EdDSA ES256"`);
    return;
  }
  answer(res, 401, { error: 'invalid_token', error_description: e.code }, `Bearer realm="api", error="invalid_token", error_description="${e.code}"`);
}

/**
 * Verifies `Authorization: Bearer <token>` (never a DPoP-bound token) or `Authorization: DPoP
 * <token>` with its `DPoP` proof, and sets `req.keymint`. DPoP proofs must name the verifier's
 * `dpopBaseUrl` plus the request path; without one a DPoP request is answered 500
 * (`dpop_base_url_missing`): the `Host` header is the client's to choose.
 */
export function keymintAuth(verifier: Verifier): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const value = req.headers.authorization;
    const space = value === undefined ? -1 : value.indexOf(' ');
    if (value === undefined || space < 0) {
      answer(res, 401, { error: 'unauthorized', error_description: 'a bearer token is required' }, 'Bearer realm="api"');
      return;
    }
    const scheme = value.slice(0, space).toLowerCase();
    const token = value.slice(space + 1).trim();
    if (scheme === 'bearer') {
      verifier.verify(token).then(
        (t) => {
          req.keymint = t;
          next();
        },
        (e: unknown) => refuse(res, e, false),
      );
      return;
    }
    if (scheme !== 'dpop') {
      answer(res, 401, { error: 'unauthorized', error_description: 'a bearer token is required' }, 'Bearer realm="api"');
      return;
    }
    const proof = req.headers.dpop;
    if (typeof proof !== 'string') {
      refuse(res, new VerifyError('invalid_dpop_proof', 'no DPoP header'), true);
      return;
    }
    if (verifier.dpopBaseUrl === undefined) {
      answer(res, 500, { error: 'server_error', error_description: 'dpop_base_url_missing' });
      return;
    }
    const url = `${verifier.dpopBaseUrl}${req.originalUrl.split('?', 1)[0] ?? ''}`;
    verifier.verifyDpop(token, proof, req.method, url).then(
      (t) => {
        req.keymint = t;
        next();
      },
      (e: unknown) => refuse(res, e, true),
    );
  };
}

/** Requires every scope in `scopes` of the verified token (403 `insufficient_scope` otherwise). */
export function requireScopes(...scopes: string[]): RequestHandler {
  const needed = scopes.join(' ');
  return (req: Request, res: Response, next: NextFunction) => {
    const t = req.keymint;
    if (t === undefined) {
      // keymintAuth is missing in front of this route: a server bug.
      answer(res, 500, { error: 'server_error' });
      return;
    }
    try {
      t.requireScopes(...scopes);
      next();
    } catch (e) {
      if (!(e instanceof AccessError)) throw e;
      answer(res, 403, { error: 'insufficient_scope', scope: needed }, `Bearer realm="api", error="insufficient_scope", scope="${needed}"`);
    }
  };
}
