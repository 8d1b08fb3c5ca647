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
    const v = await verifier({ dpopReplayCapacity: 200 }); // 2 per key, 1 per jkt
    assert.equal(await code(v.verifyDpop(token, ok(), 'GET', URL_)), 'ok');
    // The same DPoP key again: over its own share.
    const e = await v.verifyDpop(token, ok(), 'GET', URL_).catch((x: VerifyError) => x);
    assert.ok(e instanceof VerifyError && e.code === 'dpop_proof_quota' && (e.retryAfterSecs ?? 0) >= 1);
    // Another DPoP key under the same API key fills the key's share; a third is over it.
    const tokenOf = (k: TestKey) => signer.token({ cnf: { jkt: k.kid } });
    const second = new TestKey('EdDSA');
    const t1 = tokenOf(second);
    assert.equal(await code(v.verifyDpop(t1, proof(second, { ath: ath(t1) }), 'GET', URL_)), 'ok');
    const third = new TestKey('EdDSA');
    const t3 = tokenOf(third);
    assert.equal(await code(v.verifyDpop(t3, proof(third, { ath: ath(t3) }), 'GET', URL_)), 'dpop_proof_quota');
    // Another API key goes on.
    const otherHolder = new TestKey('EdDSA');
    const t2 = signer.token({ sub: 'other2', cnf: { jkt: otherHolder.kid } });
    assert.equal(await code(v.verifyDpop(t2, proof(otherHolder, { ath: ath(t2) }), 'GET', URL_)), 'ok');
    // Entries fall due after the window.
    assert.equal(await code(v.verifyDpop(token, ok({ iat: NOW + 62 }), 'GET', URL_, NOW + 62)), 'ok');
    const full = await verifier({ dpopReplayCapacity: 1 });
    assert.equal(await code(full.verifyDpop(token, ok(), 'GET', URL_)), 'ok');
    assert.equal(await code(full.verifyDpop(t2, proof(otherHolder, { ath: ath(t2) }), 'GET', URL_)), 'dpop_replay_cache_full');
  });

  it('gives one DPoP key half of its API key\'s share, so one flooding browser leaves the others room', async () => {
    const v = await verifier({ dpopReplayCapacity: 800 }); // 8 per key, 4 per jkt
    const tokenOf = (k: TestKey) => signer.token({ cnf: { jkt: k.kid } });
    const flooder = new TestKey('EdDSA');
    const others = [new TestKey('EdDSA'), new TestKey('EdDSA')];
    const ft = tokenOf(flooder);
    const results = [];
    for (let n = 0; n < 10; n++) results.push(await code(v.verifyDpop(ft, proof(flooder, { ath: ath(ft) }), 'GET', URL_)));
    assert.deepEqual(results, [...Array(4).fill('ok'), ...Array(6).fill('dpop_proof_quota')]);
    for (const b of others) {
      const t = tokenOf(b);
      for (let n = 0; n < 2; n++) assert.equal(await code(v.verifyDpop(t, proof(b, { ath: ath(t) }), 'GET', URL_)), 'ok');
    }
    // Now the key's share is full, for every DPoP key under it.
    const late = new TestKey('EdDSA');
    const lt = tokenOf(late);
    assert.equal(await code(v.verifyDpop(lt, proof(late, { ath: ath(lt) }), 'GET', URL_)), 'dpop_proof_quota');
  });
});
