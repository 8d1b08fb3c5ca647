/**
 * The shared conformance corpus. The real corpus (tests/fixtures/conformance) must exist and have
 * cases: a missing corpus fails, never skips. The runner itself is checked on a small corpus built
 * here, so a runner bug cannot hide behind a missing corpus.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

import { caseFiles, runCase } from './support/corpus-runner.js';
import { AUDIENCE, ISSUER, NOW, TestKey, entry, jwks } from './support/issuer-double.js';

const CORPUS = fileURLToPath(new URL('../../../../tests/fixtures/conformance', import.meta.url));

describe('conformance corpus', () => {
  it('runs every case of tests/fixtures/conformance', async () => {
    let files: string[];
    try {
      files = caseFiles(CORPUS);
    } catch (e) {
      assert.fail(`the conformance corpus is missing or empty at ${CORPUS}: ${(e as Error).message}`);
    }
    for (const f of files) await runCase(CORPUS, f);
  });

  it('the runner runs a corpus in the README format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keymint-corpus-'));
    for (const d of ['cases', 'jwks', 'lists']) mkdirSync(join(dir, d));
    const k = new TestKey();
    writeFileSync(join(dir, 'jwks/main.json'), jwks(k));
    writeFileSync(join(dir, 'lists/revoke-key.jws'), k.list({ serial: 2, entries: [entry('key', 'k7Gx2')] }));
    const token = k.token({ jti: 't-1' });
    const verifier = { issuer: ISSUER, audiences: [AUDIENCE], leeway: 60, list_validity_cap: 604800 };
    writeFileSync(
      join(dir, 'cases/001-revoked.json'),
      JSON.stringify({
        description: 'a token whose key is revoked is refused',
        verifier,
        jwks: 'jwks/main.json',
        steps: [
          { at: NOW, token, expect: { invalid: 'no_revocation_list' } },
          { at: NOW, list: { jws: k.list({ serial: 1 }) }, expect: 'installed' },
          { at: NOW + 10, token, require: { scopes: ['orders:read'], tenant: 'acme' }, expect: { valid: { sub: 'k7Gx2', tenant: 'acme', jti: 't-1' } } },
          { at: NOW + 10, token, require: { scopes: ['admin'] }, expect: { invalid: 'insufficient_scope' } },
          { at: NOW + 10, list: { file: 'lists/revoke-key.jws' }, expect: 'installed' },
          { at: NOW + 10, list: { jws: k.list({ serial: 1 }) }, expect: { refused: 'list_rollback' } },
          { at: NOW + 10, token, expect: { invalid: 'revoked' } },
          { at: NOW + 10, jwks: 'jwks/main.json' },
        ],
      }),
    );
    writeFileSync(join(dir, 'cases/002-typo.json'), JSON.stringify({ description: 'x', verifier, jwks: 'jwks/main.json', steps: [{ at: NOW, tokn: token }] }));
    const files = caseFiles(dir);
    assert.deepEqual(files, ['001-revoked.json', '002-typo.json']);
    await runCase(dir, '001-revoked.json');
    await assert.rejects(runCase(dir, '002-typo.json'));
    const empty = mkdtempSync(join(tmpdir(), 'keymint-corpus-empty-'));
    mkdirSync(join(empty, 'cases'));
    assert.throws(() => caseFiles(empty));
  });
});
