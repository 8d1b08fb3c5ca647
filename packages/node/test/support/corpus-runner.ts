/**
 * Runs the shared conformance corpus (tests/fixtures/conformance/README.md): every case from a fresh
 * verifier, every step with the clock pinned to its `at`. Unknown members are errors: a typo must
 * not turn a case into a no-op.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { AccessError, KeySet, UpdateError, Verifier, VerifyError } from '../../src/index.js';

type Obj = Record<string, unknown>;

function only(o: Obj, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) assert.ok(allowed.includes(k), `${where}: unknown member ${JSON.stringify(k)}`);
}

/** The case files, in file-name order; fails if there are none. */
export function caseFiles(dir: string): string[] {
  const files = readdirSync(join(dir, 'cases')).filter((f) => f.endsWith('.json')).sort();
  assert.ok(files.length > 0, `${join(dir, 'cases')} has no cases`);
  return files;
}

export async function runCase(dir: string, file: string): Promise<void> {
  const c = JSON.parse(readFileSync(join(dir, 'cases', file), 'utf8')) as Obj;
  only(c, ['description', 'verifier', 'jwks', 'steps'], file);
  const cfg = c.verifier as Obj;
  only(cfg, ['issuer', 'audiences', 'leeway', 'list_validity_cap', 'max_token_bytes'], `${file} verifier`);
  let now = 0;
  const v = new Verifier({
    issuer: cfg.issuer as string,
    audiences: cfg.audiences as string[],
    keys: await KeySet.parse(readFileSync(join(dir, c.jwks as string))),
    leewaySecs: (cfg.leeway as number | undefined) ?? 60,
    listValidityCapSecs: (cfg.list_validity_cap as number | undefined) ?? 604800,
    maxTokenBytes: (cfg.max_token_bytes as number | undefined) ?? 8192,
    now: () => now,
  });
  for (const [i, step] of (c.steps as Obj[]).entries()) {
    const where = `${file} step ${i}`;
    assert.ok(Number.isInteger(step.at), `${where}: at`);
    now = step.at as number;
    if ('jwks' in step) {
      only(step, ['at', 'jwks'], where);
      v.setKeys(await KeySet.parse(readFileSync(join(dir, step.jwks as string))));
    } else if ('list' in step) {
      only(step, ['at', 'list', 'expect'], where);
      const l = step.list as Obj;
      only(l, ['file', 'jws'], `${where} list`);
      const jws = typeof l.file === 'string' ? readFileSync(join(dir, l.file), 'utf8').trim() : (l.jws as string);
      const got = await v.updateRevocations(jws).then(
        () => 'installed',
        (e: unknown) => {
          if (e instanceof UpdateError) return { refused: e.code };
          throw e;
        },
      );
      assert.deepEqual(got, step.expect, where);
    } else if ('token' in step) {
      only(step, ['at', 'token', 'expect', 'require', 'dpop'], where);
      const token = step.token as string;
      const expect = step.expect as Obj;
      only(expect, ['valid', 'invalid'], `${where} expect`);
      let got: Obj;
      try {
        const d = step.dpop as Obj | undefined;
        if (d !== undefined) only(d, ['proof', 'method', 'url'], `${where} dpop`);
        const t = d === undefined ? await v.verify(token) : await v.verifyDpop(token, d.proof as string, d.method as string, d.url as string);
        const req = step.require as Obj | undefined;
        if (req !== undefined) {
          only(req, ['scopes', 'tenant'], `${where} require`);
          t.requireScopes(...((req.scopes as string[] | undefined) ?? []));
          if (typeof req.tenant === 'string') t.requireTenant(req.tenant);
        }
        got = { valid: t.claims };
      } catch (e) {
        if (e instanceof VerifyError || e instanceof AccessError) got = { invalid: e.code };
        else throw e;
      }
      if ('invalid' in expect) {
        assert.deepEqual(got, { invalid: expect.invalid }, where);
      } else {
        assert.ok('valid' in got, `${where}: expected valid, got ${JSON.stringify(got)}`);
        const claims = got.valid as Obj;
        for (const [k, want] of Object.entries(expect.valid as Obj)) assert.deepEqual(claims[k], want, `${where}: claim ${k}`);
      }
    } else {
      assert.fail(`${where}: a step is one of jwks, list or token`);
    }
  }
}
