#!/usr/bin/env node
// Revocation-to-refusal latency over the push channel, on loopback, against the real keymint
// binary: start `keymint serve` on a free port with a temporary data dir, verify a token with a
// URL-sourced verifier, revoke its key with `keymint keys revoke`, and poll (with a deadline) until
// the verifier refuses the token. Repeated ROUNDS times; prints every latency and the p99.
//
// Usage: KEYMINT_BIN=path/to/keymint node scripts/push-latency.mjs [rounds]
// (needs a built package: npm run build). Latency is measured from the moment the revoke command
// is started, so it includes that process's start-up: an upper bound on what a verifier sees.

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { LiveSources, Verifier, VerifyError, discoverSources } from '../dist/index.js';
import { TokenClient } from '../dist/token-client.js';

const run = promisify(execFile);
const AUDIENCE = 'https://api.example';

/** The keymint binary: KEYMINT_BIN, else target/release/keymint (or under CARGO_TARGET_DIR). */
export function keymintBin() {
  if (process.env.KEYMINT_BIN) return process.env.KEYMINT_BIN;
  const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
  const target = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, 'target');
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

/** Starts an issuer; returns { url, dataDir, stop, createKey, revokeKey }. */
export async function startIssuer(bin = keymintBin()) {
  if (!existsSync(bin)) throw new Error(`keymint binary not found at ${bin} (set KEYMINT_BIN)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'keymint-node-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
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

/** Runs `rounds` revocations; returns the latencies in ms. */
export async function measure(rounds = 20, bin = keymintBin()) {
  const issuer = await startIssuer(bin);
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
      const revoking = issuer.revokeKey(id);
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

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rounds = Number(process.argv[2] ?? 20);
  const latencies = await measure(rounds);
  console.log(`revocation-to-refusal over the push channel, ${rounds} revocations (ms): ${latencies.map((l) => l.toFixed(0)).join(' ')}`);
  console.log(`p99 ${p99(latencies).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`);
}
