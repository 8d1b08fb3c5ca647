import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AccessError, KeySet, UpdateError, Verifier, VerifyError } from '../src/index.js';
import { AUDIENCE, ISSUER, NOW, TestKey, entry, jwks } from './support/issuer-double.js';

const key = new TestKey('EdDSA');
const ecKey = new TestKey('ES256');

async function verifier(opts: Partial<ConstructorParameters<typeof Verifier>[0]> = {}, withList = true): Promise<Verifier> {
  const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE, keys: await KeySet.parse(jwks(key, ecKey)), now: () => NOW, ...opts });
  if (withList) await v.updateRevocations(key.list());
  return v;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VerifyError || e instanceof UpdateError || e instanceof AccessError) return e.code;
    throw e;
  }
  return 'ok';
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe('token checks, in the Rust order and with its codes', () => {
  it('accepts a good token for both algorithms, and the fully specified alg name', async () => {
    const v = await verifier();
    const t = await v.verify(key.token());
    assert.equal(t.claims.tenant, 'acme');
    assert.equal(t.alg, 'EdDSA');
    assert.equal((await v.verify(ecKey.token())).alg, 'ES256');
    assert.equal(await code(v.verify(key.token({}, { alg: 'Ed25519' }))), 'ok');
    assert.equal(await code(v.verify(key.token({}, { typ: 'Application/AT+JWT' }))), 'ok');
  });

  it('refuses oversize tokens before parsing', async () => {
    const v = await verifier({ maxTokenBytes: 100 });
    assert.equal(await code(v.verify('x'.repeat(101))), 'oversize');
  });

  it('refuses malformed envelopes', async () => {
    const v = await verifier();
    for (const t of ['', 'a.b', 'a.b.c.d', 'a=.b.c', `${b64('{"alg":"EdDSA"')}.e30.${'A'.repeat(86)}`, `${b64('[]')}.e30.x`]) {
      assert.equal(await code(v.verify(t)), 'malformed', t);
    }
    // Stray bits in base64url: Buffer would accept them, Rust does not.
    const good = key.token();
    const [h, p, s] = good.split('.') as [string, string, string];
    const last = s.slice(-1);
    const stray = s.slice(0, -1) + (last === 'A' ? 'B' : String.fromCharCode(last.charCodeAt(0) ^ 1));
    assert.equal(await code(v.verify(`${h}.${p}.${stray}`)), 'malformed');
  });

  it('refuses duplicate members in the header, the claims and nested objects', async () => {
    const v = await verifier();
    const hdr = `{"typ":"at+jwt","alg":"EdDSA","kid":"${key.kid}","kid":"${key.kid}"}`;
    assert.equal(await code(v.verify(key.signRaw(hdr, '{}'))), 'duplicate_member');
    const claims = JSON.stringify({ iss: ISSUER }).replace('}', `,"sub":"a","sub":"b"}`);
    const h = JSON.stringify({ typ: 'at+jwt', alg: 'EdDSA', kid: key.kid });
    assert.equal(await code(v.verify(key.signRaw(h, claims))), 'duplicate_member');
    assert.equal(await code(v.verify(key.signRaw(h, '{"x":{"a":1,"\\u0061":2}}'))), 'duplicate_member');
  });

  it('refuses jku/jwk/x5u/x5c, crit, wrong typ, missing kid, unknown kid', async () => {
    const v = await verifier();
    for (const m of ['jku', 'jwk', 'x5u', 'x5c']) assert.equal(await code(v.verify(key.token({}, { [m]: 'x' }))), 'forbidden_header', m);
    assert.equal(await code(v.verify(key.token({}, { crit: ['exp'] }))), 'unknown_crit');
    assert.equal(await code(v.verify(key.token({}, { typ: 'JWT' }))), 'wrong_typ');
    assert.equal(await code(v.verify(key.token({}, { typ: undefined }))), 'wrong_typ');
    assert.equal(await code(v.verify(key.token({}, { kid: undefined }))), 'missing_kid');
    assert.equal(await code(v.verify(key.token({}, { kid: 'nope' }))), 'unknown_kid');
  });

  it('lets the key pin the algorithm', async () => {
    const v = await verifier();
    assert.equal(await code(v.verify(key.token({}, { alg: 'ES256' }))), 'alg_mismatch');
    assert.equal(await code(v.verify(key.token({}, { alg: 'none' }))), 'unsupported_alg');
    assert.equal(await code(v.verify(key.token({}, { alg: 'HS256' }))), 'unsupported_alg');
    // A token signed by another key under our kid.
    const other = new TestKey('EdDSA', key.kid);
    assert.equal(await code(v.verify(other.token())), 'bad_signature');
    // A signature of the wrong length is a bad signature.
    assert.equal(await code(v.verify(key.token().split('.').slice(0, 2).join('.') + '.AAAA')), 'bad_signature');
  });

  it('requires each claim and checks types and values', async () => {
    const v = await verifier();
    for (const c of ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'scope', 'tenant']) {
      assert.equal(await code(v.verify(key.token({ [c]: undefined }))), 'missing_claim', c);
    }
    assert.equal(await code(v.verify(key.token({ nbf: undefined }))), 'ok');
    assert.equal(await code(v.verify(key.token({ aud: [AUDIENCE, 'https://other'] }))), 'invalid_claim');
    assert.equal(await code(v.verify(key.token({ sub: 'not base62!' }))), 'invalid_claim');
    assert.equal(await code(v.verify(key.token({ scope: 'a  b' }))), 'invalid_claim');
    assert.equal(await code(v.verify(key.token({ cnf: { jkt: 'short' } }))), 'invalid_claim');
    // As in Rust (serde), a claim of the wrong JSON type is malformed.
    assert.equal(await code(v.verify(key.token({ exp: 'soon' }))), 'malformed');
    assert.equal(await code(v.verify(key.token({ exp: NOW + 0.5 }))), 'malformed');
    assert.equal(await code(v.verify(key.token({ iss: 'https://evil' }))), 'wrong_issuer');
    assert.equal(await code(v.verify(key.token({ aud: 'https://other' }))), 'wrong_audience');
  });

  it('checks exp, nbf and iat with the leeway, at the boundaries', async () => {
    const v = await verifier();
    const t = key.token({ exp: NOW - 60 + 1 });
    assert.equal(await code(v.verify(t, NOW)), 'ok');
    assert.equal(await code(v.verify(t, NOW + 1)), 'expired');
    assert.equal(await code(v.verify(key.token({ nbf: NOW + 60 }), NOW)), 'ok');
    assert.equal(await code(v.verify(key.token({ nbf: NOW + 61 }), NOW)), 'not_yet_valid');
    assert.equal(await code(v.verify(key.token({ iat: NOW + 60, nbf: undefined }), NOW)), 'ok');
    assert.equal(await code(v.verify(key.token({ iat: NOW + 61, nbf: undefined }), NOW)), 'iat_in_future');
  });

  it('fails closed without a list and once the list expired', async () => {
    const v = await verifier({}, false);
    const t = key.token();
    assert.equal(await code(v.verify(t)), 'no_revocation_list');
    await v.updateRevocations(key.list({ exp: NOW + 100 }));
    assert.equal(await code(v.verify(t, NOW + 99)), 'ok');
    const e = await v.verify(t, NOW + 100).catch((x: VerifyError) => x);
    assert.ok(e instanceof VerifyError && e.code === 'revocation_list_expired' && e.unavailable);
  });

  it('revokes by key whatever the iat, by jti, by tenant before the cutoff, by kid — even cached', async () => {
    const v = await verifier();
    const t = key.token({ sub: 'victim', iat: NOW + 1000, nbf: undefined, exp: NOW + 2000 });
    assert.equal(await code(v.verify(t, NOW + 1000)), 'ok');
    assert.equal(v.cachedTokens, 1);
    await v.updateRevocations(key.list({ serial: 2, entries: [entry('key', 'victim')] }));
    assert.equal(await code(v.verify(t, NOW + 1000)), 'revoked');

    const j = key.token({ jti: 'j-1' });
    await v.updateRevocations(key.list({ serial: 3, entries: [entry('jti', 'j-1')] }));
    assert.equal(await code(v.verify(j)), 'revoked');

    await v.updateRevocations(key.list({ serial: 4, entries: [entry('tenant', 'acme', NOW)] }));
    assert.equal(await code(v.verify(key.token({ iat: NOW + 4 }), NOW + 4)), 'revoked');
    assert.equal(await code(v.verify(key.token({ iat: NOW + 5 }), NOW + 5)), 'ok');

    await v.updateRevocations(key.list({ serial: 5, entries: [entry('kid', ecKey.kid)] }));
    assert.equal(await code(v.verify(ecKey.token())), 'revoked');
  });

  it('drops cached tokens whose key left the key set', async () => {
    const v = await verifier();
    const t = ecKey.token();
    await v.verify(t);
    v.setKeys(await KeySet.parse(jwks(key)));
    assert.equal(await code(v.verify(t)), 'unknown_kid');
  });

  it('refuses a DPoP-bound token presented as a bearer token', async () => {
    const v = await verifier();
    assert.equal(await code(v.verify(key.token({ cnf: { jkt: 'A'.repeat(43) } }))), 'dpop_bound');
  });

  it('checks scopes and tenant on a verified token', async () => {
    const v = await verifier();
    const t = await v.verify(key.token());
    t.requireScopes('orders:read');
    assert.throws(() => t.requireScopes('orders:read', 'admin'), (e: AccessError) => e.code === 'insufficient_scope' && e.missingScopes.join() === 'admin');
    assert.throws(() => t.requireTenant('globex'), (e: AccessError) => e.code === 'wrong_tenant');
  });

  it('refuses a bad configuration', async () => {
    assert.throws(() => new Verifier({ issuer: ISSUER, audiences: AUDIENCE, leewaySecs: 301 }));
    assert.throws(() => new Verifier({ issuer: ISSUER, audiences: AUDIENCE, listValidityCapSecs: 604801 }));
    assert.throws(() => new Verifier({ issuer: ISSUER, audiences: [] }));
  });

  it('never puts the token in an error message', async () => {
    const v = await verifier();
    const t = key.token({ iss: 'https://evil' });
    const e = (await v.verify(t).catch((x: Error) => x)) as Error;
    assert.ok(!e.message.includes(t.split('.')[1] as string));
  });
});
