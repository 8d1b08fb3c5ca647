import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { KeySet, UpdateError, Verifier } from '../src/index.js';
import { AUDIENCE, ISSUER, NOW, TestKey, entry, jwks, listPayload } from './support/issuer-double.js';

const a = new TestKey('EdDSA');
const b = new TestKey('ES256');

async function verifier(keys: TestKey[] = [a, b], opts = {}): Promise<Verifier> {
  return new Verifier({ issuer: ISSUER, audiences: AUDIENCE, keys: await KeySet.parse(jwks(...keys)), now: () => NOW, ...opts });
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    const r = (await p) as { status: string };
    return r.status;
  } catch (e) {
    if (e instanceof UpdateError) return e.code;
    throw e;
  }
}

describe('revocation list installs (docs/revocation-list.md)', () => {
  it('checks the envelope, typ, key, alg and signature', async () => {
    const v = await verifier();
    assert.equal(await code(v.updateRevocations('a.b')), 'list_malformed');
    assert.equal(await code(v.updateRevocations(a.list({}, { typ: 'at+jwt' }))), 'list_wrong_typ');
    assert.equal(await code(v.updateRevocations(a.list({}, { typ: 'application/KEYMINT-revocations+jwt' }))), 'installed');
    const w = await verifier();
    for (const m of ['jku', 'jwk', 'x5u', 'x5c', 'crit']) assert.equal(await code(w.updateRevocations(a.list({}, { [m]: ['x'] }))), 'list_forbidden_header', m);
    assert.equal(await code(w.updateRevocations(a.list({}, { kid: 'unknown' }))), 'list_unknown_kid');
    assert.equal(await code(w.updateRevocations(a.list({}, { alg: 'ES256' }))), 'list_alg_mismatch');
    assert.equal(await code(w.updateRevocations(new TestKey('EdDSA', a.kid).list())), 'list_bad_signature');
    const hdr = JSON.stringify({ typ: 'keymint-revocations+jwt', alg: 'EdDSA', kid: a.kid });
    assert.equal(await code(w.updateRevocations(a.signRaw(hdr, JSON.stringify(listPayload()).replace('}', ',"v":1}')))), 'list_duplicate_member');
  });

  it('checks the payload: version, issuer, validity, kinds', async () => {
    const v = await verifier();
    assert.equal(await code(v.updateRevocations(a.list({ v: 2 }))), 'list_unsupported_version');
    assert.equal(await code(v.updateRevocations(a.list({ iss: 'https://evil' }))), 'list_wrong_issuer');
    assert.equal(await code(v.updateRevocations(a.list({ exp: NOW }))), 'list_bad_validity');
    assert.equal(await code(v.updateRevocations(a.list({ entries: [entry('user', 'x')] }))), 'list_malformed');
    // Names on every object's prototype are no kinds either (`in` took them, and the entry was
    // then dropped silently); Rust and Python refuse the list.
    for (const k of ['toString', 'constructor', 'valueOf', '__proto__']) {
      assert.equal(await code(v.updateRevocations(a.list({ entries: [entry(k, 'x')] }))), 'list_malformed', k);
    }
    assert.equal(await code(v.updateRevocations(a.list({ serial: -1 }))), 'list_malformed');
  });

  it('refuses lists from the future, too long, or expired', async () => {
    const v = await verifier();
    assert.equal(await code(v.updateRevocations(a.list({ iat: NOW + 61, exp: NOW + 1000 }))), 'list_iat_in_future');
    assert.equal(await code(v.updateRevocations(a.list({ iat: NOW + 60, exp: NOW + 1000 }))), 'installed');
    const w = await verifier();
    assert.equal(await code(w.updateRevocations(a.list({ exp: NOW + 604_801 }))), 'list_validity_too_long');
    assert.equal(await code(w.updateRevocations(a.list({ iat: NOW - 100, exp: NOW }))), 'list_expired');
    const tight = await verifier([a], { listValidityCapSecs: 3600 });
    assert.equal(await code(tight.updateRevocations(a.list({ exp: NOW + 3601 }))), 'list_validity_too_long');
  });

  it('never goes backwards; an equal serial only byte for byte', async () => {
    const v = await verifier();
    const five = a.list({ serial: 5 });
    assert.equal(await code(v.updateRevocations(five)), 'installed');
    assert.equal(await code(v.updateRevocations(five)), 'unchanged');
    assert.equal(await code(v.updateRevocations(a.list({ serial: 4 }))), 'list_rollback');
    assert.equal(await code(v.updateRevocations(a.list({ serial: 5, entries: [entry('jti', 'x')] }))), 'list_serial_conflict');
    assert.equal(await code(v.updateRevocations(a.list({ serial: '18446744073709551615' as unknown as number }))), 'list_malformed');
    assert.equal(v.revocationSerial, 5n);
  });

  it('handles serials beyond 2^53 exactly', async () => {
    const v = await verifier();
    const hdr = JSON.stringify({ typ: 'keymint-revocations+jwt', alg: 'EdDSA', kid: a.kid });
    const at = (serial: string) => a.signRaw(hdr, JSON.stringify(listPayload()).replace('"serial":1', `"serial":${serial}`));
    assert.equal(await code(v.updateRevocations(at('18446744073709551614'))), 'installed');
    assert.equal(await code(v.updateRevocations(at('18446744073709551613'))), 'list_rollback');
    assert.equal(await code(v.updateRevocations(at('18446744073709551615'))), 'installed');
    assert.equal(await code(v.updateRevocations(at('18446744073709551616'))), 'list_malformed');
  });

  it('drops the serial floor when its key leaves the key set, with the replay guard', async () => {
    const v = await verifier();
    assert.equal(await code(v.updateRevocations(b.list({ serial: 1000, iat: NOW }))), 'installed');
    assert.equal(await code(v.updateRevocations(a.list({ serial: 2 }))), 'list_rollback');
    v.setKeys(await KeySet.parse(jwks(a)));
    // An old list replayed: issued before the one in force by more than the leeway.
    assert.equal(await code(v.updateRevocations(a.list({ serial: 2, iat: NOW - 61 }))), 'list_replayed');
    assert.equal(await code(v.updateRevocations(a.list({ serial: 2, iat: NOW - 60 }))), 'installed');
  });

  it('drops the serial floor when the offered list revokes its key, and refuses lists signed by a revoked kid', async () => {
    const v = await verifier();
    assert.equal(await code(v.updateRevocations(b.list({ serial: 1000 }))), 'installed');
    assert.equal(await code(v.updateRevocations(a.list({ serial: 2, entries: [entry('kid', b.kid)] }))), 'installed');
    assert.equal(await code(v.updateRevocations(b.list({ serial: 3000 }))), 'list_signed_by_revoked_key');
  });

  it('keeps the list in force when a list is refused', async () => {
    const v = await verifier();
    await v.updateRevocations(a.list({ serial: 7 }));
    await code(v.updateRevocations(a.list({ serial: 8, iss: 'https://evil' })));
    assert.equal(v.revocationSerial, 7n);
  });
});
