#!/usr/bin/env node
// Revocation-to-refusal latency over the push channel, on loopback, against the real keymint
// binary: start `keymint serve` on a free port with a temporary data dir, verify a token with a
// URL-sourced verifier, revoke its key with `keymint keys revoke`, and poll (with a deadline) until
// the verifier refuses the token. Repeated ROUNDS times; prints every latency and the p99.
//
// Usage: KEYMINT_BIN=path/to/keymint node scripts/push-latency.mjs [rounds] [--via revoke|report]
// (needs a built package: npm run build). Latency is measured from the moment the revoke command
// is started, so it includes that process's start-up: an upper bound on what a verifier sees.
//
// `--via report`: the key is revoked by a secret-scanning report instead. The issuer is started
// with `--secret-scanning-keys` on the test scanner's public-key document
// (issuer/tests/fixtures/secret-scanning/), and each round POSTs to /v1/secret-scanning/github a
// report naming that round's new key (so no body is ever a replay), signed with the fixture's
// private key. Latency runs from just before the POST until the verifier refuses the token; the
// answer (200, `true_positive`) is checked before polling starts, so it is counted too. Prints
// p50/p99/max and exits 1 when the p99 is a second or more.

import { execFile, spawn } from 'node:child_process';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { LiveSources, Verifier, VerifyError, discoverSources } from '../dist/index.js';
import { TokenClient } from '../dist/token-client.js';

const run = promisify(execFile);
const AUDIENCE = 'https://api.example';
const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
/** The test scanner's public-key document and the private half of its current key. */
const SCANNER = join(ROOT, 'issuer', 'tests', 'fixtures', 'secret-scanning');
const SCANNER_KEY_ID = 'bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c';

