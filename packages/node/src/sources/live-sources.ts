/**
 * Live sources: the key set and the revocation list by URL or file, refreshed in the background,
 * and the push channel (`GET /v1/revocations/events`, server-sent events) that brings a revocation
 * to the verifier within a second. The rules are the Rust `live` module's:
 *
 * - The key set is polled on its published cache period (`Cache-Control: max-age`, clamped to
 *   [minRefresh, maxRefresh]) with `If-None-Match`. A failure keeps the set in force (stale if
 *   error) until `maxStale` after the last success; then the verifier refuses every token
 *   (`sources_unavailable`, HTTP 503).
 * - A token naming an unknown `kid` asks for a refetch, at most one per `kidCooldown`, so a flood of
 *   random `kid`s never becomes a flood of fetches.
 * - A list signed by an unknown `kid` asks for a refetch of its own (an emergency may have handed
 *   signing to a key we have not fetched yet), at most one per list serial and one a second; the
 *   refused list is offered again after every new key set.
 * - An ETag, file time or event ID advances only when a list is installed, so a refused list is
 *   fetched or pushed again rather than answered 304.
 */

import { readFile, stat } from 'node:fs/promises';

import { createParser } from 'eventsource-parser';

import { ConfigError, UpdateError } from '../errors.js';
import { KeySet } from '../key-set.js';
import { unverifiedSerial } from '../revocation-list.js';
import type { Verifier } from '../verifier.js';
import { getDocument, readCapped, urlAllowed, type DocumentAnswer } from './http-document.js';

/** Where a document comes from: a URL (`http://`, `https://`) or a file path. */
export type Source = { readonly url: string } | { readonly file: string };

export interface LiveSourcesOptions {
  readonly jwks: Source;
  readonly revocations: Source;
  /** The push channel, e.g. `https://issuer.example/v1/revocations/events`. */
  readonly events?: string;
  /** Never poll more often than this (also the retry interval after a failure). Default 5. */
  readonly minRefreshSecs?: number;
  /** Poll at least this often, whatever `Cache-Control` says. Default 300. */
  readonly maxRefreshSecs?: number;
  /** Fail closed once the key set has not been refreshed for this long. Default 3600. */
  readonly maxStaleSecs?: number;
  /** At most one key-set refetch per this period for unknown token `kid`s. Default 30. */
  readonly kidCooldownSecs?: number;
  /** Per-request deadline. Default 10 s. */
  readonly timeoutMs?: number;
  /**
   * A push stream silent this long is taken for dead (a half-open connection after a NAT expiry or
   * a load-balancer failover) and reconnected. Default 45: three of keymint's 15 s keep-alives.
   */
  readonly eventsIdleSecs?: number;
  readonly maxJwksBytes?: number;
  /** Allow plain http to hosts other than loopback. Anyone on the path could then serve keys. */
  readonly dangerouslyAllowHttp?: boolean;
  /** The fetch to use (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Told about refusals and failures; messages carry no token, key or list. */
  readonly onEvent?: (e: { readonly kind: string; readonly message: string }) => void;
}

/** The largest issuer metadata document read (as the Rust verifier). */
const METADATA_MAX_BYTES = 1024 * 1024;

/** RFC 8414 discovery: the sources an issuer publishes. */
export async function discoverSources(issuerUrl: string, f: typeof fetch = fetch): Promise<Pick<LiveSourcesOptions, 'jwks' | 'revocations' | 'events'>> {
  const base = issuerUrl.replace(/\/+$/, '');
  // As the Rust verifier: whoever is on the path of plain http could name their own key set.
  if (!urlAllowed(base)) throw new ConfigError('the issuer URL must be https (plain http only to this machine)');
  const res = await f(`${base}/.well-known/oauth-authorization-server`, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new ConfigError(`issuer metadata: HTTP ${res.status}`);
  }
  let meta: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(await readCapped(res, METADATA_MAX_BYTES, 'issuer metadata'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    meta = parsed as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`issuer metadata: ${(e as Error).message}`);
  }
  // RFC 8414 §3.3: metadata for another issuer must not be trusted for this one.
  if (meta.issuer !== issuerUrl && meta.issuer !== base) throw new ConfigError('issuer metadata names another issuer');
  const uri = (name: string) => {
    const v = meta[name];
    if (typeof v !== 'string') throw new ConfigError(`issuer metadata has no ${name}`);
    if (!urlAllowed(v)) throw new ConfigError(`issuer metadata: ${name} must be https (plain http only to this machine)`);
    return v;
  };
  const events = typeof meta.keymint_revocation_events_uri === 'string' ? uri('keymint_revocation_events_uri') : undefined;
  return {
    jwks: { url: uri('jwks_uri') },
    revocations: { url: uri('keymint_revocation_list_uri') },
    ...(events === undefined ? {} : { events }),
  };
}

