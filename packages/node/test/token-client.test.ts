import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { calculateJwkThumbprint, decodeProtectedHeader, decodeJwt, type JWK } from 'jose';

import { TokenClient, TokenRequestError } from '../src/token-client.js';

function fakeIssuer(answer: (req: Request) => Response) {
  const seen: Request[] = [];
  const f = (async (url: string | URL | Request, init?: RequestInit) => {
    const req = new Request(url, init);
    seen.push(req.clone());
    return answer(req);
  }) as typeof fetch;
  return { f, seen };
}

const ok = (type = 'Bearer', expiresIn = 600) =>
  new Response(JSON.stringify({ access_token: `tok-${Math.random()}`, token_type: type, expires_in: expiresIn, scope: 'a' }), { status: 200 });

describe('token client', () => {
  it('exchanges the key, caches the token and refreshes it before expiry; one request for concurrent callers', async () => {
    let now = 1_000_000;
    const { f, seen } = fakeIssuer(() => ok());
    const c = new TokenClient({ issuer: 'https://issuer.test/', apiKey: 'km_sk_test_x', scope: 'a', fetch: f, now: () => now });
    const [t1, t2] = await Promise.all([c.token(), c.token()]);
    assert.equal(t1, t2);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.url, 'https://issuer.test/v1/token');
    assert.equal(seen[0]?.headers.get('authorization'), 'Bearer km_sk_test_x');
    assert.deepEqual(await seen[0]?.json(), { scope: 'a' });
    now += 539_000;
    assert.equal(await c.token(), t1);
    now += 1_000; // 60 s before expiry
    assert.notEqual((await c.token()).accessToken, t1.accessToken);
    assert.equal(seen.length, 2);
  });

  it('binds tokens to a non-extractable DPoP key and proves it', async () => {
    const { f, seen } = fakeIssuer(() => ok('DPoP'));
    const c = new TokenClient({ issuer: 'https://issuer.test', apiKey: 'k', dpop: true, fetch: f });
    const h = await c.authorize('GET', 'https://api.test/orders?page=2');
    const body = (await seen[0]?.json()) as { dpop_jkt: string };
    const tokenProof = seen[0]?.headers.get('dpop') as string;
    const hdr = decodeProtectedHeader(tokenProof);
    assert.equal(hdr.typ, 'dpop+jwt');
    assert.equal(body.dpop_jkt, await calculateJwkThumbprint(hdr.jwk as JWK));
    assert.equal(decodeJwt(tokenProof).htu, 'https://issuer.test/v1/token');
    assert.ok(h.authorization?.startsWith('DPoP '));
    const claims = decodeJwt(h.dpop as string);
    assert.equal(claims.htm, 'GET');
    assert.equal(claims.htu, 'https://api.test/orders');
    assert.equal(typeof claims.ath, 'string');
  });

  it('reports refusals with the RFC 6749 error, never the key', async () => {
    const { f } = fakeIssuer(() => new Response(JSON.stringify({ error: 'invalid_client' }), { status: 401 }));
    const c = new TokenClient({ issuer: 'https://issuer.test', apiKey: 'km_secret', fetch: f });
    const e = (await c.token().catch((x: unknown) => x)) as TokenRequestError;
    assert.ok(e instanceof TokenRequestError && e.error === 'invalid_client' && e.status === 401);
    assert.ok(!e.message.includes('km_secret'));
  });
});
