import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LiveSources, Verifier, VerifyError, discoverSources } from '../src/index.js';
import { AUDIENCE, ISSUER, TestKey, jwks } from './support/issuer-double.js';

async function until(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const s = createServer(handler).listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => { s.closeAllConnections(); s.close(); } };
}

describe('live sources', () => {
  it('uses ETags, refetches once per cooldown on unknown kids, re-offers a refused list, and pushes lists', async () => {
    const k = new TestKey();
    const now = Math.floor(Date.now() / 1000);
    const hits = { jwks: 0, jwks304: 0, list: 0, listIfNoneMatch: [] as (string | undefined)[] };
    let list = k.list({ iat: now, exp: now + 3600, serial: 1 });
    let sse: ServerResponse | undefined;
    const srv = await serve((req, res) => {
      if (req.url === '/jwks') {
        hits.jwks++;
        if (req.headers['if-none-match'] === '"k1"') {
          hits.jwks304++;
          res.writeHead(304).end();
        } else res.writeHead(200, { etag: '"k1"', 'cache-control': 'max-age=60' }).end(jwks(k));
      } else if (req.url === '/list') {
        hits.list++;
        hits.listIfNoneMatch.push(req.headers['if-none-match']);
        res.writeHead(200, { etag: `"${list.length}"` }).end(list);
      } else if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n');
        sse = res;
      } else res.writeHead(404).end();
    });
    const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE });
    const live = LiveSources.start(v, { jwks: { url: `${srv.url}/jwks` }, revocations: { url: `${srv.url}/list` }, events: `${srv.url}/events`, minRefreshSecs: 0.05, maxRefreshSecs: 0.1, kidCooldownSecs: 60 });
    // Until the key set arrives, the verifier vouches for nothing (the check runs before any await).
    const early = v.verify(k.token({ iat: now, exp: now + 600, nbf: now }));
    assert.equal(await early.catch((e: VerifyError) => e.code), 'sources_unavailable');
    try {
      await live.ready();
      const token = k.token({ iat: now, exp: now + 600, nbf: now });
      assert.equal((await v.verify(token)).claims.tenant, 'acme');
      // Unknown kids: one refetch per cooldown, however many tokens name them.
      const before = live.stats.kidRefetches;
      for (let i = 0; i < 20; i++) await v.verify(new TestKey().token()).catch(() => undefined);
      await until('one kid refetch', 2000, () => live.stats.kidRefetches === before + 1);
      await until('a 304', 2000, () => hits.jwks304 >= 1);
      assert.equal(live.stats.kidRefetches, before + 1);
      // The push channel installs a list at once.
      await until('the push channel', 2000, () => sse !== undefined && live.pushing);
      const revoking = k.list({ iat: now, exp: now + 3600, serial: 2, entries: [{ kind: 'key', id: 'k7Gx2', revoked_at: now, drop_after: now + 60 }] });
      sse?.write(`event: revocations\nid: 2\ndata: ${revoking}\n\n`);
      await until('the pushed revocation', 2000, async () => (await v.verify(token).catch((e: VerifyError) => e.code)) === 'revoked');
      // A refused list (rollback) does not advance the ETag: it is fetched again, not 304'd.
      list = k.list({ iat: now, exp: now + 3600, serial: 1, entries: [{ kind: 'jti', id: 'x', revoked_at: now, drop_after: now + 60 }] });
      const n = hits.list;
      await until('two more list fetches', 3000, () => hits.list >= n + 2);
      const last = hits.listIfNoneMatch.slice(-2);
      assert.ok(last.every((t) => t !== `"${list.length}"`), 'the refused list was answered by ETag');
      assert.equal(v.revocationSerial, 2n);
    } finally {
      live.stop();
      srv.close();
    }
  });

  // Found in review: with the push channel up, the list is polled every maxRefreshSecs (the
  // fallback); when the channel went down and could not reconnect, the poller slept on, so a
  // revocation waited up to 5 minutes.
  it('goes back to polling the list at once when the push channel is lost', async () => {
    const k = new TestKey();
    const now = Math.floor(Date.now() / 1000);
    let list = k.list({ iat: now, exp: now + 3600, serial: 1 });
    let eventsUp = true;
    let sse: ServerResponse | undefined;
    const srv = await serve((req, res) => {
      if (req.url === '/jwks') res.writeHead(200).end(jwks(k));
      else if (req.url === '/list') res.writeHead(200).end(list);
      else if (req.url === '/events' && eventsUp) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n');
        sse = res;
      } else res.writeHead(503).end();
    });
    const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE });
    const live = LiveSources.start(v, { jwks: { url: `${srv.url}/jwks` }, revocations: { url: `${srv.url}/list` }, events: `${srv.url}/events`, minRefreshSecs: 0.05, maxRefreshSecs: 600 });
    try {
      await live.ready();
      const token = k.token({ iat: now, exp: now + 600, nbf: now });
      // The channel is up and the list has been polled under it: the next poll is 600 s away.
      await until('a list poll under push', 2000, () => sse !== undefined && live.stats.listPollsPushed >= 1);
      // A revocation is published while the channel goes down for good.
      list = k.list({ iat: now, exp: now + 3600, serial: 2, entries: [{ kind: 'key', id: 'k7Gx2', revoked_at: now, drop_after: now + 60 }] });
      eventsUp = false;
      sse?.destroy();
      await until('the revocation, polled once the channel was lost', 5000, async () => (await v.verify(token).catch((e: VerifyError) => e.code)) === 'revoked');
    } finally {
      live.stop();
      srv.close();
    }
  });

  // Found in review: a half-open push connection (NAT expiry, load-balancer failover) was noticed
  // only by the fetch's own body timeout (300 s in undici), while polling stayed at the fallback.
  it('reconnects a push stream that has gone silent', async () => {
    const k = new TestKey();
    const now = Math.floor(Date.now() / 1000);
    let streams = 0;
    const srv = await serve((req, res) => {
      if (req.url === '/jwks') res.writeHead(200).end(jwks(k));
      else if (req.url === '/list') res.writeHead(200).end(k.list({ iat: now, exp: now + 3600 }));
      else if (req.url === '/events') {
        streams++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n'); // and then nothing, connection open
      } else res.writeHead(404).end();
    });
    const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE });
    const live = LiveSources.start(v, { jwks: { url: `${srv.url}/jwks` }, revocations: { url: `${srv.url}/list` }, events: `${srv.url}/events`, minRefreshSecs: 0.05, maxRefreshSecs: 600, eventsIdleSecs: 0.3 });
    try {
      await live.ready();
      await until('a second stream after the first went silent', 5000, () => streams >= 2);
    } finally {
      live.stop();
      srv.close();
    }
  });

  // The push stream's bound: an event longer than a list may be (here many short `data:` lines
  // adding up past maxListBytes) is not buffered on; the stream is dropped and reconnected.
  it('drops a push stream whose event outgrows the list cap, and reconnects', async () => {
    const k = new TestKey();
    const now = Math.floor(Date.now() / 1000);
    let streams = 0;
    const srv = await serve((req, res) => {
      if (req.url === '/jwks') res.writeHead(200).end(jwks(k));
      else if (req.url === '/list') res.writeHead(200).end(k.list({ iat: now, exp: now + 3600 }));
      else if (req.url === '/events') {
        streams++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: revocations\n');
        for (let i = 0; i < 200; i++) res.write(`data: ${'x'.repeat(100)}\n`);
      } else res.writeHead(404).end();
    });
    const kinds: string[] = [];
    const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE, maxListBytes: 4096 });
    const live = LiveSources.start(v, { jwks: { url: `${srv.url}/jwks` }, revocations: { url: `${srv.url}/list` }, events: `${srv.url}/events`, minRefreshSecs: 0.05, maxRefreshSecs: 600, onEvent: (e) => kinds.push(e.kind) });
    try {
      await live.ready();
      await until('a second stream after the first outgrew the cap', 5000, () => streams >= 2);
      assert.ok(kinds.includes('events_oversize'), kinds.join(' '));
      assert.equal(live.stats.events, 0);
    } finally {
      live.stop();
      srv.close();
    }
  });

  it('refuses an idle timeout that would cut every stream at once', () => {
    const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE });
    for (const eventsIdleSecs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 3e6]) {
      assert.throws(() => LiveSources.start(v, { jwks: { url: 'http://127.0.0.1:9/jwks' }, revocations: { url: 'http://127.0.0.1:9/list' }, events: 'http://127.0.0.1:9/events', eventsIdleSecs }), /eventsIdleSecs/, String(eventsIdleSecs));
    }
  });

  it('fails closed once the key set could not be refreshed for maxStale', async () => {
    const k = new TestKey();
    const now = Math.floor(Date.now() / 1000);
    let up = true;
    const srv = await serve((req, res) => {
      if (!up) res.writeHead(500).end();
      else if (req.url === '/jwks') res.writeHead(200).end(jwks(k));
      else res.writeHead(200).end(k.list({ iat: now, exp: now + 3600 }));
    });
    let clock = now;
    const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE, now: () => clock });
    const live = LiveSources.start(v, { jwks: { url: `${srv.url}/jwks` }, revocations: { url: `${srv.url}/list` }, minRefreshSecs: 0.05, maxRefreshSecs: 0.05, maxStaleSecs: 120 });
    try {
      await live.ready();
      up = false;
      const token = k.token({ iat: now, exp: now + 600, nbf: now });
      await new Promise((r) => setTimeout(r, 200));
      clock = now + 100; // stale if error: the set in force still serves
      assert.equal((await v.verify(token)).claims.sub, 'k7Gx2');
      clock = now + 121;
      assert.equal(await v.verify(token).catch((e: VerifyError) => e.code), 'sources_unavailable');
    } finally {
      live.stop();
      srv.close();
    }
  });

  it('installs a list file that ends in a newline, as the Rust and Python verifiers do', async () => {
    const k = new TestKey();
    const now = Math.floor(Date.now() / 1000);
    const dir = await mkdtemp(join(tmpdir(), 'keymint-node-'));
    await writeFile(join(dir, 'jwks.json'), jwks(k) + '\n');
    await writeFile(join(dir, 'revocations.jws'), k.list({ iat: now, exp: now + 3600 }) + '\n');
    const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE });
    const live = LiveSources.start(v, { jwks: { file: join(dir, 'jwks.json') }, revocations: { file: join(dir, 'revocations.jws') }, minRefreshSecs: 0.05, maxRefreshSecs: 0.1 });
    try {
      await live.ready();
      const token = k.token({ iat: now, exp: now + 600, nbf: now });
      assert.equal((await v.verify(token)).claims.tenant, 'acme');
    } finally {
      live.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('discovers sources only over https (plain http to this machine), with a capped body', async () => {
    await assert.rejects(discoverSources('http://issuer.example'), /https/);
    const srv = await serve((req, res) => {
      if (req.url === '/.well-known/oauth-authorization-server') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({ issuer: srv.url, jwks_uri: 'http://keys.example/jwks.json', keymint_revocation_list_uri: `${srv.url}/list` }),
        );
      } else res.writeHead(404).end();
    });
    try {
      // Metadata naming a plain-http key set elsewhere is refused, as the issuer URL would be.
      await assert.rejects(discoverSources(srv.url), /jwks_uri must be https/);
    } finally {
      srv.close();
    }
  });
});