/** A stop-aware sleep that a wake-up can cut short. */
class Waiter {
  private wake: (() => void) | undefined;
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }
  ring(): void {
    this.wake?.();
  }
}

const LIST_KID_INTERVAL_MS = 1000;

/** Background refresh of a verifier's key set and revocation list, and the push channel. */
export class LiveSources {
  private readonly abort = new AbortController();
  private readonly f: typeof fetch;
  private readonly cfg: Required<Omit<LiveSourcesOptions, 'events' | 'onEvent' | 'fetch'>>;
  private keysIn = false;
  private listIn = false;
  private pushConnected = false;
  /** The last list refused for a reason a new key set can cure. */
  private refused: string | undefined;
  private kidWanted = false;
  private listKidWanted = false;
  private listKidSerial: bigint | undefined;
  private readonly keysWaiter = new Waiter();
  /** Rung when the push channel goes down: the list poller's wait under push ends at once. */
  private readonly listWaiter = new Waiter();
  private readonly readyWaiters: (() => void)[] = [];
  /** Counters, for tests and metrics. */
  /** `listPollsPushed`: list polls made while the push channel was up (each then waits maxRefreshSecs, ended early if the channel goes down). */
  readonly stats = { jwksFetches: 0, kidRefetches: 0, listKidRefetches: 0, listsInstalled: 0, listsRefused: 0, events: 0, listPollsPushed: 0 };

  private constructor(
    private readonly verifier: Verifier,
    private readonly opts: LiveSourcesOptions,
  ) {
    this.f = opts.fetch ?? fetch;
    this.cfg = {
      jwks: opts.jwks,
      revocations: opts.revocations,
      minRefreshSecs: opts.minRefreshSecs ?? 5,
      maxRefreshSecs: opts.maxRefreshSecs ?? 300,
      maxStaleSecs: opts.maxStaleSecs ?? 3600,
      kidCooldownSecs: opts.kidCooldownSecs ?? 30,
      timeoutMs: opts.timeoutMs ?? 10_000,
      eventsIdleSecs: opts.eventsIdleSecs ?? 45,
      maxJwksBytes: opts.maxJwksBytes ?? 1024 * 1024,
      dangerouslyAllowHttp: opts.dangerouslyAllowHttp ?? false,
    };
  }

  /**
   * Attaches live sources to `verifier` and starts them. From now on the verifier refuses every
   * token with `sources_unavailable` until the key set has been fetched, and again when it could
   * not be refreshed for `maxStaleSecs`.
   */
  static start(verifier: Verifier, opts: LiveSourcesOptions): LiveSources {
    const urls = [opts.jwks, opts.revocations].flatMap((s) => ('url' in s ? [s.url] : []));
    if (opts.events !== undefined) urls.push(opts.events);
    for (const u of urls) {
      if (!opts.dangerouslyAllowHttp && !urlAllowed(u)) throw new ConfigError(`${new URL(u).origin} is not https (plain http is allowed to loopback only)`);
    }
    // setTimeout fires at once for 0, NaN and Infinity: every stream would be cut as idle.
    const idle = opts.eventsIdleSecs;
    if (idle !== undefined && !(Number.isFinite(idle) && idle > 0 && idle * 1000 <= 2 ** 31 - 1)) {
      throw new ConfigError('eventsIdleSecs must be a number of seconds above 0 and at most 24 days');
    }
    const live = new LiveSources(verifier, opts);
    verifier.health = { keysOkAt: undefined, maxStaleSecs: live.cfg.maxStaleSecs };
    verifier.onUnknownKid = () => {
      live.kidWanted = true;
      live.keysWaiter.ring();
    };
    void live.keysLoop();
    void live.listLoop();
    if (opts.events !== undefined) void live.eventsLoop(opts.events);
    return live;
  }

