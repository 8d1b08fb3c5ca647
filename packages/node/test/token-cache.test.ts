import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { KeySet, Verifier, VerifyError } from '../src/index.js';
import { CacheShares, DEFAULT_CACHE_SHARE_PERCENT, HEAP_SLACK, MIN_SHARE, entryWeight } from '../src/token-cache.js';
import { AUDIENCE, ISSUER, NOW, TestKey, jwks } from './support/issuer-double.js';

const key = new TestKey('EdDSA');
/** A second signing key, for tokens that must outlive `key`'s in the cache. */
const otherKey = new TestKey('EdDSA');

async function verifier(opts: Partial<ConstructorParameters<typeof Verifier>[0]> = {}): Promise<Verifier> {
  const v = new Verifier({ issuer: ISSUER, audiences: AUDIENCE, keys: await KeySet.parse(jwks(key, otherKey)), now: () => NOW, ...opts });
  await v.updateRevocations(key.list());
  return v;
}

/** From now on a token can only pass as a cache hit: the miss path (parsing, signature) fails. */
function withoutMissPath(v: Verifier): void {
  (v as unknown as { verifyUncached: () => Promise<never> }).verifyUncached = () => Promise.reject(new Error('the miss path ran'));
}

// Every token of these tests has the same length (same claim lengths, a fixed-size jti and
// signature), so each weighs the same; a cache of 40 of them gives each key room for 4.
const WEIGHT = entryWeight(key.token({ sub: 'keyA' }).length);
const CACHE_BYTES = 40 * WEIGHT;
const PER_KEY = 4;

describe('each API key gets its own share of the verified-token cache', () => {
  it('one key presenting many valid tokens cannot flush another key’s cached token', async () => {
    assert.equal(DEFAULT_CACHE_SHARE_PERCENT, 10);
    assert.equal(new CacheShares(CACHE_BYTES).share, PER_KEY * WEIGHT);
    const v = await verifier({ cacheBytes: CACHE_BYTES });
    const b = key.token({ sub: 'keyB' });
    await v.verify(b);
    assert.equal(v.cachedTokens, 1);
    // Three times as many distinct valid tokens as the whole cache holds.
    for (let i = 0; i < 60; i++) assert.equal((await v.verify(key.token({ sub: 'keyA' }))).claims.sub, 'keyA');
    // keyA holds its share and no more; keyB's token is still cached ...
    assert.equal(v.cachedTokens, 1 + PER_KEY);
    withoutMissPath(v);
    // ... and answered as a hit.
    assert.equal((await v.verify(b)).claims.sub, 'keyB');
    await assert.rejects(v.verify(key.token({ sub: 'keyA' })), /the miss path ran/);
  });

  it('a key past its share is cached again once its earlier tokens’ exp + leeway has passed', async () => {
    const v = await verifier({ cacheBytes: CACHE_BYTES, leewaySecs: 60 });
    for (let i = 0; i < PER_KEY; i++) await v.verify(key.token({ sub: 'keyA', exp: NOW + 100 }));
    assert.equal(v.cachedTokens, PER_KEY);
    const later = key.token({ sub: 'keyA', exp: NOW + 1000 });
    await v.verify(later, NOW);
    assert.equal(v.cachedTokens, PER_KEY, 'over its share: verified, not cached');
    // The earlier tokens could still pass until NOW + 100 + 60.
    await v.verify(later, NOW + 159);
    assert.equal(v.cachedTokens, PER_KEY);
    await v.verify(later, NOW + 160);
    // Cached, and the four that can no longer pass have left the cache.
    assert.equal(v.cachedTokens, 1);
    withoutMissPath(v);
    assert.equal((await v.verify(later, NOW + 160)).claims.sub, 'keyA');
  });

  it('a token past its time leaves the cache when the next token is cached, never presented again', async () => {
    const v = await verifier({ cacheBytes: CACHE_BYTES, leewaySecs: 60 });
    const short = key.token({ sub: 'keyA', exp: NOW + 100 });
    await v.verify(short, NOW);
    await v.verify(key.token({ sub: 'keyB', exp: NOW + 1000 }), NOW + 159);
    assert.equal(v.cachedTokens, 2, 'still able to pass');
    await v.verify(key.token({ sub: 'keyB', exp: NOW + 1000 }), NOW + 160);
    assert.equal(v.cachedTokens, 2, 'the short-lived token left, the new one came');
    withoutMissPath(v);
    await assert.rejects(v.verify(short, NOW + 10), /the miss path ran/);
  });

  it('an expired token presented again leaves the cache at once', async () => {
    const v = await verifier({ cacheBytes: CACHE_BYTES, leewaySecs: 60 });
    const t = key.token({ sub: 'keyA', exp: NOW + 100 });
    await v.verify(t, NOW);
    assert.equal(v.cachedTokens, 1);
    await assert.rejects(v.verify(t, NOW + 160), (e: unknown) => e instanceof VerifyError && e.code === 'expired');
    assert.equal(v.cachedTokens, 0);
  });

  it('a key past its share whose tokens all left the cache is cached again at once, before they expire', async () => {
    const v = await verifier({ cacheBytes: CACHE_BYTES });
    for (let i = 0; i < PER_KEY; i++) await v.verify(key.token({ sub: 'keyA' }));
    assert.equal(v.cachedTokens, PER_KEY);
    const byOther = otherKey.token({ sub: 'keyA' });
    await v.verify(byOther);
    assert.equal(v.cachedTokens, PER_KEY, 'over its share: verified, not cached');
    // `key` leaves the key set: its tokens leave the cache, and with them keyA's share, although
    // they could have passed until NOW + 600 + 60.
    v.setKeys(await KeySet.parse(jwks(otherKey)));
    assert.equal(v.cachedTokens, 0);
    await v.verify(byOther);
    assert.equal(v.cachedTokens, 1);
    withoutMissPath(v);
    assert.equal((await v.verify(byOther)).claims.sub, 'keyA');
  });

  it('a key whose tokens were evicted by other keys\u2019 is cached again at once', async () => {
    const v = await verifier({ cacheBytes: CACHE_BYTES });
    for (let i = 0; i < PER_KEY; i++) await v.verify(key.token({ sub: 'keyA' }));
    await v.verify(key.token({ sub: 'keyA' }));
    assert.equal(v.cachedTokens, PER_KEY, 'over its share: verified, not cached');
    // Other keys' tokens fill the cache: keyA's, the least recently used, are evicted.
    for (let i = 0; i < 40; i++) await v.verify(key.token({ sub: `other${i}` }));
    // Eviction released keyA's share: its next token is cached (answered below as a hit).
    const again = key.token({ sub: 'keyA' });
    await v.verify(again);
    withoutMissPath(v);
    assert.equal((await v.verify(again)).claims.sub, 'keyA');
  });

  it('a token refused a place in the cache is still verified, with every check', async () => {
    const v = await verifier({ cacheBytes: CACHE_BYTES });
    for (let i = 0; i < PER_KEY; i++) await v.verify(key.token({ sub: 'keyA' }));
    const refused = key.token({ sub: 'keyA', tenant: 'globex', scope: 'orders:read' });
    for (let i = 0; i < 2; i++) {
      const t = await v.verify(refused);
      assert.equal(t.claims.sub, 'keyA');
      assert.equal(t.claims.tenant, 'globex');
      assert.equal(t.claims.exp, NOW + 600);
      assert.ok(t.hasScope('orders:read'));
      assert.equal(v.cachedTokens, PER_KEY);
    }
    // Still checked in full: expired past exp + leeway, and a forged signature fails.
    const e = await v.verify(refused, NOW + 660).catch((x: unknown) => x);
    assert.ok(e instanceof VerifyError && e.code === 'expired');
    const [h, p] = refused.split('.') as [string, string, string];
    const forged = `${h}.${p}.${key.token({ sub: 'keyA' }).split('.')[2] as string}`;
    const f = await v.verify(forged).catch((x: unknown) => x);
    assert.ok(f instanceof VerifyError && f.code === 'bad_signature');
  });
});

