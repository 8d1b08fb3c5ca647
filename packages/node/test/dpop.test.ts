import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { KeySet, Verifier, VerifyError } from '../src/index.js';
import { AUDIENCE, ISSUER, NOW, TestKey, ath, jwks, proof } from './support/issuer-double.js';

const signer = new TestKey('EdDSA');
const holder = new TestKey('EdDSA');
const URL_ = `${AUDIENCE}/orders`;

async function verifier(opts = {}): Promise<Verifier> {
  const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE, keys: await KeySet.parse(jwks(signer)), now: () => NOW, ...opts });
  await v.updateRevocations(signer.list());
  return v;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof VerifyError) return e.code;
    throw e;
  }
}

describe('DPoP (RFC 9449)', () => {
  const token = signer.token({ cnf: { jkt: holder.kid } });
  const ok = (claims: Record<string, unknown> = {}, key = holder, header = {}) => proof(key, { ath: ath(token), ...claims }, header);

  it('accepts a proof for this request, token and key — once', async () => {
    const v = await verifier();
    const p = ok();
    assert.equal(await code(v.verifyDpop(token, p, 'GET', URL_)), 'ok');
    assert.equal(await code(v.verifyDpop(token, p, 'GET', URL_)), 'invalid_dpop_proof');
    assert.equal(await code(v.verifyDpop(token, ok(), 'GET', 'HTTPS://API.test/orders?x=1')), 'ok');
  });

  it('refuses proofs for another method, URL, token or key, too old or too new, or forged', async () => {
    const v = await verifier();
    const cases: [string, string][] = [
      ['method', ok({ htm: 'POST' })],
      ['url', ok({ htu: `${AUDIENCE}/other` })],
      ['ath', ok({ ath: ath('another token') })],
      ['no ath', proof(holder, {})],
      ['key', ok({}, new TestKey('EdDSA'))],
      ['old', ok({ iat: NOW - 61 })],
      ['future', ok({ iat: NOW + 6 })],
      ['typ', ok({}, holder, { typ: 'jwt' })],
      ['private key', ok({}, holder, { jwk: { ...holder.publicJwk, d: 'AAAA' } })],
      ['alg', ok({}, holder, { alg: 'ES256' })],
      ['not a jws', 'a.b.c'],
    ];
    for (const [what, p] of cases) assert.equal(await code(v.verifyDpop(token, p, 'GET', URL_)), 'invalid_dpop_proof', what);
    assert.equal(await code(v.verifyDpop(token, ok({ iat: NOW - 60 }), 'GET', URL_)), 'ok');
    assert.equal(await code(v.verifyDpop(token, ok({ iat: NOW + 5 }), 'GET', URL_)), 'ok');
  });

  it('refuses an unbound token with a proof, and checks the token first', async () => {
    const v = await verifier();
    assert.equal(await code(v.verifyDpop(signer.token(), ok(), 'GET', URL_)), 'invalid_dpop_proof');
    assert.equal(await code(v.verifyDpop(signer.token({ cnf: { jkt: holder.kid }, exp: NOW - 100 }), ok(), 'GET', URL_)), 'expired');
  });

  it('bounds the replay cache per API key, and refuses when full', async () => {
    const v = await verifier({ dpopReplayCapacity: 200 }); // 2 per key, 2 per jkt
    assert.equal(await code(v.verifyDpop(token, ok(), 'GET', URL_)), 'ok');
    assert.equal(await code(v.verifyDpop(token, ok(), 'GET', URL_)), 'ok');
    const e = await v.verifyDpop(token, ok(), 'GET', URL_).catch((x: VerifyError) => x);
    assert.ok(e instanceof VerifyError && e.code === 'dpop_proof_quota' && (e.retryAfterSecs ?? 0) >= 1);
    // Another API key goes on.
    const other = signer.token({ sub: 'other', cnf: { jkt: new TestKey().kid } });
    const otherHolder = new TestKey('EdDSA');
    const t2 = signer.token({ sub: 'other2', cnf: { jkt: otherHolder.kid } });
    void other;
    assert.equal(await code(v.verifyDpop(t2, proof(otherHolder, { ath: ath(t2) }), 'GET', URL_)), 'ok');
    // Entries fall due after the window.
    assert.equal(await code(v.verifyDpop(token, ok({ iat: NOW + 62 }), 'GET', URL_, NOW + 62)), 'ok');
    const full = await verifier({ dpopReplayCapacity: 1 });
    assert.equal(await code(full.verifyDpop(token, ok(), 'GET', URL_)), 'ok');
    assert.equal(await code(full.verifyDpop(t2, proof(otherHolder, { ath: ath(t2) }), 'GET', URL_)), 'dpop_replay_cache_full');
  });
});