/** The keymint binary: KEYMINT_BIN, else target/release/keymint (or under CARGO_TARGET_DIR). */
export function keymintBin() {
  if (process.env.KEYMINT_BIN) return process.env.KEYMINT_BIN;
  const target = process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
  return join(target, 'release', 'keymint');
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Polls `check` until it returns true, or fails after `ms`. Never sleep-then-assert. */
export async function until(what, ms, check, everyMs = 5) {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Starts an issuer (`serveArgs` added to `keymint serve`); returns { url, dataDir, stop, createKey, revokeKey }. */
export async function startIssuer(bin = keymintBin(), serveArgs = []) {
  if (!existsSync(bin)) throw new Error(`keymint binary not found at ${bin} (set KEYMINT_BIN)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'keymint-node-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, ...serveArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    // Keep only the tail, for a failure message (the log has no secrets, but bound it anyway).
    stderr = (stderr + d).slice(-4000);
  });
  const stop = () => {
    child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await until('the issuer to answer /healthz', 15_000, async () => {
      if (child.exitCode !== null) throw new Error(`keymint serve exited: ${stderr}`);
      try {
        return (await fetch(`${url}/healthz`)).ok;
      } catch {
        return false;
      }
    }, 50);
  } catch (e) {
    stop();
    throw e;
  }
  const createKey = async () => {
    const { stdout } = await run(bin, ['keys', 'create', '--data-dir', dataDir, '--tenant', 'acme', '--scope', 'orders:read', '--audience', AUDIENCE]);
    const key = stdout.split('\n').find((l) => l.startsWith('km_'));
    const id = /key_id:\s+(\S+)/.exec(stdout)?.[1];
    if (!key || !id) throw new Error('keys create printed no key');
    return { key, id };
  };
  const revokeKey = (id) => run(bin, ['keys', 'revoke', '--data-dir', dataDir, id]);
  return { url, dataDir, stop, createKey, revokeKey };
}

/**
 * POSTs a secret-scanning report naming `apiKey`, signed like the scanner signs (ECDSA P-256,
 * SHA-256, DER, base64) with the fixture's private key; fails unless the answer is 200 with one
 * `true_positive` verdict for that key.
 */
export async function reportLeak(issuerUrl, apiKey, scannerKey = createPrivateKey(readFileSync(join(SCANNER, 'scanner-key.pk8.pem')))) {
  const body = Buffer.from(JSON.stringify([{ token: apiKey, type: 'keymint_api_key', url: 'https://github.com/o/r/blob/x/f', source: 'content' }]));
  const signature = sign('sha256', body, { key: scannerKey, dsaEncoding: 'der' }).toString('base64');
  const res = await fetch(`${issuerUrl}/v1/secret-scanning/github`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Github-Public-Key-Identifier': SCANNER_KEY_ID, 'Github-Public-Key-Signature': signature },
    body,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`the report was answered ${res.status}: ${text}`);
  const answer = JSON.parse(text);
  const hash = createHash('sha256').update(apiKey).digest('hex');
  if (!Array.isArray(answer) || answer.length !== 1 || answer[0].label !== 'true_positive' || answer[0].token_hash !== hash || answer[0].token_type !== 'keymint_api_key') {
    throw new Error(`the report was not answered true_positive for the key: ${text}`);
  }
}

/**
 * Runs `rounds` revocations; returns the latencies in ms. `via`: 'revoke' (`keymint keys revoke`)
 * or 'report' (a signed secret-scanning report, see the header).
 */
export async function measure(rounds = 20, bin = keymintBin(), via = 'revoke') {
  if (via !== 'revoke' && via !== 'report') throw new Error(`via must be revoke or report, not ${via}`);
  const issuer = await startIssuer(bin, via === 'report' ? ['--secret-scanning-keys', join(SCANNER, 'public-keys.json')] : []);
  const scannerKey = via === 'report' ? createPrivateKey(readFileSync(join(SCANNER, 'scanner-key.pk8.pem'))) : undefined;
  const verifier = new Verifier({ issuer: issuer.url, audiences: AUDIENCE });
  let live;
  try {
    live = LiveSources.start(verifier, await discoverSources(issuer.url));
    await Promise.race([live.ready(), new Promise((_, fail) => setTimeout(() => fail(new Error('sources not ready in 15 s')), 15_000))]);
    await until('the push channel', 10_000, () => live.pushing, 20);
    const latencies = [];
    for (let i = 0; i < rounds; i++) {
      const { key, id } = await issuer.createKey();
      const client = new TokenClient({ issuer: issuer.url, apiKey: key, audience: AUDIENCE });
      const { accessToken } = await client.token();
      const verified = await verifier.verify(accessToken);
      if (verified.claims.sub !== id) throw new Error('verified token names another key');
      const t0 = performance.now();
      let revoking;
      // A report's answer is awaited (and checked) before polling, so it counts in the latency.
      if (via === 'report') await reportLeak(issuer.url, key, scannerKey);
      else revoking = issuer.revokeKey(id);
      await until(`round ${i}: the verifier to refuse the revoked key's token`, 10_000, async () => {
        try {
          await verifier.verify(accessToken);
          return false;
        } catch (e) {
          if (e instanceof VerifyError && e.code === 'revoked') return true;
          throw e;
        }
      }, 2);
      latencies.push(performance.now() - t0);
      await revoking;
    }
    return latencies;
  } finally {
    live?.stop();
    issuer.stop();
  }
}

export function p99(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)];
}

export function p50(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** `[rounds] [--via revoke|report]` (also `--via=report`). */
function parseArgs(args) {
  let rounds = 20;
  let via = 'revoke';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--via') via = args[++i];
    else if (a.startsWith('--via=')) via = a.slice('--via='.length);
    else if (/^\d+$/.test(a)) rounds = Number(a);
    else throw new Error(`usage: push-latency.mjs [rounds] [--via revoke|report] (got ${a})`);
  }
  if (via !== 'revoke' && via !== 'report') throw new Error(`--via must be revoke or report, not ${via}`);
  return { rounds, via };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { rounds, via } = parseArgs(process.argv.slice(2));
  const latencies = await measure(rounds, keymintBin(), via);
  if (via === 'revoke') {
    console.log(`revocation-to-refusal over the push channel, ${rounds} revocations (ms): ${latencies.map((l) => l.toFixed(0)).join(' ')}`);
    console.log(`p99 ${p99(latencies).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`);
  } else {
    console.log(`report-to-refusal over the push channel, ${rounds} secret-scanning reports (ms): ${latencies.map((l) => l.toFixed(0)).join(' ')}`);
    console.log(`p50 ${p50(latencies).toFixed(0)} ms, p99 ${p99(latencies).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`);
    if (p99(latencies) >= 1000) {
      console.error(`p99 ${p99(latencies).toFixed(0)} ms is not under one second`);
      process.exitCode = 1;
    }
  }
}
