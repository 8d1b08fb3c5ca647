import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import express from 'express';

import { keymintAuth, requireScopes } from '../src/express.js';
import { KeySet, Verifier } from '../src/index.js';
import { AUDIENCE, ISSUER, NOW, TestKey, ath, jwks, proof } from './support/issuer-double.js';

const k = new TestKey();
const holder = new TestKey();
let base = '';
let close = () => {};
let listed: Verifier;

async function app(v: Verifier): Promise<{ url: string; close: () => void }> {
  const a = express();
  a.get('/orders', keymintAuth(v), requireScopes('orders:read'), (req, res) => {
    res.json({ tenant: req.keymint?.claims.tenant });
  });
  a.get('/admin', keymintAuth(v), requireScopes('admin'), (_req, res) => {
    res.json({});
  });
  const server = a.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

describe('Express middleware answers like the Rust layer', () => {
  before(async () => {
    listed = new Verifier({ issuer: ISSUER, audiences: AUDIENCE, keys: await KeySet.parse(jwks(k)), now: () => NOW, dpopBaseUrl: AUDIENCE, dpopReplayCapacity: 100 });
    await listed.updateRevocations(k.list());
    ({ url: base, close } = await app(listed));
  });
  after(() => close());

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });

  it('200 with the claims on req.keymint', async () => {
    const r = await get('/orders', { authorization: `Bearer ${k.token()}` });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { tenant: 'acme' });
  });

  it('401 without an error code when no token came (RFC 6750 §3.1)', async () => {
    for (const h of [{}, { authorization: 'Basic abc' }, { authorization: 'Bearer' }]) {
      const r = await get('/orders', h);
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="api"');
    }
  });

  it('401 invalid_token with the reason code when a token was refused', async () => {
    const r = await get('/orders', { authorization: `Bearer ${k.token({ exp: NOW - 100 })}` });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token", error_description="expired"');
    assert.deepEqual(await r.json(), { error: 'invalid_token', error_description: 'expired' });
  });

  it('403 insufficient_scope with the scope needed', async () => {
    const r = await get('/admin', { authorization: `Bearer ${k.token()}` });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="api", error="insufficient_scope", scope="admin"');
  });

  it('DPoP: 200 with a proof, 401 invalid_dpop_proof on replay, 429 with Retry-After over quota', async () => {
    const t = k.token({ cnf: { jkt: holder.kid } });
    const p = proof(holder, { ath: ath(t) });
    const ok = await get('/orders', { authorization: `DPoP ${t}`, dpop: p });
    assert.equal(ok.status, 200);
    const replay = await get('/orders', { authorization: `DPoP ${t}`, dpop: p });
    assert.equal(replay.status, 401);
    assert.equal(replay.headers.get('www-authenticate'), 'DPoP realm="api", error="invalid_dpop_proof", algs="EdDSA ES256"');
    const bearer = await get('/orders', { authorization: `Bearer ${t}` });
    assert.equal(bearer.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token", error_description="dpop_bound"');
    // Capacity 100: one live proof per key; the first one is still live.
    const over = await get('/orders', { authorization: `DPoP ${t}`, dpop: proof(holder, { ath: ath(t) }) });
    assert.equal(over.status, 429);
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
  });

  it('503 with Retry-After when the verifier cannot vouch for anything', async () => {
    const stale = new Verifier({ issuer: ISSUER, audiences: AUDIENCE, keys: await KeySet.parse(jwks(k)), now: () => NOW });
    const s = await app(stale);
    try {
      const r = await fetch(`${s.url}/orders`, { headers: { authorization: `Bearer ${k.token()}` } });
      assert.equal(r.status, 503);
      assert.equal(r.headers.get('retry-after'), '5');
      assert.equal(r.headers.get('www-authenticate'), null);
      assert.deepEqual(await r.json(), { error: 'temporarily_unavailable', error_description: 'no_revocation_list' });
    } finally {
      s.close();
    }
  });
});