  /** Resolves once both a key set and a list are in force. */
  ready(): Promise<void> {
    if (this.keysIn && this.listIn) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Whether the push channel is connected. */
  get pushing(): boolean {
    return this.pushConnected;
  }

  /** Stops every loop and open connection. */
  stop(): void {
    this.abort.abort();
    this.verifier.onUnknownKid = undefined;
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private report(kind: string, message: string): void {
    this.opts.onEvent?.({ kind, message });
  }

  private markReady(): void {
    if (this.keysIn && this.listIn) for (const r of this.readyWaiters.splice(0)) r();
  }

  private clampMs(maxAge: number | undefined, fallbackSecs: number): number {
    const { minRefreshSecs: min, maxRefreshSecs: max } = this.cfg;
    return Math.min(Math.max(maxAge ?? fallbackSecs, min), Math.max(max, min)) * 1000;
  }

  private sleep(ms: number): Promise<void> {
    return new Waiter().sleep(ms, this.abort.signal);
  }

  /** Reads a source; `validator` is an ETag (URL) or a modification time (file). */
  private async read(source: Source, validator: string | undefined, maxBytes: number): Promise<{ answer: DocumentAnswer; next: string | undefined }> {
    if ('url' in source) {
      const answer = await getDocument(source.url, { etag: validator, maxBytes, timeoutMs: this.cfg.timeoutMs, fetch: this.f, signal: this.abort.signal });
      return { answer, next: answer.status === 'modified' ? (answer.etag ?? validator) : validator };
    }
    const s = await stat(source.file);
    const mtime = String(s.mtimeMs);
    if (mtime === validator) return { answer: { status: 'not_modified', maxAgeSecs: undefined }, next: validator };
    if (s.size > maxBytes) throw new Error(`${source.file} is over the cap of ${maxBytes} bytes`);
    return { answer: { status: 'modified', body: (await readFile(source.file, 'utf8')).trimEnd(), etag: undefined, maxAgeSecs: undefined }, next: mtime };
  }

  private async keysLoop(): Promise<void> {
    let validator: string | undefined;
    let lastKidFetch = -Infinity;
    let lastListFetch = -Infinity;
    while (!this.stopped) {
      this.stats.jwksFetches++;
      let nextMs = this.cfg.minRefreshSecs * 1000;
      try {
        const { answer, next } = await this.read(this.cfg.jwks, validator, this.cfg.maxJwksBytes);
        let newKeys = false;
        if (answer.status === 'modified') {
          this.verifier.setKeys(await KeySet.parse(answer.body));
          newKeys = true;
        }
        validator = next;
        if (this.verifier.health !== undefined) this.verifier.health.keysOkAt = this.verifier.now();
        this.keysIn = true;
        this.markReady();
        if (newKeys && this.refused !== undefined) {
          const text = this.refused;
          this.refused = undefined;
          await this.installList(text);
        }
        nextMs = this.clampMs(answer.maxAgeSecs, this.cfg.maxRefreshSecs);
      } catch (e) {
        if (this.stopped) return;
        this.report('jwks_refresh_failed', `key set refresh failed; keeping the one in force: ${(e as Error).message}`);
      }
      // Wait for the next poll, or for an unknown kid: a token's (one refetch per cooldown) or a
      // list's (one a second, on a budget of its own).
      let deadline = Date.now() + nextMs;
      let listDue = false;
      for (;;) {
        if (this.stopped) return;
        const now = Date.now();
        if (this.listKidWanted) {
          // Never dropped: if the last one was under a second ago, it waits.
          this.listKidWanted = false;
          deadline = Math.min(deadline, Math.max(now, lastListFetch + LIST_KID_INTERVAL_MS));
          listDue = true;
        }
        if (this.kidWanted) {
          this.kidWanted = false;
          if (now - lastKidFetch >= this.cfg.kidCooldownSecs * 1000) {
            lastKidFetch = now;
            this.stats.kidRefetches++;
            break;
          }
        }
        if (now >= deadline) {
          if (listDue) lastListFetch = now;
          break;
        }
        await this.keysWaiter.sleep(deadline - now, this.abort.signal);
      }
    }
  }

  private async listLoop(): Promise<void> {
    let validator: string | undefined;
    while (!this.stopped) {
      // A list can only be checked against a key set.
      if (!this.keysIn) {
        await this.sleep(50);
        continue;
      }
      let nextMs = this.cfg.minRefreshSecs * 1000;
      try {
        const { answer, next } = await this.read(this.cfg.revocations, validator, this.verifier.maxListBytes);
        // The validator advances only with a list in force: a refused list is fetched again.
        const inForce = answer.status === 'not_modified' || (await this.installList(answer.body));
        if (inForce) validator = next;
        // With the push channel up, polling is only the fallback.
        if (this.pushConnected) this.stats.listPollsPushed++;
        nextMs = this.clampMs(answer.maxAgeSecs, this.pushConnected ? this.cfg.maxRefreshSecs : this.cfg.minRefreshSecs);
      } catch (e) {
        if (this.stopped) return;
        this.report('list_refresh_failed', `revocation list refresh failed; keeping the one in force: ${(e as Error).message}`);
      }
      // Ended early when the push channel goes down: else a revocation made while it cannot
      // reconnect would wait out maxRefreshSecs (5 minutes by default).
      await this.listWaiter.sleep(nextMs, this.abort.signal);
    }
  }

  /** Offers a list; true if it is the list in force now (installed, or the very one in force). */
  private async installList(text: string): Promise<boolean> {
    try {
      const r = await this.verifier.updateRevocations(text);
      if (r.status === 'installed') {
        this.stats.listsInstalled++;
        // Whatever was refused before is older than this list or about to be.
        this.refused = undefined;
      }
      this.listIn = true;
      this.markReady();
      return true;
    } catch (e) {
      this.stats.listsRefused++;
      const code = e instanceof UpdateError ? e.code : 'list_malformed';
      if (code === 'list_unknown_kid' || code === 'list_rollback' || code === 'list_serial_conflict') this.refused = text;
      if (code === 'list_unknown_kid') this.wantKeysFor(text);
      this.report('list_refused', `refused a revocation list; keeping the one in force: ${code}`);
      return false;
    }
  }

  /** One key-set refetch per (unverified, rationing-only) list serial. */
  private wantKeysFor(text: string): void {
    const serial = unverifiedSerial(text, this.verifier.maxListBytes);
    if (serial !== undefined && serial === this.listKidSerial) return;
    this.listKidSerial = serial;
    this.stats.listKidRefetches++;
    this.listKidWanted = true;
    this.keysWaiter.ring();
  }

  private async eventsLoop(url: string): Promise<void> {
    let lastId: string | undefined;
    let backoff = 250;
    // No event we accept is longer than a whole list (plus room for the field names).
    const maxPending = this.verifier.maxListBytes + 64;
    while (!this.stopped) {
      if (!this.keysIn) {
        await this.sleep(50);
        continue;
      }
      let connectedAt: number | undefined;
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (lastId !== undefined) headers['last-event-id'] = lastId;
        const res = await this.f(url, { headers, redirect: 'manual', signal: this.abort.signal });
        if (res.status !== 200 || res.body === null) {
          await res.body?.cancel();
          throw new Error(`HTTP ${res.status}`);
        }
        this.pushConnected = true;
        connectedAt = performance.now();
        // Events are installed one after the other, in the order they came.
        let queue: Promise<void> = Promise.resolve();
        let pending = 0;
        const parser = createParser({
          onEvent: (ev) => {
            pending = 0;
            if (ev.event !== 'revocations' || ev.data === '') return;
            this.stats.events++;
            backoff = 250;
            queue = queue.then(async () => {
              // The event ID advances only with a list in force: on reconnecting, a refused list
              // is sent again.
              if ((await this.installList(ev.data)) && ev.id !== undefined) lastId = ev.id;
            });
          },
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const next = await readWithin(reader, this.cfg.eventsIdleSecs * 1000);
          if (next === 'idle') {
            this.report('events_idle', 'revocation events silent too long; reconnecting');
            await reader.cancel().catch(() => undefined);
            break;
          }
          const { done, value } = next;
          if (done) break;
          pending += value.length;
          if (pending > maxPending) {
            this.report('events_oversize', 'pushed revocation list too large; reconnecting');
            await reader.cancel();
            break;
          }
          parser.feed(value);
        }
        await queue;
      } catch (e) {
        if (this.stopped) return;
        this.report('events_unavailable', `revocation events unavailable; polling instead: ${(e as Error).name}`);
      }
      if (this.pushConnected) {
        this.pushConnected = false;
        this.listWaiter.ring();
      }
      // A stream that stayed up was working (cut by a proxy's stream limit or a deploy): start
      // again at once. keymint sends nothing on a current Last-Event-ID, so "an event came" cannot
      // be the sign, or streams cut every minute would double the wait up to 30 s each time.
      if (connectedAt !== undefined && performance.now() - connectedAt >= STREAM_WORKED_MS) backoff = 250;
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, 30_000);
    }
  }
}

/** A push stream up this long was working. */
const STREAM_WORKED_MS = 5_000;

/** The reader's next chunk, or 'idle' if none came within `ms`. */
async function readWithin<T>(reader: ReadableStreamDefaultReader<T>, ms: number): Promise<ReadableStreamReadResult<T> | 'idle'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<'idle'>((resolve) => {
    timer = setTimeout(() => resolve('idle'), ms);
  });
  try {
    return await Promise.race([reader.read(), idle]);
  } finally {
    clearTimeout(timer);
  }
}
