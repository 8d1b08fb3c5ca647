/**
 * One conditional GET of a document (a key set or a signed list): `If-None-Match` with the last
 * ETag, the `Cache-Control: max-age` of the answer, a size cap checked while reading (a hostile
 * endpoint cannot make us buffer without bound), a deadline, and redirects refused rather than
 * followed (a redirect could lead a key-set fetch anywhere).
 */

/** The answer to a conditional GET. */
export type DocumentAnswer =
  | { readonly status: 'modified'; readonly body: string; readonly etag: string | undefined; readonly maxAgeSecs: number | undefined }
  | { readonly status: 'not_modified'; readonly maxAgeSecs: number | undefined };

export interface GetOptions {
  readonly etag: string | undefined;
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly fetch: typeof fetch;
  readonly signal?: AbortSignal;
}

/** A fetch failed; the message names the URL's origin and the status, never a body. */
export class FetchError extends Error {
  override readonly name = 'FetchError';
}

/** `max-age` from a `Cache-Control` header, in seconds. */
export function maxAgeOf(cacheControl: string | null): number | undefined {
  if (cacheControl === null) return undefined;
  for (const directive of cacheControl.split(',')) {
    const m = /^\s*max-age=(\d+)\s*$/i.exec(directive);
    if (m !== null) return Number(m[1]);
  }
  return undefined;
}

/**
 * Whether keys or revocations may be fetched from `url`: over https, or over http only from this
 * machine, where there is no network to tamper with them.
 */
export function urlAllowed(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(u.hostname);
}

export async function getDocument(url: string, opts: GetOptions): Promise<DocumentAnswer> {
  const signals = [AbortSignal.timeout(opts.timeoutMs)];
  if (opts.signal !== undefined) signals.push(opts.signal);
  const headers: Record<string, string> = { accept: 'application/json, application/jwt, */*' };
  if (opts.etag !== undefined) headers['if-none-match'] = opts.etag;
  const where = new URL(url).origin;
  let res: Response;
  try {
    res = await opts.fetch(url, { headers, redirect: 'manual', signal: AbortSignal.any(signals) });
  } catch (e) {
    throw new FetchError(`GET ${where}: ${(e as Error).name}`);
  }
  const maxAgeSecs = maxAgeOf(res.headers.get('cache-control'));
  if (res.status === 304) {
    await res.body?.cancel();
    return { status: 'not_modified', maxAgeSecs };
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new FetchError(`GET ${where}: HTTP ${res.status}`);
  }
  const body = await readCapped(res, opts.maxBytes, where);
  return { status: 'modified', body, etag: res.headers.get('etag') ?? undefined, maxAgeSecs };
}

/** Reads a body, refusing it (unread when announced) once it exceeds `maxBytes`. */
export async function readCapped(res: Response, maxBytes: number, where: string): Promise<string> {
  const announced = Number(res.headers.get('content-length') ?? '0');
  if (announced > maxBytes) {
    await res.body?.cancel();
    throw new FetchError(`GET ${where}: body of ${announced} bytes is over the cap of ${maxBytes}`);
  }
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new FetchError(`GET ${where}: body is over the cap of ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