describe('CacheShares', () => {
  const until = BigInt(NOW + 600);
  const now = BigInt(NOW);

  it('refuses one key past its share while another is admitted', () => {
    const shares = new CacheShares(100_000);
    assert.equal(shares.share, 10_000);
    for (let i = 0; i < 10; i++) assert.notEqual(shares.admit('a', until, 1_000, now), undefined);
    assert.equal(shares.held('a'), 10_000);
    assert.equal(shares.admit('a', until, 1, now), undefined);
    assert.notEqual(shares.admit('b', until, 1_000, now), undefined);
    assert.equal(shares.held('b'), 1_000);
  });

  it('gives a key its share back at the instant its tokens’ until passes', () => {
    const shares = new CacheShares(100_000);
    assert.notEqual(shares.admit('a', until, 10_000, now), undefined);
    assert.equal(shares.admit('a', until + 600n, 1, until - 1n), undefined);
    assert.notEqual(shares.admit('a', until + 600n, 10_000, until), undefined);
    assert.equal(shares.held('a'), 10_000);
  });

  it('releases a token leaving the cache at once and only once', () => {
    const shares = new CacheShares(100_000);
    const first = shares.admit('a', until, 10_000, now);
    assert.notEqual(first, undefined);
    assert.equal(shares.admit('a', until, 10_000, now), undefined);
    shares.release(first as number);
    assert.equal(shares.held('a'), 0);
    shares.release(first as number);
    assert.notEqual(shares.admit('a', until + 1n, 10_000, now), undefined);
    // The first token's time passes: the second still counts.
    assert.notEqual(shares.admit('b', until, 1, until), undefined);
    assert.equal(shares.held('a'), 10_000);
    assert.equal(shares.admit('a', until + 1n, 1, until), undefined);
  });

  it('keeps the due heap in proportion to the live tokens, whatever the churn', () => {
    const shares = new CacheShares(10_000_000);
    // Admitted and released by the thousand, far from due: nothing is ever popped as due.
    for (let n = 0; n < 20_000; n++) shares.release(shares.admit(`k${n % 50}`, until, 100, now) as number);
    const kept = Array.from({ length: 10 }, (_, n) => shares.admit(`k${n}`, until, 100, now) as number);
    const t = shares.tracked;
    assert.deepEqual([t.live, t.keys], [10, 10]);
    assert.ok(t.due <= 2 * 10 + HEAP_SLACK + 1, `${t.due}`);
    for (const ticket of kept) shares.release(ticket);
    assert.deepEqual([shares.tracked.live, shares.tracked.keys], [0, 0]);
  });

  it('gives each key room for a token in a small cache', () => {
    assert.equal(new CacheShares(100).share, 100);
    assert.equal(new CacheShares(8192).share, MIN_SHARE);
    assert.equal(new CacheShares(16 * 1024 * 1024).share, 1677722);
  });
});
